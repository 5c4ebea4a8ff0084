/* libFuzzer target for storage/meta.c, both parsers of untrusted bytes:
 *   - the input as a stored object: written to a memfd and walked by sto_meta_derive();
 *     when it succeeds, the JSON must parse as one object and the frame table it wrote
 *     must validate, with every frame inside the file;
 *   - the input as a .frames sidecar: sto_frames_parse() against the object size its own
 *     header claims (so the fuzzer gets past that check); every frame it accepts must lie
 *     inside that size.
 * Aborts on any violation. */
#include "common/hr_err.h"
#include "storage/meta.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static const char k_sha[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

static void check_frames(const sto_frames *t, uint64_t size)
{
    const sto_pixel_info *in = sto_frames_info(t);
    if (in->value_offset > size || in->value_length > size - in->value_offset)
        abort();
    for (uint32_t k = 0; k <= in->n_frames + 1; k++) {
        sto_frame f;
        int rc = sto_frames_get(t, k, &f);
        if (rc == 0) {
            if (k == 0 || k > in->n_frames || f.n_ranges == 0)
                abort();
            for (size_t i = 0; i < f.n_ranges; i++)
                if (f.ranges[i].offset > size || f.ranges[i].length > size - f.ranges[i].offset)
                    abort();
        }
        sto_frame_free(&f);
    }
}

static void as_object(const uint8_t *data, size_t size)
{
    static int fd = -1;
    char *json = NULL;
    uint8_t *frames = NULL;
    size_t jl = 0, fl = 0;
    if (fd < 0)
        fd = memfd_create("fuzz_meta", 0);
    if (fd < 0 || ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        return;
    int rc = sto_meta_derive(fd, k_sha, &json, &jl, &frames, &fl);
    if (rc == 0) {
        json_error_t err;
        json_t *j = json_loadb(json, jl, JSON_ALLOW_NUL, &err);
        if (!j || !json_is_object(j))
            abort();
        json_decref(j);
        sto_frames *t = NULL;
        if (sto_frames_parse(frames, fl, size, &t) != 0)
            abort(); /* our own table must validate */
        check_frames(t, size);
        sto_frames_free(t);
    }
    free(json);
    free(frames);
}

static void as_sidecar(const uint8_t *data, size_t size)
{
    uint64_t claimed = 0;
    sto_frames *t = NULL;
    for (int i = 0; i < 8 && size >= 24; i++)
        claimed |= (uint64_t)data[16 + i] << (8 * i);
    if (sto_frames_parse(data, size, claimed, &t) == 0) {
        check_frames(t, claimed);
        sto_frames_free(t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    as_object(data, size);
    as_sidecar(data, size);
    return 0;
}
