/* The configuration sections worklist/ owns: centers[], routing.* and
 * worklist.* (decision 0021). */
#ifndef WL_CONFIG_H
#define WL_CONFIG_H

#include "../common/hr_config.h"

/* centers: the county diagnostic centers. Static storage. */
extern const hr_config_section wl_config_centers;
/* routing: which center reads an exam, with which priority. Static storage. */
extern const hr_config_section wl_config_routing;
/* worklist: completeness, claims, turnaround targets. Static storage. */
extern const hr_config_section wl_config_worklist;

#endif
