/* Query keys come from the network (C-FIND identifiers, QIDO parameters):
 * input = 2-byte VR index, then key and stored value separated by a NUL. */
#include "dicom/match.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const vrs[] = {"PN", "LO", "SH", "CS", "UI", "DA", "TM", "DT", "AE", "UT"};
    if (size < 1 || size > 8192)
        return 0;
    const char *vr = vrs[data[0] % (sizeof(vrs) / sizeof(vrs[0]))];
    char *buf = malloc(size + 1);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    const char *key = buf;
    size_t klen = strlen(buf); /* buf[size - 1] is the terminating NUL */
    const char *value = klen + 1 < size ? buf + klen + 1 : "";
    long lo, hi;
    dcm_match(vr, key, value);
    dcm_match_kind(vr, key);
    dcm_date_bounds(key, &lo, &hi);
    free(buf);
    return 0;
}
