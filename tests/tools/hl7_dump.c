/* huren-hl7-dump FILE [DEFAULT_CHARSET]: parses one HL7 v2 message with
 * reports/hl7.c and prints it as JSON for the cross-check against python3-hl7
 * (tests/integration/test_hl7_parse_crosscheck.sh):
 *   {"ok": true, "charset": "...", "values": {"<i>:<SEG>-<f>.<r>.<c>.<s>": "value", ...}}
 * (every non-empty subcomponent; r 0-based, c and s 1-based; MSH-1 and MSH-2
 * left out) or {"ok": false, "ack": "AE", "code": 102, "seg": "PID",
 * "field": 5, "text": "..."}. Exit 0 either way, 2 on usage or I/O errors. */
#include "common/hr_err.h"
#include "common/hr_io.h"
#include "reports/hl7.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s FILE [DEFAULT_CHARSET]\n", argv[0]);
        return 2;
    }
    int rc = hr_read_file(argv[1], 16u << 20, &buf, &len);
    if (rc) {
        fprintf(stderr, "%s: %s\n", argv[1], hr_strerror(rc));
        return 2;
    }
    rpt_hl7_msg *m = NULL;
    rpt_hl7_err err;
    rc = rpt_hl7_parse(buf, len, argc > 2 ? argv[2] : NULL, &m, &err);
    json_t *o;
    if (rc) {
        o = json_pack("{s:b, s:s, s:i, s:s, s:i, s:s, s:s}", "ok", 0, "ack", err.ack, "code",
                      err.code, "seg", err.seg, "field", err.field, "text", err.text, "error",
                      hr_err_name(rc));
    } else {
        json_t *v = json_object();
        for (size_t i = 0; i < rpt_hl7_nseg(m); i++) {
            const rpt_hl7_seg *s = rpt_hl7_seg_at(m, i);
            int is_msh = i == 0;
            for (int f = is_msh ? 3 : 1; f <= rpt_hl7_nfields(s); f++) {
                int nr = rpt_hl7_reps(s, f);
                for (int r = 0; r < nr; r++)
                    for (int c = 1; c <= rpt_hl7_ncomps(s, f, r); c++)
                        for (int u = 1; u <= RPT_HL7_MAX_COMPS; u++) {
                            const char *x = rpt_hl7_get(s, f, r, c, u);
                            if (!*x)
                                continue;
                            char key[64];
                            snprintf(key, sizeof(key), "%zu:%s-%d.%d.%d.%d", i, rpt_hl7_seg_name(s),
                                     f, r, c, u);
                            json_object_set_new(v, key, json_string(x));
                        }
            }
        }
        o = json_pack("{s:b, s:s, s:o}", "ok", 1, "charset", rpt_hl7_charset(m), "values", v);
    }
    char *out = json_dumps(o, JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    puts(out ? out : "null");
    free(out);
    json_decref(o);
    rpt_hl7_free(m);
    free(buf);
    return 0;
}
