/* The configuration section storage/ owns: redis.* (decision 0021). */
#ifndef STO_CONFIG_H
#define STO_CONFIG_H

#include "../common/hr_config.h"

/* redis: the index. Static storage. */
extern const hr_config_section sto_config_redis;

#endif
