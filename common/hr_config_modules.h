/* Transitional: the module sections, still in common/ until each module
 * takes its own (decision 0021). */
#ifndef HR_CONFIG_MODULES_H
#define HR_CONFIG_MODULES_H

#include "hr_config.h"

extern const hr_config_section wl_config_centers;
extern const hr_config_section wl_config_routing;
extern const hr_config_section wl_config_worklist;

#endif
