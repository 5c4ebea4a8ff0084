/* web.*: the pages, their libraries and the viewer (decision 0028).
 *
 *   key          default                       rule
 *   web.root     "" (the source tree's web/)   a directory path
 *   web.viewer   true                          true | false: OHIF at /viewer/
 *
 * Meaning: docs/configuration.md. */
#include "api_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HUREN_WEB_DIR
#define HUREN_WEB_DIR "web"
#endif

static const char *const k_keys[] = {"root", "viewer", NULL};

static int parse(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    if (!json_is_object(v))
        return hr_cfg_fail(err, ecap, "%s: must be an object", path);
    int rc = hr_cfg_check_keys(v, "web.", k_keys, err, ecap);
    if (rc)
        return rc;
    if (!c->web) {
        c->web = calloc(1, sizeof(*c->web));
        if (!c->web)
            return -ENOMEM;
    }
    struct api_web_config *w = c->web;
    rc = hr_cfg_get_str(v, "root", "web.", w->root, sizeof(w->root), 1, err, ecap);
    json_t *b = json_object_get(v, "viewer");
    if (!rc && b) {
        if (!json_is_boolean(b))
            return hr_cfg_fail(err, ecap, "web.viewer: must be true or false");
        w->viewer = json_is_true(b);
    }
    return rc;
}

static int validate(hr_config *c, json_t *user, char *err, size_t ecap)
{
    (void)user;
    if (!c->web)
        return hr_cfg_fail(err, ecap, "web: missing");
    if (!c->web->root[0])
        snprintf(c->web->root, sizeof(c->web->root), "%s", HUREN_WEB_DIR);
    return 0;
}

static void release(hr_config *c)
{
    free(c->web);
    c->web = NULL;
}

const hr_config_section api_config_web = {
    .name = "web",
    .defaults = "{\"root\": \"\", \"viewer\": true}",
    .parse = parse,
    .validate = validate,
    .free = release,
};
