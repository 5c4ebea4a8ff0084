/* The configuration sections gateway/ owns: dicom.* and hl7.* (decision 0021). */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include "../common/hr_config.h"

/* dicom: the DICOM listener and its limits. Static storage. */
extern const hr_config_section gw_config_dicom;
/* hl7: the HL7 v2 MLLP listener. Static storage. */
extern const hr_config_section gw_config_hl7;

#endif
