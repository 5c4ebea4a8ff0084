/* The recognition items a signed report covers (decision 0022, payload
 * member "recognition"): the report stores item codes; at signing time each
 * item gets its name, HR mark, scope and validity end from the recognition
 * catalogue (cfg->recognition, the "recognition" configuration section).
 * Pure (no Redis, no files). */
#ifndef RPT_RECOGNITION_ITEMS_H
#define RPT_RECOGNITION_ITEMS_H

#include "../common/hr_config.h"

#include <jansson.h>

/* items: an array of objects {"item": "<code>"}; fills each with "name",
 * "hr_mark", "scope" and "valid_until" ("YYYY-MM-DD": signed_ms plus the
 * item's validity) from the catalogue. 0 (also for an empty array);
 * -EINVAL when an item is unknown, or when no catalogue is configured
 * (cfg->recognition NULL) and items is not empty; -ENOMEM. */
int rpt_fill_recognition(const hr_config *cfg, json_t *items, long long signed_ms);

#endif
