/* share.*: patient share links (decision 0032).
 *
 *   key                        default   rule
 *   share.default_expires_s    604800    min_expires_s..max_expires_s
 *   share.max_expires_s        2592000   1..31536000
 *   share.min_expires_s        60        1..max_expires_s
 *   share.per_study            32        1..1000 live links of one study
 *   share.images               per_series  per_series | all
 *   share.images_max           24        1..200
 *   share.window_s             60        1..3600
 *   share.per_address          120       0..100000 (0: no limit)
 *   share.per_token            60        0..100000 (0: no limit)
 *   share.renders              2         1..64
 *   share.image_side           1024      64..4096
 *   share.thumb_side           256       32..1024
 *
 * Meaning: docs/configuration.md. */
#include "shr_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_images[] = {"per_series", "all", NULL};

static void shr_init(hr_config *c)
{
    c->share = calloc(1, sizeof(*c->share)); /* NULL: parse answers -ENOMEM */
}

static void shr_free(hr_config *c)
{
    free(c->share);
    c->share = NULL;
}

static int get_int(json_t *v, const char *key, long long lo, long long hi, long long *dst,
                   char *err, size_t ecap)
{
    if (!json_object_get(v, key))
        return 0;
    return hr_cfg_get_int(v, key, "share.", lo, hi, dst, err, ecap);
}

static int shr_parse(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    static const char *const keys[] = {"default_expires_s",
                                       "max_expires_s",
                                       "min_expires_s",
                                       "per_study",
                                       "images",
                                       "images_max",
                                       "window_s",
                                       "per_address",
                                       "per_token",
                                       "renders",
                                       "image_side",
                                       "thumb_side",
                                       NULL};
    shr_config *s = c->share;
    long long x;
    int rc, img;
    if (!s)
        return -ENOMEM;
    if (!json_is_object(v))
        return hr_cfg_fail(err, ecap, "%s: must be an object", path);
    rc = hr_cfg_check_keys(v, "share.", keys, err, ecap);
    if (rc)
        return rc;
#define INT_KEY(name, lo, hi, field)                                                               \
    do {                                                                                           \
        x = s->field;                                                                              \
        rc = get_int(v, name, lo, hi, &x, err, ecap);                                              \
        if (rc)                                                                                    \
            return rc;                                                                             \
        s->field = x;                                                                              \
    } while (0)
    INT_KEY("default_expires_s", 1, 31536000, default_expires_s);
    INT_KEY("max_expires_s", 1, 31536000, max_expires_s);
    INT_KEY("min_expires_s", 1, 31536000, min_expires_s);
    INT_KEY("per_study", 1, 1000, per_study);
    INT_KEY("images_max", 1, 200, images_max);
    INT_KEY("window_s", 1, 3600, window_s);
    INT_KEY("per_address", 0, 100000, per_address);
    INT_KEY("per_token", 0, 100000, per_token);
    INT_KEY("renders", 1, 64, renders);
    INT_KEY("image_side", 64, 4096, image_side);
    INT_KEY("thumb_side", 32, 1024, thumb_side);
#undef INT_KEY
    img = (int)s->images;
    if (json_object_get(v, "images")) {
        rc = hr_cfg_get_choice(v, "images", "share.", k_images, 32, &img, err, ecap);
        if (rc)
            return rc;
    }
    s->images = (enum shr_images)img;
    return 0;
}

static int shr_validate(hr_config *c, json_t *user, char *err, size_t ecap)
{
    const shr_config *s = c->share;
    (void)user;
    if (!s)
        return -ENOMEM;
    if (s->min_expires_s > s->max_expires_s)
        return hr_cfg_fail(err, ecap, "share.min_expires_s: above share.max_expires_s (%lld)",
                           s->max_expires_s);
    if (s->default_expires_s < s->min_expires_s || s->default_expires_s > s->max_expires_s)
        return hr_cfg_fail(err, ecap,
                           "share.default_expires_s: must be within share.min_expires_s (%lld) "
                           "and share.max_expires_s (%lld)",
                           s->min_expires_s, s->max_expires_s);
    return 0;
}

const hr_config_section shr_config_share = {
    .name = "share",
    .defaults = "{\"default_expires_s\": 604800, \"max_expires_s\": 2592000,"
                " \"min_expires_s\": 60, \"per_study\": 32, \"images\": \"per_series\","
                " \"images_max\": 24, \"window_s\": 60, \"per_address\": 120, \"per_token\": 60,"
                " \"renders\": 2, \"image_side\": 1024, \"thumb_side\": 256}",
    .parse = shr_parse,
    .init = shr_init,
    .validate = shr_validate,
    .free = shr_free,
};
