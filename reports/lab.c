#include "lab.h"
#include "alert.h"
#include "hl7.h"
#include "lab_config.h"
#include "person.h"
#include "rpt_eval.h"
#include "../common/hr_assert.h"
#include "../common/hr_err.h"
#include "../common/hr_hash.h"
#include "../common/hr_log.h"
#include "../common/hr_time.h"
#include "../dicom/uids.h"
#include "../storage/keys.h"
#include "../storage/sto_script.h"
#include "../worklist/worklist.h"

#include "lab_script.h"

#include <errno.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the model of one message ---- */

typedef struct lab_rep {
    char uid[HR_UID_MAX];
    char pkey[STO_PKEY_MAX];
    char national_id[64]; /* PID-3 of type "ID", else PID-19; "" when none */
    json_t *obr;          /* the report's fields from this message (no "obs") */
    json_t *obs;          /* the observations of this message */
    int applied;          /* this commit applied the message (not a resend) */
    int taken;            /* the UID is another hospital's study (HR_EFORBIDDEN) */
    json_t *current;      /* the report as this commit stored it (NULL: read it back) */
    redisReply *pre;      /* HMGET json rev read with the duplicate check (NULL: none) */
} lab_rep;

struct lab_msg {
    rpt_hl7_msg *hl7;
    char hospital[HR_ID_MAX];
    char control_id[LAB_CONTROL_ID_MAX];
    char id[HR_ID_MAX + LAB_CONTROL_ID_MAX + 2]; /* "<hospital>|<MSH-10>" */
    char version[16];
    char sha256[65];
    char body_sha256[65]; /* of the bytes after the MSH segment */
    size_t n;
    lab_rep *rep; /* one per OBR (at most LAB_OBR_MAX) */
};

const char *lab_msg_id(const lab_msg *m)
{
    return m->id;
}

size_t lab_msg_reports(const lab_msg *m)
{
    return m->n;
}

const char *lab_msg_uid(const lab_msg *m, size_t i)
{
    return i < m->n ? m->rep[i].uid : NULL;
}

void lab_msg_free(lab_msg *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        json_decref(m->rep[i].obr);
        json_decref(m->rep[i].obs);
        json_decref(m->rep[i].current);
        freeReplyObject(m->rep[i].pre);
        OPENSSL_cleanse(m->rep[i].national_id, sizeof(m->rep[i].national_id));
    }
    rpt_hl7_free(m->hl7);
    free(m->rep);
    free(m);
}

/* 2.25.<decimal of the first 128 bits of SHA-256(hospital|order|code)> */
void lab_uid(const char *hospital, const char *order, const char *code, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE], n[16];
    char dec[48], *in = NULL;
    size_t k = sizeof(dec) - 1;
    unsigned dlen = 0;
    int len = asprintf(&in, "%s|%s|%s", hospital, order, code);
    memset(d, 0, sizeof(d));
    if (len >= 0)
        EVP_Digest(in, (size_t)len, d, &dlen, EVP_sha256(), NULL);
    free(in);
    memcpy(n, d, 16);
    dec[k] = 0;
    for (;;) { /* repeated division of the 128-bit big-endian number by 10 */
        unsigned rem = 0;
        int zero = 1;
        for (int i = 0; i < 16; i++) {
            unsigned cur = rem * 256 + n[i];
            n[i] = (unsigned char)(cur / 10);
            rem = cur % 10;
            zero &= n[i] == 0;
        }
        dec[--k] = (char)('0' + rem);
        if (zero)
            break;
    }
    snprintf(out, HR_UID_MAX, "2.25.%s", dec + k);
}

static const char *get(const rpt_hl7_seg *s, int f, int c)
{
    return s ? rpt_hl7_get(s, f, 0, c, 0) : "";
}

static int refuse(rpt_hl7_err *e, const char *ack, int code, const char *seg, int seq, int field,
                  const char *text)
{
    return rpt_hl7_err_set(e, ack, code, seg, seq, field, "%s", text);
}

/* "3.5-5.1", "<5", ">3.5", "3.5 - 5.1" -> low/high when numeric. */
static void parse_range(const char *r, json_t *o)
{
    char *end;
    double a, b;
    while (*r == ' ')
        r++;
    if (*r == '<' || *r == '>') {
        int lt = *r == '<';
        r++;
        if (*r == '=')
            r++;
        b = strtod(r, &end);
        if (end != r && isfinite(b))
            json_object_set_new(o, lt ? "high" : "low", json_real(b));
        return;
    }
    a = strtod(r, &end);
    if (end == r || !isfinite(a))
        return;
    r = end;
    while (*r == ' ')
        r++;
    if (*r != '-')
        return;
    r++;
    b = strtod(r, &end);
    if (end != r && isfinite(b)) {
        json_object_set_new(o, "low", json_real(a));
        json_object_set_new(o, "high", json_real(b));
    }
}

static int number(const char *s, double *v)
{
    char *end;
    while (*s == ' ')
        s++;
    if (!*s)
        return 0;
    *v = strtod(s, &end);
    while (*end == ' ')
        end++;
    return !*end && isfinite(*v);
}

static json_t *coding(const rpt_hl7_seg *s, int f)
{
    return json_pack("{s:s, s:s, s:s}", "code", get(s, f, 1), "display", get(s, f, 2), "system",
                     get(s, f, 3));
}

/* One OBX into JSON; refusals AE with location. */
static int read_obx(const rpt_hl7_seg *s, int seq, const char *ctl, long long now_ms, json_t **out,
                    rpt_hl7_err *e)
{
    const char *type = get(s, 2, 0), *status = get(s, 11, 0);
    const char *value = rpt_hl7_get(s, 5, 0, 0, 0);
    json_t *o = NULL, *flags = NULL;
    double v;
    *out = NULL;
    if (!*get(s, 3, 1))
        return refuse(e, "AE", 101, "OBX", seq, 3, "OBX-3 (observation identifier) is empty.");
    if (!*status)
        return refuse(e, "AE", 101, "OBX", seq, 11, "OBX-11 (result status) is empty.");
    if (!strchr("CDFIPRSUWX", status[0]) || status[1])
        return refuse(e, "AE", 103, "OBX", seq, 11, "OBX-11 is not a result status of table 0085.");
    int deleted = status[0] == 'D' || status[0] == 'X';
    if (strcmp(type, "NM") && strcmp(type, "ST") && strcmp(type, "TX") && strcmp(type, "CE") &&
        strcmp(type, "CWE") && strcmp(type, "SN") && !(deleted && !*type))
        return refuse(e, "AE", 102, "OBX", seq, 2,
                      "OBX-2 must be NM, ST, TX, CE, CWE or SN (value types accepted).");
    if (!*value && !deleted)
        return refuse(e, "AE", 101, "OBX", seq, 5, "OBX-5 (observation value) is empty.");
    o = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:s}", "seq", get(s, 1, 0), "type",
                  type, "code", coding(s, 3), "sub", get(s, 4, 0), "status", status, "time",
                  get(s, 14, 1), "range", get(s, 7, 0), "performer",
                  *get(s, 23, 1) ? get(s, 23, 1) : get(s, 15, 1), "msg", ctl);
    if (!o)
        return -ENOMEM;
    json_object_set_new(o, "unit", json_string(*get(s, 6, 1) ? get(s, 6, 1) : get(s, 6, 2)));
    parse_range(get(s, 7, 0), o);
    flags = json_array();
    for (int r = 0; r < rpt_hl7_reps(s, 8) && r < 8; r++) {
        const char *f = rpt_hl7_get(s, 8, r, 1, 0);
        if (*f)
            json_array_append_new(flags, json_string(f));
    }
    json_object_set_new(o, "flags", flags);
    if (deleted) {
        json_object_set_new(o, "value", json_string(value));
    } else if (!strcmp(type, "NM")) {
        if (!number(value, &v)) {
            json_decref(o);
            return refuse(e, "AE", 102, "OBX", seq, 5,
                          "OBX-5 of an NM observation is not a number.");
        }
        json_object_set_new(o, "value", json_string(value));
        json_object_set_new(o, "num", json_real(v));
    } else if (!strcmp(type, "SN")) {
        const char *cmp = rpt_hl7_get(s, 5, 0, 1, 0), *n1 = rpt_hl7_get(s, 5, 0, 2, 0);
        const char *sep = rpt_hl7_get(s, 5, 0, 3, 0), *n2 = rpt_hl7_get(s, 5, 0, 4, 0);
        if (!number(n1, &v)) {
            json_decref(o);
            return refuse(e, "AE", 102, "OBX", seq, 5,
                          "OBX-5 of an SN observation has no number in its second component.");
        }
        char shown[256];
        snprintf(shown, sizeof(shown), "%s%s%s%s", cmp, n1, sep, n2);
        json_object_set_new(o, "value", json_string(shown));
        json_object_set_new(o, "num", json_real(v));
        json_object_set_new(o, "comparator", json_string(cmp));
    } else if (!strcmp(type, "CE") || !strcmp(type, "CWE")) {
        if (!*get(s, 5, 1) && !*get(s, 5, 2)) {
            json_decref(o);
            return refuse(e, "AE", 101, "OBX", seq, 5,
                          "OBX-5 of a CE/CWE observation has neither a code nor a text.");
        }
        json_object_set_new(o, "coded", coding(s, 5));
        json_object_set_new(o, "value", json_string(*get(s, 5, 2) ? get(s, 5, 2) : get(s, 5, 1)));
    } else {
        /* ST, TX: repetitions are lines */
        char *txt = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&txt, &len);
        if (!f) {
            json_decref(o);
            return -ENOMEM;
        }
        for (int r = 0; r < rpt_hl7_reps(s, 5); r++)
            fprintf(f, "%s%s", r ? "\n" : "", rpt_hl7_get(s, 5, r, 0, 0));
        fclose(f);
        json_object_set_new(o, "value", json_string(txt ? txt : ""));
        free(txt);
    }
    *out = o;
    return 0;
}

static int has_value(const char *v)
{
    return v && *v;
}

/* Reads the patient, orders, reports and observations of a checked ORU. */
static int read_body(const hr_config *cfg, lab_msg *m, long long now_ms, rpt_hl7_err *e)
{
    const rpt_hl7_seg *pid = NULL, *orc = NULL;
    lab_rep *cur = NULL;
    int npid = 0, nobr = 0, nobx = 0, norc = 0, rc;
    size_t cap = 0;
    (void)cfg;
    /* the reports: one per OBR (more than LAB_OBR_MAX are refused below) */
    for (size_t i = 1; i < rpt_hl7_nseg(m->hl7) && cap <= LAB_OBR_MAX; i++)
        cap += !strcmp(rpt_hl7_seg_name(rpt_hl7_seg_at(m->hl7, i)), "OBR");
    m->rep = calloc(cap ? cap : 1, sizeof(*m->rep));
    if (!m->rep)
        return -ENOMEM;
    for (size_t i = 1; i < rpt_hl7_nseg(m->hl7); i++) {
        const rpt_hl7_seg *s = rpt_hl7_seg_at(m->hl7, i);
        const char *name = rpt_hl7_seg_name(s);
        if (!strcmp(name, "PID")) {
            pid = s;
            npid++;
            cur = NULL;
            if (!*get(s, 3, 1))
                return refuse(e, "AE", 101, "PID", npid, 3, "PID-3 (patient identifier) is empty.");
        } else if (!strcmp(name, "ORC")) {
            orc = s;
            norc++;
        } else if (!strcmp(name, "OBR")) {
            nobr++;
            if (!pid)
                return refuse(e, "AE", 100, "PID", 1, 0, "An OBR comes before any PID segment.");
            if (m->n >= LAB_OBR_MAX)
                return refuse(e, "AE", 207, "OBR", nobr, 0, "More than 64 OBR segments.");
            const char *placer = has_value(get(s, 2, 1)) ? get(s, 2, 1) : get(orc, 2, 1);
            const char *filler = has_value(get(s, 3, 1)) ? get(s, 3, 1) : get(orc, 3, 1);
            const char *code = get(s, 4, 1);
            if (!*placer && !*filler)
                return refuse(e, "AE", 101, "OBR", nobr, 3,
                              "Neither a filler (OBR-3) nor a placer (OBR-2) order number.");
            if (!*code)
                return refuse(e, "AE", 101, "OBR", nobr, 4,
                              "OBR-4 (universal service identifier) is empty.");
            cur = &m->rep[m->n];
            memset(cur, 0, sizeof(*cur));
            /* issuer: PID-3.4 when present, else the hospital */
            const char *pidv = get(pid, 3, 1), *issuer = get(pid, 3, 4);
            if (rpt_patient_key(m->hospital, issuer, pidv, cur->pkey))
                return refuse(e, "AE", 102, "PID", npid, 3,
                              "PID-3 is longer than 64 characters (identifier or issuer).");
            for (int r = 0; r < rpt_hl7_reps(pid, 3) && r < 16; r++)
                if (!strcmp(rpt_hl7_get(pid, 3, r, 5, 0), "ID"))
                    snprintf(cur->national_id, sizeof(cur->national_id), "%s",
                             rpt_hl7_get(pid, 3, r, 1, 0));
            if (!cur->national_id[0])
                snprintf(cur->national_id, sizeof(cur->national_id), "%s", get(pid, 19, 0));
            lab_uid(m->hospital, *filler ? filler : placer, code, cur->uid);
            cur->obs = json_array();
            cur->obr = json_pack(
                "{s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, "
                "s:s, s:s, s:s}",
                "uid", cur->uid, "hospital", m->hospital, "placer", placer, "filler", filler,
                "code", coding(s, 4), "patient", "key", cur->pkey, "id", pidv, "issuer",
                *issuer ? issuer : m->hospital, "name", get(pid, 5, 0), "birth_date",
                get(pid, 7, 1), "sex", get(pid, 8, 0), "observed", get(s, 7, 1), "date", "",
                "issued", get(s, 22, 1), "status", get(s, 25, 0), "ordering", get(s, 16, 0),
                "facility", get(rpt_hl7_msh(m->hl7), 4, 1));
            m->n++;
            if (!cur->obs || !cur->obr)
                return -ENOMEM;
            char day[9];
            snprintf(day, sizeof(day), "%s", get(s, 7, 1));
            json_object_set_new(cur->obr, "date", json_string(strlen(day) == 8 ? day : ""));
        } else if (!strcmp(name, "OBX")) {
            json_t *o;
            nobx++;
            if (!cur)
                return refuse(e, "AE", 100, "OBX", nobx, 0, "An OBX comes before any OBR segment.");
            if (json_array_size(cur->obs) >= LAB_OBX_MAX)
                return refuse(e, "AE", 207, "OBX", nobx, 0, "More than 500 OBX in one OBR.");
            rc = read_obx(s, nobx, m->control_id, now_ms, &o, e);
            if (rc)
                return rc;
            json_array_append_new(cur->obs, o);
        }
    }
    (void)norc;
    if (!npid)
        return refuse(e, "AE", 100, "PID", 1, 0, "The message has no PID segment.");
    if (!m->n)
        return refuse(e, "AE", 100, "OBR", 1, 0, "The message has no OBR segment.");
    return 0;
}

int lab_msg_check(const hr_config *cfg, const uint8_t *msg, size_t len, const lab_source *src,
                  const char *hub_facility, long long now_ms, lab_msg **out, hr_buf *ack)
{
    rpt_hl7_err e;
    lab_msg *m = NULL;
    const char *hosp = NULL;
    int rc;
    memset(&e, 0, sizeof(e));
    *out = NULL;
    if (!hub_facility || !*hub_facility)
        hub_facility = "HUREN";
    if (len > LAB_MSG_MAX) {
        rc = refuse(&e, "AR", 207, "", 0, 0, "The message is larger than 1 MiB.");
        goto refused;
    }
    rc = -ENOMEM;
    m = calloc(1, sizeof(*m));
    if (!m)
        goto out;
    /* the facility's default charset is known only once MSH-4 is read: a
     * first parse with the hub's default, again with the hospital's */
    rc = rpt_hl7_parse(msg, len, lab_config_charset(cfg, src ? src->hospital : NULL), &m->hl7, &e);
    if (rc == -ENOMEM)
        goto out;
    if (rc)
        goto refused;
    const rpt_hl7_seg *msh = rpt_hl7_msh(m->hl7);
    hosp = lab_config_hospital_of(cfg, get(msh, 4, 1));
    if (hosp && !*get(msh, 18, 0) &&
        strcmp(lab_config_charset(cfg, hosp), rpt_hl7_charset(m->hl7)) != 0) {
        rpt_hl7_free(m->hl7);
        m->hl7 = NULL;
        rc = rpt_hl7_parse(msg, len, lab_config_charset(cfg, hosp), &m->hl7, &e);
        if (rc == -ENOMEM)
            goto out;
        if (rc)
            goto refused;
        msh = rpt_hl7_msh(m->hl7);
    }
    snprintf(m->control_id, sizeof(m->control_id), "%s", get(msh, 10, 0));
    snprintf(m->version, sizeof(m->version), "%s", get(msh, 12, 1));
    if (strcmp(get(msh, 9, 1), "ORU")) {
        rc = refuse(&e, "AR", 200, "MSH", 1, 9, "Only ORU^R01 messages are accepted.");
        goto refused;
    }
    if (strcmp(get(msh, 9, 2), "R01")) {
        rc = refuse(&e, "AR", 201, "MSH", 1, 9, "Only the R01 event of ORU is accepted.");
        goto refused;
    }
    if (strcmp(m->version, "2.3") && strcmp(m->version, "2.3.1") && strcmp(m->version, "2.4") &&
        strcmp(m->version, "2.5") && strcmp(m->version, "2.5.1")) {
        rc = refuse(&e, "AR", 203, "MSH", 1, 12, "Versions 2.3 to 2.5.1 are accepted.");
        goto refused;
    }
    if (!hosp || (src && src->hospital && *src->hospital && strcmp(hosp, src->hospital))) {
        rc = refuse(&e, "AR", 204, "MSH", 1, 4, "Unknown sending facility (MSH-4) for this peer.");
        goto refused;
    }
    snprintf(m->hospital, sizeof(m->hospital), "%s", hosp);
    if (!m->control_id[0]) {
        rc = refuse(&e, "AR", 101, "MSH", 1, 10, "MSH-10 (message control id) is empty.");
        goto refused;
    }
    snprintf(m->id, sizeof(m->id), "%s|%s", m->hospital, m->control_id);
    {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned dlen = 0;
        EVP_Digest(msg, len, d, &dlen, EVP_sha256(), NULL);
        for (unsigned i = 0; i < dlen && i < 32; i++)
            snprintf(m->sha256 + 2 * i, 3, "%02x", d[i]);
        /* the content without the MSH (a resend may carry a new MSH-7),
         * segment by segment: CR, LF, CRLF and empty lines are one
         * separator (a client may resend with other line ends or without
         * the last CR) */
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        size_t b = 0;
        while (b < len && msg[b] != '\r' && msg[b] != '\n')
            b++;
        dlen = 0;
        if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
            while (b < len) {
                while (b < len && (msg[b] == '\r' || msg[b] == '\n'))
                    b++;
                size_t z = b;
                while (z < len && msg[z] != '\r' && msg[z] != '\n')
                    z++;
                if (z > b) {
                    EVP_DigestUpdate(md, msg + b, z - b);
                    EVP_DigestUpdate(md, "\r", 1);
                }
                b = z;
            }
            EVP_DigestFinal_ex(md, d, &dlen);
        }
        EVP_MD_CTX_free(md);
        if (dlen != 32) {
            rc = -ENOMEM;
            goto out;
        }
        for (unsigned i = 0; i < dlen && i < 32; i++)
            snprintf(m->body_sha256 + 2 * i, 3, "%02x", d[i]);
    }
    rc = read_body(cfg, m, now_ms, &e);
    if (rc == -ENOMEM)
        goto out;
    if (rc)
        goto refused;
    *out = m;
    m = NULL;
    rc = 0;
    goto out;
refused:
    if (rc == HR_ETOOBIG && !e.ack[0])
        refuse(&e, "AE", 207, "", 0, 0, "The message exceeds a limit of the parser.");
    if (!e.ack[0])
        refuse(&e, "AE", 207, "", 0, 0, "The message could not be read.");
    rc = rpt_hl7_ack_build(m ? m->hl7 : NULL, e.ack, &e, hub_facility, now_ms, ack);
    if (!rc)
        rc = HR_EPARSE;
out:
    lab_msg_free(m);
    return rc;
}

int lab_msg_ack_reused(const lab_msg *m, const char *hub_facility, long long now_ms, hr_buf *ack)
{
    rpt_hl7_err e;
    memset(&e, 0, sizeof(e));
    refuse(&e, "AR", 205, "MSH", 1, 10,
           "MSH-10 was already used for another message of this facility; not stored.");
    return rpt_hl7_ack_build(m->hl7, "AR", &e,
                             hub_facility && *hub_facility ? hub_facility : "HUREN", now_ms, ack);
}

int lab_msg_ack_taken(const lab_msg *m, const char *hub_facility, long long now_ms, hr_buf *ack)
{
    rpt_hl7_err e;
    size_t i = 0;
    memset(&e, 0, sizeof(e));
    while (i + 1 < m->n && !m->rep[i].taken)
        i++;
    refuse(&e, "AR", 205, "OBR", (int)i + 1, 3,
           "The order's lab report id is held by another study; not stored.");
    return rpt_hl7_ack_build(m->hl7, "AR", &e,
                             hub_facility && *hub_facility ? hub_facility : "HUREN", now_ms, ack);
}

int lab_msg_ack_full(const lab_msg *m, const char *hub_facility, long long now_ms, hr_buf *ack)
{
    rpt_hl7_err e;
    memset(&e, 0, sizeof(e));
    refuse(&e, "AR", 207, "", 0, 0,
           "The order's lab report holds the most observations (500) or messages (200) it "
           "can; not stored.");
    return rpt_hl7_ack_build(m->hl7, "AR", &e,
                             hub_facility && *hub_facility ? hub_facility : "HUREN", now_ms, ack);
}

int lab_msg_ack(const lab_msg *m, const char *code, const char *hub_facility, long long now_ms,
                hr_buf *ack)
{
    rpt_hl7_err e;
    memset(&e, 0, sizeof(e));
    if (strcmp(code, "AA"))
        refuse(&e, code, 207, "", 0, 0, "The message could not be stored; send it again.");
    return rpt_hl7_ack_build(m->hl7, code, strcmp(code, "AA") ? &e : NULL,
                             hub_facility && *hub_facility ? hub_facility : "HUREN", now_ms, ack);
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

json_t *lab_payload(const json_t *r)
{
    const json_t *code = json_object_get(r, "code"), *o;
    json_t *obs = json_array(), *msgs = json_array();
    size_t i;
    json_array_foreach(json_object_get(r, "obs"), i, o)
    {
        const json_t *oc = json_object_get(o, "code");
        json_t *flags = json_object_get(o, "flags");
        json_array_append_new(
            obs, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "seq",
                           jstr(o, "seq"), "code", jstr(oc, "code"), "system", jstr(oc, "system"),
                           "display", jstr(oc, "display"), "type", jstr(o, "type"), "value",
                           jstr(o, "value"), "unit", jstr(o, "unit"), "range", jstr(o, "range"),
                           "flags", flags ? json_incref(flags) : json_array(), "status",
                           jstr(o, "status"), "time", jstr(o, "time")));
    }
    json_array_foreach(json_object_get(r, "messages"), i, o)
    {
        json_array_append_new(
            msgs, json_pack("{s:s, s:s}", "id", jstr(o, "id"), "sha256", jstr(o, "sha256")));
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "uid", jstr(r, "uid"), "code",
                     jstr(code, "code"), "display", jstr(code, "display"), "placer",
                     jstr(r, "placer"), "filler", jstr(r, "filler"), "status", jstr(r, "status"),
                     "observed", jstr(r, "observed"), "observations", obs, "messages", msgs);
}

/* ---- Redis ---- */

#define MARKER_FMT "hr:lab:msg:%s"

/* What the duplicate marker reply r says of m: 0 (none), 1 (the same
 * content: a duplicate), LAB_SEEN_REUSED (another message's content), or -1
 * when r is not a GET reply. */
static int marker_seen(const redisReply *r, const lab_msg *m)
{
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL))
        return -1;
    if (r->type == REDIS_REPLY_NIL)
        return 0;
    /* the same control id: a duplicate only with the same content */
    json_t *mk = json_loadb(r->str, r->len, 0, NULL);
    const char *body = jstr(mk, "body");
    int same =
        *body ? strcmp(body, m->body_sha256) == 0 : strcmp(jstr(mk, "sha256"), m->sha256) == 0;
    json_decref(mk);
    return same ? 1 : LAB_SEEN_REUSED;
}

int lab_msg_seen(redisContext *c, const lab_msg *m, int *seen)
{
    char part[3 * sizeof(m->id) + 1];
    *seen = 0;
    if (sto_key_part(m->id, part, sizeof(part)))
        return -EINVAL;
    redisReply *r = redisCommand(c, "GET " MARKER_FMT, part);
    int v = marker_seen(r, m);
    freeReplyObject(r);
    if (v < 0)
        return HR_EREDIS;
    *seen = v;
    return 0;
}

int lab_msg_seen_batch(redisContext *c, lab_msg *const *ms, size_t n, int *seen)
{
    char part[3 * sizeof(ms[0]->id) + 1];
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        seen[i] = 0;
        if (!ms[i])
            continue;
        if (sto_key_part(ms[i]->id, part, sizeof(part))) {
            seen[i] = -1;
            continue;
        }
        redisAppendCommand(c, "GET " MARKER_FMT, part);
        for (size_t a = 0; a < ms[i]->n; a++)
            redisAppendCommand(c, "HMGET hr:lab:{%s} json rev", ms[i]->rep[a].uid);
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (!ms[i] || seen[i] < 0)
            continue;
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            return HR_EREDIS;
        int v = marker_seen(r, ms[i]);
        if (v < 0)
            rc = HR_EREDIS;
        else
            seen[i] = v;
        freeReplyObject(r);
        for (size_t a = 0; a < ms[i]->n; a++) {
            r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK)
                return HR_EREDIS;
            freeReplyObject(ms[i]->rep[a].pre);
            ms[i]->rep[a].pre = r && r->type == REDIS_REPLY_ARRAY ? r : NULL;
            if (!ms[i]->rep[a].pre)
                freeReplyObject(r);
        }
    }
    return rc;
}

int lab_exists(redisContext *c, const char *uid)
{
    if (!dcm_uid_key_valid(uid))
        return 0;
    redisReply *r = redisCommand(c, "EXISTS hr:lab:{%s}", uid);
    int rc = r && r->type == REDIS_REPLY_INTEGER ? r->integer > 0 : -1;
    freeReplyObject(r);
    return rc;
}

int lab_get(redisContext *c, const char *uid, json_t **out)
{
    *out = NULL;
    if (!uid || !dcm_uid_key_valid(uid))
        return -EINVAL;
    redisReply *r = redisCommand(c, "HGET hr:lab:{%s} json", uid);
    int rc = !r || r->type == REDIS_REPLY_ERROR ? HR_EREDIS
             : r->type != REDIS_REPLY_STRING    ? HR_ENOTFOUND
                                                : 0;
    if (!rc) {
        *out = json_loadb(r->str, r->len, 0, NULL);
        rc = *out ? 0 : HR_EPARSE;
    }
    freeReplyObject(r);
    return rc;
}

/* "<system>|<code>|<sub id>": which earlier observation a new one replaces. */
static void obs_key(const json_t *o, char *out, size_t cap)
{
    const json_t *c = json_object_get(o, "code");
    snprintf(out, cap, "%s|%s|%s", jstr(c, "system"), jstr(c, "code"), jstr(o, "sub"));
}

static int same_result(const json_t *a, const json_t *b)
{
    return !strcmp(jstr(a, "value"), jstr(b, "value")) &&
           !strcmp(jstr(a, "unit"), jstr(b, "unit")) &&
           !strcmp(jstr(a, "status"), jstr(b, "status")) &&
           json_equal(json_object_get(a, "flags"), json_object_get(b, "flags"));
}

/* Critical flag of one observation ("" when not critical) and its detail. */
static const char *critical_of(const hr_config *cfg, const json_t *o, char *detail, size_t cap)
{
    const lab_config *l = cfg->lab;
    const json_t *flags = json_object_get(o, "flags"), *f;
    const json_t *code = json_object_get(o, "code");
    size_t i;
    const char *st = jstr(o, "status");
    snprintf(detail, cap, "%s", jstr(o, "range"));
    if (st[0] == 'D' || st[0] == 'X')
        return "";
    json_array_foreach(flags, i, f)
    {
        const char *s = json_string_value(f);
        if (!strcmp(s, "HH") || !strcmp(s, "LL"))
            return s;
        if (l && ((l->flag_aa && !strcmp(s, "AA")) || (l->flag_gt && !strcmp(s, ">")) ||
                  (l->flag_lt && !strcmp(s, "<"))))
            return s;
    }
    json_t *num = json_object_get(o, "num");
    for (size_t k = 0; l && num && k < l->n_ranges; k++) {
        const lab_range *r = &l->ranges[k];
        double v = json_number_value(num);
        if (strcmp(r->test, jstr(code, "code")) ||
            (r->system[0] && strcmp(r->system, jstr(code, "system"))) ||
            (r->unit[0] && strcmp(r->unit, jstr(o, "unit"))))
            continue;
        if ((r->has_low && v < r->low) || (r->has_high && v > r->high)) {
            char lo[32] = "", hi[32] = "";
            if (r->has_low)
                snprintf(lo, sizeof(lo), "%g", r->low);
            if (r->has_high)
                snprintf(hi, sizeof(hi), "%g", r->high);
            snprintf(detail, cap, "critical range %s-%s%s%s", lo, hi, r->unit[0] ? " " : "",
                     r->unit);
            return "range";
        }
    }
    return "";
}

/* Merges this message's report into cur (a new report when NULL): new *out. */
static int merge(const hr_config *cfg, const lab_msg *m, const lab_rep *rep,
                 const lab_stored *stored, long long now_ms, const json_t *cur, json_t **out)
{
    json_t *r = cur ? json_deep_copy(cur) : json_object();
    json_t *obs, *o, *msgs, *crit;
    size_t i;
    const char *k;
    json_t *v;
    *out = NULL;
    if (!r)
        return -ENOMEM;
    /* report-level fields: the newest message's (empty ones keep the old) */
    json_object_foreach(rep->obr, k, v)
    {
        if (json_is_string(v) && !*json_string_value(v) && json_object_get(r, k))
            continue;
        json_object_set(r, k, v);
    }
    if (!json_object_get(r, "created_ms"))
        json_object_set_new(r, "created_ms", json_integer(now_ms));
    json_object_set_new(r, "updated_ms", json_integer(now_ms));
    obs = json_object_get(r, "obs");
    if (!obs) {
        obs = json_array();
        json_object_set_new(r, "obs", obs);
    }
    json_array_foreach(rep->obs, i, o)
    {
        char key[512], key2[512];
        size_t j;
        json_t *old, *now = json_deep_copy(o);
        int replaced = 0;
        json_object_set_new(now, "received_ms", json_integer(now_ms));
        obs_key(o, key, sizeof(key));
        json_array_foreach(obs, j, old)
        {
            obs_key(old, key2, sizeof(key2));
            if (strcmp(key, key2))
                continue;
            json_t *hist = json_object_get(old, "history");
            hist = hist ? json_incref(hist) : json_array();
            if (!same_result(old, o)) {
                json_t *prev = json_deep_copy(old);
                json_object_del(prev, "history");
                json_array_append_new(hist, prev);
                while (json_array_size(hist) > LAB_HISTORY_MAX)
                    json_array_remove(hist, 0);
            }
            json_object_set_new(now, "history", hist);
            json_array_set_new(obs, j, now);
            replaced = 1;
            break;
        }
        if (!replaced) {
            if (json_array_size(obs) >= LAB_OBX_MAX) {
                /* refused, never dropped behind an AA */
                json_decref(now);
                json_decref(r);
                return HR_ETOOBIG;
            }
            json_object_set_new(now, "history", json_array());
            json_array_append_new(obs, now);
        }
    }
    /* the message that came */
    msgs = json_object_get(r, "messages");
    if (!msgs) {
        msgs = json_array();
        json_object_set_new(r, "messages", msgs);
    }
    json_array_append_new(msgs, json_pack("{s:s, s:s, s:s, s:{s:s, s:I, s:I}, s:I}", "id",
                                          m->control_id, "version", m->version, "sha256", m->sha256,
                                          "journal", "segment", stored ? stored->segment : "",
                                          "offset", (json_int_t)(stored ? stored->offset : 0),
                                          "len", (json_int_t)(stored ? stored->len : 0),
                                          "received_ms", (json_int_t)now_ms));
    /* critical values of the current observations */
    crit = json_array();
    json_array_foreach(obs, i, o)
    {
        char detail[256];
        const char *flag = critical_of(cfg, o, detail, sizeof(detail));
        if (!*flag)
            continue;
        const json_t *c = json_object_get(o, "code");
        json_array_append_new(crit, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "seq",
                                              jstr(o, "seq"), "code", jstr(c, "code"), "display",
                                              jstr(c, "display"), "value", jstr(o, "value"), "unit",
                                              jstr(o, "unit"), "flag", flag, "detail", detail,
                                              "msg", jstr(o, "msg")));
    }
    json_object_set_new(r, "critical", crit);
    *out = r;
    return 0;
}

static double date_score(const char *d)
{
    return strlen(d) == 8 ? atof(d) : 0;
}

/* The arguments of one report's script, built from the report read back
 * (HMGET json rev) merged with the message; they live until the reply. */
typedef struct lab_prep {
    json_t *next; /* the merged report */
    char *txt;    /* its JSON */
    char h[HR_UID_MAX + 16], mk[HR_UID_MAX + 16], st[HR_UID_MAX + 16];
    char member[HR_ID_MAX + LAB_CONTROL_ID_MAX + 16], rev[24], now[24], maxm[16], sha[41];
    const char *argv[22]; /* EVALSHA sha 3, then the script's keys and args */
    size_t len[22];
    int nidx;                           /* batch: index commands appended */
    int get_person;                     /* batch: GET hr:pix:pt appended */
    char person[RPT_PERSON_ID_LEN + 1]; /* batch: the report's person, "" when none */
} lab_prep;

static void prep_free(lab_prep *p)
{
    json_decref(p->next);
    free(p->txt);
    p->next = NULL;
    p->txt = NULL;
}

/* Merges rep into the report r (the HMGET reply) and fills p. 0, HR_EREDIS,
 * -ENOMEM. */
static int prep_report(const hr_config *cfg, const lab_msg *m, const lab_rep *rep,
                       const lab_stored *stored, long long now_ms, const redisReply *r, lab_prep *p)
{
    json_t *cur = NULL;
    memset(p, 0, sizeof(*p));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return HR_EREDIS;
    if (r->element[0]->type == REDIS_REPLY_STRING)
        cur = json_loadb(r->element[0]->str, r->element[0]->len, 0, NULL);
    snprintf(p->rev, sizeof(p->rev), "%s",
             r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "0");
    int rc = merge(cfg, m, rep, stored, now_ms, cur, &p->next);
    json_decref(cur);
    if (rc)
        return rc;
    p->txt = json_dumps(p->next, JSON_COMPACT);
    if (!p->txt) {
        prep_free(p);
        return -ENOMEM;
    }
    const json_t *pt = json_object_get(p->next, "patient"),
                 *code = json_object_get(p->next, "code");
    snprintf(p->h, sizeof(p->h), "hr:lab:{%s}", rep->uid);
    snprintf(p->mk, sizeof(p->mk), "hr:lab:{%s}:msgs", rep->uid);
    snprintf(p->st, sizeof(p->st), "hr:{%s}:st", rep->uid);
    snprintf(p->now, sizeof(p->now), "%lld", now_ms);
    snprintf(p->maxm, sizeof(p->maxm), "%d", LAB_MESSAGES_MAX);
    /* the message and which of its OBR: two OBR of one order and code
     * in one message are applied one after the other */
    snprintf(p->member, sizeof(p->member), "%s#%d", m->id, (int)(rep - m->rep) + 1);
    const char *acc = *jstr(p->next, "filler") ? jstr(p->next, "filler") : jstr(p->next, "placer");
    const char *args[] = {p->h,
                          p->mk,
                          p->st,
                          p->member,
                          p->rev,
                          p->txt,
                          p->now,
                          p->maxm,
                          m->hospital,
                          rep->pkey,
                          jstr(pt, "id"),
                          jstr(pt, "issuer"),
                          jstr(pt, "name"),
                          jstr(pt, "birth_date"),
                          jstr(pt, "sex"),
                          jstr(p->next, "date"),
                          acc,
                          *jstr(code, "display") ? jstr(code, "display") : jstr(code, "code"),
                          rep->uid};
    sto_script_sha1(k_lab_script, p->sha);
    p->argv[0] = "EVALSHA";
    p->argv[1] = p->sha;
    p->argv[2] = "3";
    for (int i = 0; i < 19; i++)
        p->argv[3 + i] = args[i];
    for (int i = 0; i < 22; i++)
        p->len[i] = strlen(p->argv[i]);
    return 0;
}

/* The script's answer for one report: 0 (rep->current keeps the report
 * written), 1 when it changed meanwhile (read and merge again),
 * HR_ETOOBIG, HR_EFORBIDDEN (held by another owner: rep->taken), HR_EREDIS.
 * Consumes p. */
static int prep_done(lab_rep *rep, lab_prep *p, const redisReply *x)
{
    long long code = x && x->type == REDIS_REPLY_ARRAY && x->elements == 2 &&
                             x->element[0]->type == REDIS_REPLY_INTEGER
                         ? x->element[0]->integer
                         : -1;
    rep->applied = code == 0;
    json_decref(rep->current);
    rep->current = NULL;
    if (code == 0) {
        rep->current = p->next;
        p->next = NULL;
    }
    prep_free(p);
    if (code == 4) { /* the UID is held by a study that is not this lab report */
        rep->taken = 1;
        return HR_EFORBIDDEN;
    }
    return code == 0 || code == 1 ? 0 : code == 2 ? 1 : code == 3 ? HR_ETOOBIG : HR_EREDIS;
}

/* One report: read, merge, commit (retried when it changed meanwhile). */
static int commit_report(redisContext *c, const hr_config *cfg, const lab_msg *m, lab_rep *rep,
                         const lab_stored *stored, long long now_ms)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        lab_prep p;
        redisReply *x = NULL;
        redisReply *r = redisCommand(c, "HMGET hr:lab:{%s} json rev", rep->uid);
        int rc = prep_report(cfg, m, rep, stored, now_ms, r, &p);
        freeReplyObject(r);
        if (!rc)
            rc = rpt__eval(c, k_lab_script, 3, 16, p.argv + 3, p.len + 3, &x);
        if (rc) {
            prep_free(&p);
            return rc;
        }
        rc = prep_done(rep, &p, x);
        freeReplyObject(x);
        if (rc == HR_EFORBIDDEN)
            hr_warn("lab", "%s: the lab report %s of %s is held by a study that is not it: refused",
                    m->id, rep->uid, m->hospital);
        if (rc != 1)
            return rc;
    }
    return HR_ESTATE;
}

static int pipeline_cmds(redisContext *c, int n)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            return HR_EREDIS;
        if (!r || r->type == REDIS_REPLY_ERROR)
            rc = HR_EREDIS;
        freeReplyObject(r);
    }
    return rc;
}

/* The person of the report's patient: linked through its national ID when
 * persons are configured (as the DICOM path does), else the existing link. */
static int person_of(redisContext *c, const hr_config *cfg, const lab_rep *rep, long long now_ms,
                     char person[RPT_PERSON_ID_LEN + 1])
{
    const pix_config *p = cfg->persons;
    char norm[RPT_ID_NUMBER_MAX], hmac[65];
    int rc;
    person[0] = 0;
    if (p && p->have_key && rep->national_id[0] &&
        !rpt_id_normalize(RPT_ID_NATIONAL, rep->national_id, norm, sizeof(norm))) {
        rc = rpt_id_hmac(p, RPT_ID_NATIONAL, norm, hmac);
        OPENSSL_cleanse(norm, sizeof(norm));
        if (rc)
            return rc;
        rpt_link_result lr;
        rc = rpt_person_link(c, rep->pkey, RPT_ID_NATIONAL, hmac, now_ms, &lr);
        if (rc == 0) {
            snprintf(person, RPT_PERSON_ID_LEN + 1, "%s", lr.person);
            return 0;
        }
        if (rc != -EEXIST && rc != HR_ETOOBIG)
            return rc;
    }
    rc = rpt_person_by_patient(c, rep->pkey, person);
    return rc == HR_ENOTFOUND ? 0 : rc;
}

/* Appends the global index ZADDs of one report (idempotent, after its
 * script) to c's pipeline: the number of commands appended. */
static int index_append(redisContext *c, const lab_msg *m, const lab_rep *rep, long long now_ms)
{
    char part[3 * 256 + 1], hpart[3 * HR_ID_MAX + 1];
    double score = date_score(jstr(rep->obr, "date"));
    int n = 0;
    size_t i;
    json_t *o;
    sto_key_part(m->hospital, hpart, sizeof(hpart));
    redisAppendCommand(c, "ZADD hr:lab:ix:pt:%s %.0f %s", rep->pkey, score, rep->uid), n++;
    redisAppendCommand(c, "ZADD hr:lab:ix:date %.0f %s", score, rep->uid), n++;
    redisAppendCommand(c, "ZADD hr:lab:ix:hosp:%s %lld %s", hpart, now_ms, rep->uid), n++;
    if (!sto_key_part(jstr(rep->obr, "placer"), part, sizeof(part)) && part[0])
        redisAppendCommand(c, "ZADD hr:lab:ix:placer:%s|%s %.0f %s", hpart, part, score, rep->uid),
            n++;
    if (!sto_key_part(jstr(rep->obr, "filler"), part, sizeof(part)) && part[0])
        redisAppendCommand(c, "ZADD hr:lab:ix:filler:%s|%s %.0f %s", hpart, part, score, rep->uid),
            n++;
    if (!sto_key_part(jstr(json_object_get(rep->obr, "code"), "code"), part, sizeof(part)))
        redisAppendCommand(c, "ZADD hr:lab:ix:test:%s %.0f %s", part, score, rep->uid), n++;
    json_array_foreach(rep->obs, i, o)
    {
        if (!sto_key_part(jstr(json_object_get(o, "code"), "code"), part, sizeof(part)))
            redisAppendCommand(c, "ZADD hr:lab:ix:test:%s %.0f %s", part, score, rep->uid), n++;
    }
    return n;
}

/* Appends the person's lab index and the report's person field: 2. */
static int person_append(redisContext *c, const lab_rep *rep, const char *person)
{
    redisAppendCommand(c, "ZADD hr:person:{%s}:lab %.0f %s", person,
                       date_score(jstr(rep->obr, "date")), rep->uid);
    redisAppendCommand(c, "HSET hr:lab:{%s} person %s", rep->uid, person);
    return 2;
}

/* The global indexes and the person of one report. */
static int index_report(redisContext *c, const hr_config *cfg, const lab_msg *m, const lab_rep *rep,
                        long long now_ms)
{
    char person[RPT_PERSON_ID_LEN + 1];
    int rc = pipeline_cmds(c, index_append(c, m, rep, now_ms));
    if (rc)
        return rc;
    rc = person_of(c, cfg, rep, now_ms, person);
    if (rc || !person[0])
        return rc;
    return pipeline_cmds(c, person_append(c, rep, person));
}

/* HR_EFORBIDDEN (rep->taken) when a report's UID is held by a study that is
 * not this hospital's lab report: checked for all before any is committed,
 * so a refused message leaves nothing (the script checks again). */
static int check_owners(redisContext *c, lab_msg *m)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < m->n; i++) {
        redisReply *r = redisCommand(c, "HMGET hr:{%s}:st hospital kind", m->rep[i].uid);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            rc = HR_EREDIS;
        else if (r->element[0]->type == REDIS_REPLY_STRING &&
                 (strcmp(r->element[0]->str, m->hospital) ||
                  r->element[1]->type != REDIS_REPLY_STRING || strcmp(r->element[1]->str, "lab"))) {
            m->rep[i].taken = 1;
            hr_warn("lab", "%s: the lab report %s is held by a study of %s: refused", m->id,
                    m->rep[i].uid, r->element[0]->str);
            rc = HR_EFORBIDDEN;
        }
        freeReplyObject(r);
    }
    return rc;
}

int lab_msg_commit_index(redisContext *c, const hr_config *cfg, lab_msg *m,
                         const lab_stored *stored, long long now_ms)
{
    int rc = check_owners(c, m);
    for (size_t i = 0; !rc && i < m->n; i++) {
        rc = commit_report(c, cfg, m, &m->rep[i], stored, now_ms);
        if (!rc)
            rc = index_report(c, cfg, m, &m->rep[i], now_ms);
    }
    return rc;
}

/* One critical observation as an alert (reports/alert.h): idempotent on
 * (exam, "obx:<OBX-1>", test code), so a resend raises nothing twice. */
static int raise_critical(redisContext *c, const hr_config *cfg, const char *exam,
                          const char *hospital, const char *center, const json_t *report,
                          const json_t *crit, long long now_ms)
{
    char ref[64], value[512], id[ALR_ID_MAX];
    const json_t *pt = json_object_get(report, "patient");
    snprintf(ref, sizeof(ref), "obx:%s", jstr(crit, "seq"));
    snprintf(value, sizeof(value), "%s%s%s", jstr(crit, "value"), *jstr(crit, "unit") ? " " : "",
             jstr(crit, "unit"));
    alr_source s = {
        .kind = "lab",
        .exam = exam,
        .ref = ref,
        .hospital = hospital,
        .center = center,
        .patient = jstr(pt, "key"),
        .patient_name = jstr(pt, "name"),
        .item = jstr(crit, "code"),
        .item_name = jstr(crit, "display"),
        .value = value,
        .flag = jstr(crit, "flag"),
        .detail = jstr(crit, "detail"),
        .now_ms = now_ms,
    };
    int rc = alr_raise(c, cfg, &s, id, NULL);
    if (rc)
        hr_warn("lab", "critical value of %s (%s) not raised: %s", exam, ref, hr_strerror(rc));
    return rc;
}

/* Routing (decision 0041): a report matching lab.review goes to the lab
 * center's worklist, ready at once; otherwise it is final at the township. */
static int route_report(redisContext *c, const hr_config *cfg, const lab_msg *m, const lab_rep *rep,
                        const json_t *report, long long now_ms, const char **center)
{
    const char *tests[LAB_OBX_MAX + 1];
    size_t n = 0, i;
    json_t *o;
    *center = "";
    tests[n++] = jstr(json_object_get(report, "code"), "code");
    json_array_foreach(json_object_get(report, "obs"), i, o)
    {
        if (n >= LAB_OBX_MAX + 1)
            break;
        tests[n++] = jstr(json_object_get(o, "code"), "code");
    }
    const lab_rule *rule = lab_config_review(cfg, m->hospital, tests, n);
    if (!rule)
        return 0;
    const hr_center *ce = hr_config_center(cfg, rule->center);
    if (!ce)
        return 0;
    *center = ce->id;
    const json_t *pt = json_object_get(report, "patient"), *code = json_object_get(report, "code");
    wl_arrival a = {
        .study = rep->uid,
        .modality = "LAB",
        .procedure = *jstr(code, "display") ? jstr(code, "display") : jstr(code, "code"),
        .hospital = m->hospital,
        .patient = rep->pkey,
        .patient_name = jstr(pt, "name"),
        .accession = *jstr(report, "filler") ? jstr(report, "filler") : jstr(report, "placer"),
        .study_date = jstr(report, "date"),
        .now_ms = now_ms,
        .center = ce,
        .priority = rule->priority,
        /* a resend after a crash: creates a missing item, flags nothing */
        .repeat = !rep->applied,
    };
    int rc = wl_arrive(c, cfg, &a, NULL);
    if (!rc)
        rc = wl_complete(c, rep->uid, "", now_ms);
    return rc;
}

/* After the index commit: routing and the critical values of m's reports. */
static int commit_after(redisContext *c, const hr_config *cfg, lab_msg *m, long long now_ms,
                        int *critical)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < m->n; i++) {
        json_t *report = NULL, *cr;
        const char *center = "";
        size_t k;
        /* the report as committed, without reading it back when this
         * commit wrote it */
        if (m->rep[i].current)
            report = json_incref(m->rep[i].current);
        else
            rc = lab_get(c, m->rep[i].uid, &report);
        if (rc)
            break;
        rc = route_report(c, cfg, m, &m->rep[i], report, now_ms, &center);
        json_array_foreach(json_object_get(report, "critical"), k, cr)
        {
            if (rc)
                break;
            if (strcmp(jstr(cr, "msg"), m->control_id))
                continue; /* raised with the message that brought it */
            rc = raise_critical(c, cfg, m->rep[i].uid, m->hospital, center, report, cr, now_ms);
            if (!rc && critical)
                (*critical)++;
        }
        json_decref(report);
    }
    return rc;
}

/* Appends the duplicate marker of m (written last) to c's pipeline. 0,
 * -EINVAL, -ENOMEM. */
static int marker_append(redisContext *c, const lab_msg *m, const lab_stored *stored,
                         long long now_ms)
{
    char part[3 * sizeof(m->id) + 1];
    if (sto_key_part(m->id, part, sizeof(part)))
        return -EINVAL;
    json_t *mk = json_pack("{s:s, s:s, s:s, s:I}", "sha256", m->sha256, "body", m->body_sha256,
                           "segment", stored ? stored->segment : "", "ms", (json_int_t)now_ms);
    json_t *uids = json_array();
    for (size_t i = 0; i < m->n; i++)
        json_array_append_new(uids, json_string(m->rep[i].uid));
    json_object_set_new(mk, "uids", uids);
    char *txt = json_dumps(mk, JSON_COMPACT);
    json_decref(mk);
    if (!txt)
        return -ENOMEM;
    redisAppendCommand(c, "SET " MARKER_FMT " %s", part, txt);
    free(txt);
    return 0;
}

static int marker_reply(redisContext *c)
{
    redisReply *r = NULL;
    if (redisGetReply(c, (void **)&r) != REDIS_OK)
        return HR_EREDIS;
    int rc = r && r->type == REDIS_REPLY_STATUS ? 0 : HR_EREDIS;
    freeReplyObject(r);
    return rc;
}

int lab_msg_commit(redisContext *c, const hr_config *cfg, lab_msg *m, const lab_stored *stored,
                   long long now_ms, int *critical)
{
    int rc;
    if (critical)
        *critical = 0;
    rc = lab_msg_commit_index(c, cfg, m, stored, now_ms);
    if (!rc)
        rc = commit_after(c, cfg, m, now_ms, critical);
    if (!rc)
        rc = marker_append(c, m, stored, now_ms);
    return rc ? rc : marker_reply(c);
}

/* ---- the batched commit: one pipelined round per step for all ---- */

typedef struct uid_ref {
    const char *uid;
    size_t msg, rep;
} uid_ref;

static int uid_ref_cmp(const void *a, const void *b)
{
    const uid_ref *x = a, *y = b;
    int d = strcmp(x->uid, y->uid);
    if (d)
        return d;
    if (x->msg != y->msg)
        return x->msg < y->msg ? -1 : 1;
    return x->rep < y->rep ? -1 : x->rep > y->rep;
}

/* Reads n replies into nothing: HR_EREDIS when the connection broke (1 in
 * *broken) or any is an error. */
static int drain(redisContext *c, int n, int *broken)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            *broken = 1;
            return HR_EREDIS;
        }
        if (!r || r->type == REDIS_REPLY_ERROR)
            rc = HR_EREDIS;
        freeReplyObject(r);
    }
    return rc;
}

int lab_msg_commit_batch(redisContext *c, const hr_config *cfg, lab_msg *const *ms,
                         const lab_stored *stored, const long long *now_ms, size_t n, int *rcs)
{
    const pix_config *px = cfg->persons;
    size_t total = 0, k, i, a;
    int broken = 0, rc = 0;
    for (i = 0; i < n; i++) {
        rcs[i] = 0;
        total += ms[i]->n;
    }
    lab_prep *p = calloc(total ? total : 1, sizeof(*p));
    uid_ref *refs = calloc(total ? total : 1, sizeof(*refs));
    unsigned char *seq = calloc(n ? n : 1, 2), *on = seq + (n ? n : 1);
    if (!p || !refs || !seq) {
        rc = -ENOMEM;
        goto out;
    }
    /* a message sharing a report with an earlier one of the batch (or two
     * OBR of one report) waits for the sequential path, in order: the
     * reports' messages are applied in the order they came */
    for (i = 0, k = 0; i < n; i++)
        for (a = 0; a < ms[i]->n; a++, k++)
            refs[k] = (uid_ref){ms[i]->rep[a].uid, i, a};
    qsort(refs, total, sizeof(*refs), uid_ref_cmp);
    for (k = 1; k < total; k++)
        if (!strcmp(refs[k].uid, refs[k - 1].uid))
            seq[refs[k].msg] = 1;
    /* a message of several reports too: the sequential path checks that the
     * hospital owns every one of them before it writes any (check_owners),
     * where a script here would refuse only the report it writes */
    for (i = 0; i < n; i++)
        if (ms[i]->n > 1)
            seq[i] = 1;

    /* 1. read the reports (HMGET), merge */
    for (i = 0; i < n; i++) {
        on[i] = !seq[i];
        for (a = 0; on[i] && a < ms[i]->n; a++)
            if (!ms[i]->rep[a].pre)
                redisAppendCommand(c, "HMGET hr:lab:{%s} json rev", ms[i]->rep[a].uid);
    }
    /* (read with the duplicate check: if it changed since, the script says
     * so and the message goes down the sequential path, which reads again) */
    for (i = 0, k = 0; i < n; k += ms[i]->n, i++)
        for (a = 0; on[i] && a < ms[i]->n; a++) {
            redisReply *r = ms[i]->rep[a].pre;
            ms[i]->rep[a].pre = NULL;
            if (!r && redisGetReply(c, (void **)&r) != REDIS_OK) {
                broken = 1;
                goto out;
            }
            int e = prep_report(cfg, ms[i], &ms[i]->rep[a], &stored[i], now_ms[i], r, &p[k + a]);
            freeReplyObject(r);
            if (e && !rcs[i])
                rcs[i] = e;
        }

    /* 2. the scripts (one slot each); a report that changed meanwhile, or
     * a script not loaded yet, sends its message down the sequential path */
    for (i = 0, k = 0; i < n; k += ms[i]->n, i++) {
        on[i] = !seq[i] && !rcs[i];
        for (a = 0; on[i] && a < ms[i]->n; a++)
            redisAppendCommandArgv(c, 22, p[k + a].argv, p[k + a].len);
    }
    for (i = 0, k = 0; i < n; k += ms[i]->n, i++)
        for (a = 0; on[i] && a < ms[i]->n; a++) {
            redisReply *x = NULL;
            if (redisGetReply(c, (void **)&x) != REDIS_OK) {
                broken = 1;
                goto out;
            }
            int e = prep_done(&ms[i]->rep[a], &p[k + a], x);
            if (e == 1 || (x && x->type == REDIS_REPLY_ERROR))
                seq[i] = 1;
            else if (e && !rcs[i])
                rcs[i] = e;
            freeReplyObject(x);
        }

    /* 3. the global indexes and the persons by patient */
    for (i = 0, k = 0; i < n; k += ms[i]->n, i++) {
        on[i] = !seq[i] && !rcs[i];
        for (a = 0; on[i] && a < ms[i]->n; a++) {
            const lab_rep *rep = &ms[i]->rep[a];
            p[k + a].nidx = index_append(c, ms[i], rep, now_ms[i]);
            p[k + a].get_person = !(px && px->have_key && rep->national_id[0]);
            if (p[k + a].get_person)
                redisAppendCommand(c, "GET hr:pix:pt:%s", rep->pkey);
        }
    }
    for (i = 0, k = 0; i < n; k += ms[i]->n, i++)
        for (a = 0; on[i] && a < ms[i]->n; a++) {
            int e = drain(c, p[k + a].nidx, &broken);
            if (broken)
                goto out;
            if (e && !rcs[i])
                rcs[i] = e;
            if (!p[k + a].get_person)
                continue;
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK) {
                broken = 1;
                goto out;
            }
            if (!r || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING)) {
                if (!rcs[i])
                    rcs[i] = HR_EREDIS;
            } else if (r->type == REDIS_REPLY_STRING && rpt_person_id_valid(r->str)) {
                snprintf(p[k + a].person, sizeof(p[k + a].person), "%s", r->str);
            }
            freeReplyObject(r);
        }
    /* persons linked through a national ID: one by one (rare) */
    for (i = 0, k = 0; i < n; k += ms[i]->n, i++)
        for (a = 0; on[i] && !rcs[i] && a < ms[i]->n; a++)
            if (!p[k + a].get_person)
                rcs[i] = person_of(c, cfg, &ms[i]->rep[a], now_ms[i], p[k + a].person);
    for (i = 0, k = 0; i < n; k += ms[i]->n, i++) {
        on[i] = !seq[i] && !rcs[i];
        for (a = 0; on[i] && a < ms[i]->n; a++)
            if (p[k + a].person[0])
                p[k + a].nidx = person_append(c, &ms[i]->rep[a], p[k + a].person);
            else
                p[k + a].nidx = 0;
    }
    for (i = 0, k = 0; i < n; k += ms[i]->n, i++)
        for (a = 0; on[i] && a < ms[i]->n; a++) {
            int e = drain(c, p[k + a].nidx, &broken);
            if (broken)
                goto out;
            if (e && !rcs[i])
                rcs[i] = e;
        }

    /* 4. routing and critical values (blocking, only where configured or
     * found) */
    for (i = 0; i < n; i++)
        if (!seq[i] && !rcs[i])
            rcs[i] = commit_after(c, cfg, ms[i], now_ms[i], NULL);

    /* 5. the duplicate markers, last */
    for (i = 0; i < n; i++) {
        on[i] = !seq[i] && !rcs[i];
        if (on[i] && (rcs[i] = marker_append(c, ms[i], &stored[i], now_ms[i])) != 0)
            on[i] = 0;
    }
    for (i = 0; i < n; i++)
        if (on[i] && (rcs[i] = marker_reply(c)) != 0 && c->err) {
            broken = 1;
            goto out;
        }

    /* 6. the messages left for the sequential path, in order */
    for (i = 0; i < n; i++)
        if (seq[i] && !rcs[i])
            rcs[i] = lab_msg_commit(c, cfg, ms[i], &stored[i], now_ms[i], NULL);
out:
    if (broken) {
        rc = HR_EREDIS;
        for (i = 0; i < n; i++)
            if (!rcs[i] || seq[i])
                rcs[i] = HR_EREDIS;
    } else if (rc) {
        for (i = 0; i < n; i++)
            rcs[i] = rc;
    }
    for (k = 0; p && k < total; k++)
        prep_free(&p[k]);
    free(p);
    free(refs);
    free(seq);
    return rc;
}

int lab_person_reports(redisContext *c, const char *person, int max, json_t **out)
{
    *out = json_array();
    if (!*out)
        return -ENOMEM;
    if (!rpt_person_id_valid(person) || max <= 0)
        return 0;
    redisReply *r = redisCommand(c, "ZREVRANGE hr:person:{%s}:lab 0 %d", person, max - 1);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return HR_EREDIS;
    }
    int rc = 0;
    for (size_t i = 0; !rc && i < r->elements; i++) {
        json_t *rep;
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        rc = lab_get(c, r->element[i]->str, &rep);
        if (rc == HR_ENOTFOUND || rc == HR_EPARSE || rc == -EINVAL) {
            rc = 0;
            continue;
        }
        if (!rc)
            json_array_append_new(*out, rep);
    }
    freeReplyObject(r);
    return rc;
}
