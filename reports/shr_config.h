/* The configuration section of patient share links (云胶片, decision 0032):
 * how long a link may live, which images it shows, and how fast its holder
 * may read. */
#ifndef SHR_CONFIG_H
#define SHR_CONFIG_H

#include "../common/hr_config.h"

/* Which images a share shows. */
enum shr_images {
    SHR_IMAGES_PER_SERIES, /* "per_series": the middle instance of each series */
    SHR_IMAGES_ALL         /* "all": every instance, in series and instance order */
};

/* cfg->share. */
struct shr_config {
    long long default_expires_s; /* a link's life when the request names none */
    long long max_expires_s;     /* the longest life a request may ask */
    long long min_expires_s;     /* the shortest (60; lower only in tests) */
    int per_study;               /* live (unexpired) links of one study at most */
    enum shr_images images;      /* which images */
    int images_max;              /* images of one share at most */
    int window_s;                /* rate window of the public routes */
    int per_address;             /* public requests per address and window (0: no limit) */
    int per_token;               /* public requests per token and window (0: no limit) */
    int renders;                 /* images rendered at once per process */
    int image_side;              /* rendered images fit this box (pixels) */
    int thumb_side;              /* ?size=thumb: this box */
};
typedef struct shr_config shr_config;

/* share: {default_expires_s, max_expires_s, min_expires_s, per_study,
 * images, images_max, window_s, per_address, per_token, renders,
 * image_side, thumb_side}. Static storage. */
extern const hr_config_section shr_config_share;

#endif
