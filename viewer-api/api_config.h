/* The configuration sections viewer-api/ owns: http.* and auth.* (decision 0021). */
#ifndef API_CONFIG_H
#define API_CONFIG_H

#include "../common/hr_config.h"

/* http: the HTTP listener, TLS, limits, CORS. Static storage. */
extern const hr_config_section api_config_http;
/* auth: password hashing and login rate limits. Static storage. */
extern const hr_config_section api_config_auth;

#endif
