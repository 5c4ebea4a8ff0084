/* storage/sto_config.c: redis.* */
#include "common/hr_config.h"
#include "support/config_expect.h"

#include <criterion/criterion.h>

Test(sto_config, redis_defaults_and_overlay)
{
    hr_config c;
    char err[256];
    cr_assert_eq(hr_config_load(NULL, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(c.redis.url, "", "embedded redis-server");
    cr_expect_str_eq(c.redis.server, "redis-server");
    cr_expect_str_eq(c.redis.appendfsync, "everysec");
    cr_expect_eq(c.redis.connect_timeout_ms, 5000);
    hr_config_free(&c);
    cr_assert_eq(hr_config_load_string("{\"redis\": {\"url\": \"unix:///run/r.sock\", "
                                       "\"appendfsync\": \"always\"}}",
                                       &c, err, sizeof(err)),
                 0, "%s", err);
    cr_expect_str_eq(c.redis.url, "unix:///run/r.sock");
    cr_expect_str_eq(c.redis.appendfsync, "always");
    cr_expect_str_eq(c.redis.server, "redis-server", "unset keys keep their default");
    hr_config_free(&c);
    cr_assert_eq(hr_config_load_string("{\"redis\": {\"url\": \"redis://10.0.0.5:6379/2\"}}", &c,
                                       err, sizeof(err)),
                 0, "%s", err);
    hr_config_free(&c);
}

Test(sto_config, redis_errors_name_the_key)
{
    expect_config_error("{\"redis\": \"redis://x\"}", "redis: must be an object");
    expect_config_error("{\"redis\": {\"host\": \"x\"}}", "redis.host: unknown key");
    expect_config_error("{\"redis\": {\"url\": \"http://x\"}}",
                        "redis.url: must start with redis:// or unix://");
    expect_config_error("{\"redis\": {\"server\": \"\"}}", "redis.server: must not be empty");
    expect_config_error("{\"redis\": {\"appendfsync\": \"no\"}}",
                        "redis.appendfsync: \"no\" is not always or everysec");
    expect_config_error("{\"redis\": {\"appendfsync\": \"everysecond-or-so\"}}",
                        "redis.appendfsync: longer than 15 characters");
    expect_config_error("{\"redis\": {\"connect_timeout_ms\": 99}}",
                        "redis.connect_timeout_ms: 99 is outside 100..600000");
    expect_config_error("{\"redis\": {\"connect_timeout_ms\": true}}",
                        "redis.connect_timeout_ms: must be an integer");
}
