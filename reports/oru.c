/* ORU^R01 builder and ACK reader (layout in oru.h). */
#include "oru.h"
#include "hl7.h"
#include "../common/hr_err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Appends with the first error kept: the builder checks once at the end. */
typedef struct wr {
    hr_buf *b;
    int rc;
} wr;

static void lit(wr *w, const char *s)
{
    if (!w->rc)
        w->rc = hr_buf_append(w->b, s, strlen(s));
}

static void esc(wr *w, const char *s)
{
    if (!w->rc && s)
        w->rc = rpt_hl7_escape(s, w->b);
}

int rpt_hl7_escape(const char *s, hr_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    const char *run = s;
    for (const char *p = s; !rc; p++) {
        unsigned char ch = (unsigned char)*p;
        const char *rep = NULL;
        char x[6];
        switch (ch) {
        case '|':
            rep = "\\F\\";
            break;
        case '^':
            rep = "\\S\\";
            break;
        case '&':
            rep = "\\T\\";
            break;
        case '~':
            rep = "\\R\\";
            break;
        case '\\':
            rep = "\\E\\";
            break;
        default:
            if (ch != 0 && (ch < 0x20 || ch == 0x7F)) {
                x[0] = '\\';
                x[1] = 'X';
                x[2] = hex[ch >> 4];
                x[3] = hex[ch & 15];
                x[4] = '\\';
                x[5] = '\0';
                rep = x;
            }
        }
        if (!rep && ch)
            continue;
        if (p > run)
            rc = hr_buf_append(out, run, (size_t)(p - run));
        if (!ch)
            break;
        if (!rc)
            rc = hr_buf_append(out, rep, strlen(rep));
        run = p + 1;
    }
    return rc;
}

static const char *jget(const json_t *o, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(o, k1);
    if (k2)
        v = json_object_get(v, k2);
    const char *s = json_string_value(v);
    return s ? s : "";
}

const char *rpt_oru_obr_status(const char *status)
{
    if (!status)
        return NULL;
    if (strcmp(status, "final") == 0)
        return "F";
    if (strcmp(status, "amended") == 0 || strcmp(status, "corrected") == 0)
        return "C";
    if (strcmp(status, "entered-in-error") == 0)
        return "X";
    return NULL;
}

const char *rpt_oru_obx_status(const char *status)
{
    const char *s = rpt_oru_obr_status(status);
    if (!s)
        return NULL;
    return s[0] == 'X' ? "W" : s;
}

/* HL7 DTM of ms since the epoch, UTC: YYYYMMDDHHMMSS.SSS+0000. */
static void dtm_ms(long long ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 32, "%04d%02d%02d%02d%02d%02d.%03d+0000", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* HL7 DTM of an RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SS[.fff]Z"; "" when it
 * is not one. */
static void dtm_iso(const char *s, char out[32])
{
    int ok = strlen(s) >= 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
             s[16] == ':' && s[strlen(s) - 1] == 'Z';
    static const int pos[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; ok && i < sizeof(pos) / sizeof(pos[0]); i++) {
        char ch = s[pos[i]];
        ok = ch >= '0' && ch <= '9';
        out[n++] = ch;
    }
    if (ok && s[19] == '.') {
        out[n++] = '.';
        for (int i = 20; n < 18 && s[i] >= '0' && s[i] <= '9'; i++)
            out[n++] = s[i];
        ok = out[n - 1] != '.';
    }
    if (!ok) {
        out[0] = '\0';
        return;
    }
    snprintf(out + n, 32 - n, "+0000");
}

/* A DICOM PN ("Family^Given^Middle^Prefix^Suffix", groups split by '=')
 * as XPN repetitions (family^given^second^suffix^prefix). */
static void name_xpn(wr *w, const char *pn)
{
    int reps = 0;
    const char *g = pn;
    while (!w->rc) {
        size_t glen = strcspn(g, "=");
        const char *comp[5] = {"", "", "", "", ""};
        size_t clen[5] = {0, 0, 0, 0, 0};
        const char *c = g;
        for (int i = 0; i < 5 && c <= g + glen; i++) {
            size_t n = strcspn(c, "^=");
            comp[i] = c;
            clen[i] = n;
            c += n;
            if (*c != '^')
                break;
            c++;
        }
        static const int order[5] = {0, 1, 2, 4, 3};
        int last = -1;
        for (int i = 0; i < 5; i++)
            if (clen[order[i]])
                last = i;
        if (last >= 0) {
            if (reps++)
                lit(w, "~");
            for (int i = 0; i <= last; i++) {
                char part[256];
                size_t n = clen[order[i]] < sizeof(part) - 1 ? clen[order[i]] : sizeof(part) - 1;
                memcpy(part, comp[order[i]], n);
                part[n] = '\0';
                if (i)
                    lit(w, "^");
                esc(w, part);
            }
        }
        if (g[glen] != '=')
            break;
        g += glen + 1;
    }
}

/* One TX OBX per line of text (CRLF or LF; an empty text: one empty OBX). */
static void text_obx(wr *w, int *set_id, const char *ident, int sub, const char *text,
                     const char *st)
{
    const char *line = text;
    char num[32];
    for (;;) {
        size_t n = strcspn(line, "\n");
        size_t keep = n && line[n - 1] == '\r' ? n - 1 : n;
        snprintf(num, sizeof(num), "OBX|%d|TX|", ++*set_id);
        lit(w, num);
        lit(w, ident);
        snprintf(num, sizeof(num), "|%d|", sub);
        lit(w, num);
        if (!w->rc && keep) {
            /* escape a copy of the line (no NUL inside a JSON string's C form) */
            hr_buf tmp;
            hr_buf_init(&tmp, RPT_ORU_MAX);
            w->rc = hr_buf_append(&tmp, line, keep);
            if (!w->rc)
                w->rc = hr_buf_append(&tmp, "", 1);
            esc(w, (const char *)tmp.data);
            hr_buf_free(&tmp);
        }
        lit(w, "||||||");
        lit(w, st);
        lit(w, "\r");
        if (line[n] != '\n' || w->rc)
            break;
        line += n + 1;
    }
}

/* A control id we write: 1..20 printable ASCII, no delimiter. */
static int control_id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= RPT_HL7_CONTROL_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7F || strchr("|^~\\&", s[i]))
            return 0;
    return 1;
}

/* XCN-like value of a signer in OBR-32/33 (NDL: CNN first component, its
 * parts as subcomponents): user&family name. */
static void interpreter(wr *w, const json_t *s)
{
    esc(w, jget(s, "user", NULL));
    lit(w, "&");
    esc(w, jget(s, "name", NULL));
}

int rpt_oru_build(const json_t *payload, const rpt_oru_params *p, hr_buf *out)
{
    const json_t *report = json_object_get(payload, "report");
    const json_t *exam = json_object_get(payload, "exam");
    const json_t *patient = json_object_get(payload, "patient");
    const json_t *content = json_object_get(payload, "content");
    const json_t *signers = json_object_get(payload, "signers");
    const char *id = jget(report, "id", NULL);
    const char *status = jget(report, "status", NULL);
    const json_t *ver = json_object_get(report, "version");
    const char *obr_st = rpt_oru_obr_status(status), *obx_st = rpt_oru_obx_status(status);
    if (!*id || !json_is_integer(ver) || !obr_st || !control_id_ok(p->control_id))
        return -EINVAL;
    size_t start = out->len;
    wr w = {out, 0};
    char t[32], num[64];

    /* MSH */
    lit(&w, "MSH|^~\\&|HUREN|");
    esc(&w, p->sending_facility);
    lit(&w, "|");
    esc(&w, p->receiving_application);
    lit(&w, "|");
    esc(&w, p->receiving_facility);
    lit(&w, "|");
    dtm_ms(p->now_ms, t);
    lit(&w, t);
    lit(&w, "||ORU^R01^ORU_R01|");
    lit(&w, p->control_id);
    lit(&w, "|P|2.5.1|||||CHN|UNICODE UTF-8\r");

    /* PID */
    lit(&w, "PID|1||");
    esc(&w, jget(patient, "id", NULL));
    if (*jget(patient, "issuer", NULL)) {
        lit(&w, "^^^");
        esc(&w, jget(patient, "issuer", NULL));
    }
    lit(&w, "||");
    name_xpn(&w, jget(patient, "name", NULL));
    lit(&w, "||");
    esc(&w, jget(patient, "birth_date", NULL));
    lit(&w, "|");
    esc(&w, jget(patient, "sex", NULL));
    lit(&w, "\r");

    /* ORC, OBR */
    const char *filler = *jget(exam, "accession", NULL) ? jget(exam, "accession", NULL) : id;
    lit(&w, "ORC|RE||");
    esc(&w, filler);
    lit(&w, "\r");
    lit(&w, "OBR|1||");
    esc(&w, filler);
    lit(&w, "|^");
    esc(&w, *jget(exam, "procedure", NULL) ? jget(exam, "procedure", NULL)
                                           : jget(exam, "modality", NULL));
    lit(&w, "|||");
    esc(&w, jget(exam, "study_date", NULL));
    lit(&w, "|||||||||||||"); /* OBR-8 .. OBR-20 */
    esc(&w, id);
    snprintf(num, sizeof(num), "/%lld||", (long long)json_integer_value(ver));
    lit(&w, num); /* OBR-21 empty */
    dtm_iso(jget(payload, "signed_at", NULL), t);
    lit(&w, t); /* OBR-22 */
    lit(&w, "||");
    esc(&w, p->diag_section);
    lit(&w, "|");
    lit(&w, obr_st);
    lit(&w, "|||||||"); /* OBR-26 .. OBR-32 */
    size_t ns = json_array_size(signers);
    if (ns) {
        interpreter(&w, json_array_get(signers, ns - 1)); /* the final signer */
        lit(&w, "|");
        for (size_t i = 0; i + 1 < ns; i++) {
            if (i)
                lit(&w, "~");
            interpreter(&w, json_array_get(signers, i));
        }
    }
    lit(&w, "\r");

    /* NTE per signer */
    for (size_t i = 0; i < ns; i++) {
        const json_t *s = json_array_get(signers, i);
        char line[1024];
        snprintf(line, sizeof(line), "%s: %s (%s), %s, %s, %s", jget(s, "function", NULL),
                 jget(s, "name", NULL), jget(s, "user", NULL), jget(s, "role", NULL),
                 jget(s, "center", NULL), jget(s, "signed_at", NULL));
        snprintf(num, sizeof(num), "NTE|%zu|L|", i + 1);
        lit(&w, num);
        esc(&w, line);
        lit(&w, "\r");
    }

    /* OBX: findings, impression, the signed report */
    int set_id = 0;
    text_obx(&w, &set_id, "121071^Finding^DCM", 1, jget(content, "findings", NULL), obx_st);
    text_obx(&w, &set_id, "121073^Impression^DCM", 2, jget(content, "impression", NULL), obx_st);
    if (p->report_url && *p->report_url) {
        snprintf(num, sizeof(num), "OBX|%d|RP|REPORT^Signed report (JWS)^99HUREN|3|", ++set_id);
        lit(&w, num);
        esc(&w, p->report_url);
        lit(&w, "^HUREN^AP^jose||||||");
        lit(&w, obx_st);
        lit(&w, "\r");
    }
    if (!w.rc && out->len - start > RPT_ORU_MAX)
        w.rc = HR_ETOOBIG;
    if (w.rc)
        out->len = start;
    return w.rc;
}

/* ---- ACK ---- */

/* Appends s to out[*tl..cap) (cut at the cap, NUL-terminated). */
static void text_add(char *out, size_t cap, size_t *tl, const char *s)
{
    size_t n = strlen(s);
    if (*tl + 1 >= cap)
        return;
    if (n > cap - 1 - *tl)
        n = cap - 1 - *tl;
    memcpy(out + *tl, s, n);
    *tl += n;
    out[*tl] = '\0';
}

int rpt_hl7_ack_parse(const uint8_t *msg, size_t len, rpt_hl7_ack *out)
{
    rpt_hl7_msg *m = NULL;
    rpt_hl7_parser p;
    size_t off = 0, used, tl = 0;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    /* any version, any charset (the text is for logs) */
    rpt_hl7_parser_init(&p, "UNICODE UTF-8", RPT_HL7_LOOSE);
    while (off < len && rc >= 0) {
        rc = rpt_hl7_parser_feed(&p, msg + off, len - off, &used);
        off += used;
    }
    if (rc >= 0)
        rc = rpt_hl7_parser_finish(&p, &m);
    rpt_hl7_parser_free(&p);
    if (rc < 0)
        return HR_EPARSE;
    const rpt_hl7_seg *msa = rpt_hl7_find(m, "MSA", 0, NULL);
    if (!msa || !*rpt_hl7_get(msa, 1, 0, 0, 0)) {
        rpt_hl7_free(m);
        return HR_EPARSE;
    }
    snprintf(out->code, sizeof(out->code), "%s", rpt_hl7_get(msa, 1, 0, 0, 0));
    snprintf(out->control_id, sizeof(out->control_id), "%s", rpt_hl7_get(msa, 2, 0, 0, 0));
    text_add(out->text, sizeof(out->text), &tl, rpt_hl7_get(msa, 3, 0, 0, 0));
    /* each ERR whole (v2.5 ERR-3 code, ERR-8 user message; v2.3 ERR-1) */
    for (size_t i = 0; (rpt_hl7_find(m, "ERR", i, &i)); i++) {
        const rpt_hl7_seg *e = rpt_hl7_seg_at(m, i);
        if (tl)
            text_add(out->text, sizeof(out->text), &tl, "; ");
        for (int f = 1; f <= rpt_hl7_nfields(e); f++) {
            if (f > 1)
                text_add(out->text, sizeof(out->text), &tl, "|");
            text_add(out->text, sizeof(out->text), &tl, rpt_hl7_get(e, f, 0, 0, 0));
        }
    }
    for (char *q = out->text; *q; q++)
        if ((unsigned char)*q < 0x20)
            *q = ' ';
    rpt_hl7_free(m);
    return 0;
}

int rpt_hl7_ack_ok(const rpt_hl7_ack *ack, const char *control_id)
{
    return (strcmp(ack->code, "AA") == 0 || strcmp(ack->code, "CA") == 0) &&
           strcmp(ack->control_id, control_id) == 0;
}
