/* The configuration sections viewer-api/ owns: http.* and auth.* (decision 0021). */
#ifndef API_CONFIG_H
#define API_CONFIG_H

#include "../common/hr_config.h"

/* http: the HTTP listener, TLS, limits, CORS. Static storage. */
extern const hr_config_section api_config_http;
/* auth: password hashing and login rate limits. Static storage. */
extern const hr_config_section api_config_auth;

/* web: where the pages, their libraries and the OHIF build are (decision
 * 0028). Allocated by the section's parse, freed by hr_config_free. */
struct api_web_config {
    char root[HR_PATH_MAX]; /* web/: app/, share/, node_modules/, vendor/ohif/; "" in the
                               file: the source tree's web/ (HUREN_WEB_DIR) */
    int viewer;             /* serve OHIF at /viewer/ */
};
/* web: the section. Static storage. */
extern const hr_config_section api_config_web;

#endif
