#include "keys.h"
#include "../common/hr_err.h"

#include <string.h>

static int safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

int sto_key_part(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        size_t need = safe(*p) ? 1 : 3;
        if (o + need >= cap) {
            if (cap)
                out[0] = '\0';
            return HR_ETOOBIG;
        }
        if (need == 1) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= cap)
        return HR_ETOOBIG;
    out[o] = '\0';
    return 0;
}

int sto_patient_key(const dcm_attrs *a, const char *default_issuer, char *out)
{
    out[0] = '\0';
    if (!*a->patient_id)
        return 0;
    const char *issuer = *a->issuer_of_patient_id ? a->issuer_of_patient_id : default_issuer;
    char *p = out;
    /* each part is at most DCM_LO_MAX - 1 bytes: 3x fits by construction */
    sto_key_part(issuer, p, STO_KEY_PART_MAX);
    p += strlen(p);
    *p++ = '|';
    sto_key_part(a->patient_id, p, STO_KEY_PART_MAX);
    return 0;
}
