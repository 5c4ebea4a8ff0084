/* Configuration tests of every module: a configuration that must be refused. */
#ifndef HR_TEST_CONFIG_EXPECT_H
#define HR_TEST_CONFIG_EXPECT_H

#include "common/hr_config.h"
#include "common/hr_err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* json (overlaid on the defaults) fails with HR_ECONFIG and an error holding fragment. */
static inline void expect_config_error(const char *json, const char *fragment)
{
    hr_config c;
    char err[512] = "";
    cr_expect_eq(hr_config_load_string(json, &c, err, sizeof(err)), HR_ECONFIG, "%s", json);
    cr_expect(strstr(err, fragment) != NULL, "error \"%s\" lacks \"%s\"", err, fragment);
}

/* docs/configuration.md as text (static storage, overwritten by the next call). */
static inline char *read_configuration_md(void)
{
    const char *src = getenv("HUREN_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/docs/configuration.md", src ? src : ".");
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char doc[65536];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[n] = '\0';
    return doc;
}

#endif
