/* DICOM waveform decoder and ECG waveform JSON writer (ecg.h). */
#include "dicom/ecg.h"

#include "common/hr_err.h"
#include "dicom/charset.h"
#include "dicom/p10.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_CHARSET      0x00080005u
#define T_SOP_CLASS    0x00080016u
#define T_SOP_INSTANCE 0x00080018u
#define T_STUDY_DATE   0x00080020u
#define T_CONTENT_DATE 0x00080023u
#define T_ACQ_DT       0x0008002Au
#define T_STUDY_TIME   0x00080030u
#define T_CONTENT_TIME 0x00080033u
#define T_MODALITY     0x00080060u
#define T_CODE_VALUE   0x00080100u
#define T_CODE_SCHEME  0x00080102u
#define T_CODE_MEANING 0x00080104u
#define T_PAT_NAME     0x00100010u
#define T_PAT_ID       0x00100020u
#define T_PAT_BIRTH    0x00100030u
#define T_PAT_SEX      0x00100040u
#define T_STUDY_UID    0x0020000Du
#define T_SERIES_UID   0x0020000Eu
#define T_N_CHANNELS   0x003A0005u
#define T_N_SAMPLES    0x003A0010u
#define T_FS           0x003A001Au
#define T_GROUP_LABEL  0x003A0020u
#define T_CHANNEL_DEF  0x003A0200u
#define T_CH_SOURCE    0x003A0208u
#define T_CH_SENS      0x003A0210u
#define T_CH_UNITS     0x003A0211u
#define T_CH_CORR      0x003A0212u
#define T_CH_BASELINE  0x003A0213u
#define T_UNITS_CODE   0x004008EAu
#define T_CONCEPT_NAME 0x0040A043u
#define T_TEXT_VALUE   0x0040A160u
#define T_NUMERIC      0x0040A30Au
#define T_ANNOTATIONS  0x0040B020u
#define T_UNFORMATTED  0x00700006u
#define T_WAVEFORM_SEQ 0x54000100u
#define T_WF_BITS      0x54001004u
#define T_WF_INTERP    0x54001006u
#define T_WF_DATA      0x54001010u

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (!err || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

void dcm_ecg_free(dcm_ecg *e)
{
    size_t i, j;

    if (!e)
        return;
    for (i = 0; i < e->n_groups; i++) {
        for (j = 0; e->groups[i].ch && j < e->groups[i].n_channels; j++)
            free(e->groups[i].ch[j].data);
        free(e->groups[i].ch);
    }
    free(e->groups);
    free(e->meas);
    for (i = 0; i < e->n_interp; i++)
        free(e->interp[i]);
    free(e->interp);
    free(e);
}

/* ---- small readers ------------------------------------------------------ */

/* A plain (ASCII) string attribute into out; "" when absent or not a string. */
static void get_plain(const dcm_ds *ds, uint32_t tag, char *out, size_t cap)
{
    if (dcm_ds_get_string(ds, tag, out, cap) != 0)
        out[0] = '\0';
}

/* A text attribute converted to UTF-8 under charset; "" when absent. */
static void get_text(const dcm_ds *ds, uint32_t tag, const char *charset, char *out, size_t cap)
{
    const dcm_elem *el = dcm_ds_find(ds, tag);
    char used[64];
    int guessed = 0;
    size_t n;

    out[0] = '\0';
    if (!el || !el->value || el->len == 0)
        return;
    n = el->len;
    while (n > 0 && (el->value[n - 1] == ' ' || el->value[n - 1] == '\0'))
        n--;
    if (n == 0)
        return;
    if (dcm_charset_to_utf8(charset, (const char *)el->value, n, out, cap, used, sizeof used,
                            &guessed) != 0)
        out[0] = '\0';
}

/* The first item of sequence tag, or NULL. */
static const dcm_ds *first_item(const dcm_ds *ds, uint32_t tag)
{
    const dcm_elem *el = dcm_ds_find(ds, tag);

    if (!el || strcmp(el->vr, "SQ") != 0 || el->n_items == 0)
        return NULL;
    return el->items[0];
}

static void get_code(const dcm_ds *item, const char *charset, dcm_ecg_code *c)
{
    memset(c, 0, sizeof *c);
    if (!item)
        return;
    get_plain(item, T_CODE_SCHEME, c->scheme, sizeof c->scheme);
    get_plain(item, T_CODE_VALUE, c->value, sizeof c->value);
    get_text(item, T_CODE_MEANING, charset, c->meaning, sizeof c->meaning);
}

/* A numeric attribute (US UL DS IS ...): 0 with *v, HR_ENOTFOUND when absent,
 * HR_EPARSE when present but not a finite number. */
static int get_number(const dcm_ds *ds, uint32_t tag, double *v)
{
    const dcm_elem *el = dcm_ds_find(ds, tag);

    if (!el || dcm_elem_empty(el))
        return HR_ENOTFOUND;
    if (dcm_elem_number(el, 0, v) != 0 || !isfinite(*v))
        return HR_EPARSE;
    return 0;
}

/* ---- leads -------------------------------------------------------------- */

static const char *lead_of_term(long t)
{
    static const char *const k_v[] = {"V1", "V2", "V3", "V4", "V5", "V6"};

    if (t == 1)
        return "I";
    if (t == 2)
        return "II";
    if (t >= 3 && t <= 8)
        return k_v[t - 3];
    if (t == 61)
        return "III";
    if (t == 62)
        return "aVR";
    if (t == 63)
        return "aVL";
    if (t == 64)
        return "aVF";
    return NULL;
}

/* Parses a whole decimal number in s; -1 when s is not one. */
static long whole_number(const char *s)
{
    char *end;
    long v;

    if (!*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end)
        return -1;
    return v;
}

const char *dcm_ecg_lead_name(const char *scheme, const char *value)
{
    long v;

    if (!scheme || !value)
        return NULL;
    if (strcmp(scheme, "MDC") == 0) {
        if (strncmp(value, "2:", 2) == 0)
            return lead_of_term(whole_number(value + 2));
        v = whole_number(value); /* 32-bit form: partition 2 << 16 | term */
        if (v > 131072 && v < 131072 + 65536)
            return lead_of_term(v - 131072);
        return NULL;
    }
    if (strcmp(scheme, "SCPECG") == 0 && strncmp(value, "5.6.3-9-", 8) == 0)
        return lead_of_term(whole_number(value + 8));
    return NULL;
}

/* Lead label of channel index i (0-based) with code c. */
static void lead_label(const dcm_ecg_code *c, size_t i, char *out, size_t cap)
{
    const char *std = dcm_ecg_lead_name(c->scheme, c->value);
    const char *m = c->meaning;
    char *paren;

    if (std) {
        snprintf(out, cap, "%s", std);
        return;
    }
    if (!*m) {
        snprintf(out, cap, "CH%zu", i + 1);
        return;
    }
    if (strncmp(m, "Lead ", 5) == 0 && m[5])
        m += 5;
    snprintf(out, cap, "%s", m);
    paren = strstr(out, " (");
    if (paren && paren != out)
        *paren = '\0';
}

/* Multiplier from the unit code to microvolts, 0 when not a voltage. */
static double uv_factor(const char *unit)
{
    if (strcmp(unit, "uV") == 0 || strcmp(unit, "UV") == 0)
        return 1.0;
    if (strcmp(unit, "mV") == 0 || strcmp(unit, "MV") == 0)
        return 1e3;
    if (strcmp(unit, "V") == 0)
        return 1e6;
    if (strcmp(unit, "nV") == 0)
        return 1e-3;
    return 0.0;
}

/* ---- groups ------------------------------------------------------------- */

static int decode_channel(const dcm_ds *cd, size_t i, const char *charset, dcm_ecg_channel *ch,
                          double *scale, double *base, char *err, size_t cap)
{
    double sens = 1.0, corr = 1.0, bl = 0.0, f;
    dcm_ecg_code unit;
    int rc;

    get_code(first_item(cd, T_CH_SOURCE), charset, &ch->code);
    lead_label(&ch->code, i, ch->lead, sizeof ch->lead);
    rc = get_number(cd, T_CH_SENS, &sens);
    if (rc == HR_EPARSE || (rc == 0 && sens == 0.0)) {
        set_err(err, cap, "channel %zu has an invalid Channel Sensitivity", i + 1);
        return HR_EPARSE;
    }
    rc = get_number(cd, T_CH_CORR, &corr);
    if (rc == HR_EPARSE) {
        set_err(err, cap, "channel %zu has an invalid Sensitivity Correction Factor", i + 1);
        return HR_EPARSE;
    }
    rc = get_number(cd, T_CH_BASELINE, &bl);
    if (rc == HR_EPARSE) {
        set_err(err, cap, "channel %zu has an invalid Channel Baseline", i + 1);
        return HR_EPARSE;
    }
    get_code(first_item(cd, T_CH_UNITS), charset, &unit);
    f = uv_factor(unit.value);
    if (f > 0.0) {
        snprintf(ch->units, sizeof ch->units, "uV");
    } else {
        snprintf(ch->units, sizeof ch->units, "%s", unit.value);
        f = 1.0;
    }
    *scale = sens * corr * f;
    *base = bl;
    if (!isfinite(*scale)) {
        set_err(err, cap, "channel %zu: its sensitivity and correction overflow", i + 1);
        return HR_EPARSE;
    }
    return 0;
}

static int decode_group(const dcm_ds *g, size_t gi, const char *charset, uint64_t *budget,
                        dcm_ecg_group *out, char *err, size_t cap)
{
    const dcm_elem *defs, *data;
    double nch, nsamp, bits, scale[DCM_ECG_MAX_CHANNELS], base[DCM_ECG_MAX_CHANNELS];
    uint64_t values, need;
    size_t c, s, bps;
    int rc, sign;

    rc = get_number(g, T_N_CHANNELS, &nch);
    if (!rc)
        rc = get_number(g, T_N_SAMPLES, &nsamp);
    if (!rc)
        rc = get_number(g, T_FS, &out->fs);
    if (!rc)
        rc = get_number(g, T_WF_BITS, &bits);
    if (rc) {
        set_err(err, cap,
                "group %zu: Number of Channels, Samples, Sampling Frequency or Bits Allocated "
                "is %s",
                gi + 1, rc == HR_EPARSE ? "not a number" : "absent");
        return rc == HR_EPARSE ? HR_EPARSE : HR_EMISSING;
    }
    if (nch < 1 || nch > DCM_ECG_MAX_CHANNELS || nch != floor(nch)) {
        set_err(err, cap, "group %zu has %g channels (1..%d)", gi + 1, nch, DCM_ECG_MAX_CHANNELS);
        return nch > DCM_ECG_MAX_CHANNELS ? HR_ETOOBIG : HR_EPARSE;
    }
    if (nsamp < 1 || nsamp > DCM_ECG_MAX_VALUES || nsamp != floor(nsamp)) {
        set_err(err, cap, "group %zu has %g samples", gi + 1, nsamp);
        return nsamp > DCM_ECG_MAX_VALUES ? HR_ETOOBIG : HR_EPARSE;
    }
    if (!(out->fs > 0.0) || out->fs > 1e7) {
        set_err(err, cap, "group %zu has an invalid Sampling Frequency", gi + 1);
        return HR_EPARSE;
    }
    out->n_channels = (size_t)nch;
    out->n_samples = (uint32_t)nsamp;
    values = (uint64_t)out->n_channels * out->n_samples;
    if (values > *budget) {
        set_err(err, cap, "more than %u samples in all groups", DCM_ECG_MAX_VALUES);
        return HR_ETOOBIG;
    }
    *budget -= values;
    get_text(g, T_GROUP_LABEL, charset, out->label, sizeof out->label);
    get_plain(g, T_WF_INTERP, out->interp, sizeof out->interp);
    if (bits != 8 && bits != 16) {
        set_err(err, cap, "group %zu: Waveform Bits Allocated %g is not supported", gi + 1, bits);
        return HR_EUNSUP;
    }
    out->bits = (unsigned)bits;
    if (bits == 16 && strcmp(out->interp, "SS") != 0 && strcmp(out->interp, "US") != 0) {
        set_err(err, cap, "group %zu: 16-bit samples with interpretation \"%s\"", gi + 1,
                out->interp);
        return strcmp(out->interp, "SB") == 0 || strcmp(out->interp, "UB") == 0 ? HR_EMISMATCH
                                                                                : HR_EUNSUP;
    }
    if (bits == 8 && strcmp(out->interp, "SB") != 0 && strcmp(out->interp, "UB") != 0) {
        set_err(err, cap, "group %zu: 8-bit samples with interpretation \"%s\"", gi + 1,
                out->interp);
        return strcmp(out->interp, "SS") == 0 || strcmp(out->interp, "US") == 0 ? HR_EMISMATCH
                                                                                : HR_EUNSUP;
    }
    sign = out->interp[0] == 'S';
    defs = dcm_ds_find(g, T_CHANNEL_DEF);
    if (!defs || strcmp(defs->vr, "SQ") != 0 || defs->n_items != out->n_channels) {
        set_err(err, cap, "group %zu: %zu channel definitions for %zu channels", gi + 1,
                defs ? defs->n_items : 0, out->n_channels);
        return defs ? HR_EMISMATCH : HR_EMISSING;
    }
    data = dcm_ds_find(g, T_WF_DATA);
    if (!data || !data->value) {
        set_err(err, cap, "group %zu has no Waveform Data", gi + 1);
        return HR_EMISSING;
    }
    bps = out->bits / 8;
    need = values * bps;
    if (data->len < need) {
        set_err(err, cap, "group %zu: Waveform Data has %u bytes, %llu declared", gi + 1,
                (unsigned)data->len, (unsigned long long)need);
        return HR_ETRUNC;
    }
    out->ch = calloc(out->n_channels, sizeof *out->ch);
    if (!out->ch)
        return -ENOMEM;
    for (c = 0; c < out->n_channels; c++) {
        rc = decode_channel(defs->items[c], c, charset, &out->ch[c], &scale[c], &base[c], err, cap);
        if (rc)
            return rc;
        out->ch[c].data = malloc((size_t)out->n_samples * sizeof(double));
        if (!out->ch[c].data)
            return -ENOMEM;
    }
    for (s = 0; s < out->n_samples; s++) {
        const uint8_t *row = data->value + s * out->n_channels * bps;
        for (c = 0; c < out->n_channels; c++) {
            double raw;
            if (bps == 1)
                raw = sign ? (double)(int8_t)row[c] : (double)row[c];
            else {
                uint16_t u = (uint16_t)(row[2 * c] | (row[2 * c + 1] << 8)); /* kept LE */
                raw = sign ? (double)(int16_t)u : (double)u;
            }
            out->ch[c].data[s] = (raw + base[c]) * scale[c];
            if (!isfinite(out->ch[c].data[s])) {
                set_err(err, cap, "group %zu channel %zu: sample %zu overflows", gi + 1, c + 1, s);
                return HR_EPARSE;
            }
        }
    }
    return 0;
}

/* ---- annotations -------------------------------------------------------- */

static int decode_annotations(const dcm_ds *ds, const char *charset, dcm_ecg *e)
{
    const dcm_elem *ann = dcm_ds_find(ds, T_ANNOTATIONS);
    char text[1024 * 4];
    size_t i;

    if (!ann || strcmp(ann->vr, "SQ") != 0 || ann->n_items == 0)
        return 0;
    e->meas = calloc(ann->n_items < DCM_ECG_MAX_STATEMENTS ? ann->n_items : DCM_ECG_MAX_STATEMENTS,
                     sizeof *e->meas);
    e->interp =
        calloc(ann->n_items < DCM_ECG_MAX_STATEMENTS ? ann->n_items : DCM_ECG_MAX_STATEMENTS,
               sizeof *e->interp);
    if (!e->meas || !e->interp)
        return -ENOMEM;
    for (i = 0; i < ann->n_items; i++) {
        const dcm_ds *a = ann->items[i];
        double v;

        if (get_number(a, T_NUMERIC, &v) == 0) {
            dcm_ecg_meas *m;
            dcm_ecg_code u;
            if (e->n_meas >= DCM_ECG_MAX_STATEMENTS)
                continue;
            m = &e->meas[e->n_meas++];
            m->value = v;
            get_code(first_item(a, T_CONCEPT_NAME), charset, &m->code);
            snprintf(m->name, sizeof m->name, "%s",
                     *m->code.meaning ? m->code.meaning : m->code.value);
            get_code(first_item(a, T_UNITS_CODE), charset, &u);
            snprintf(m->unit, sizeof m->unit, "%s", u.value);
            continue;
        }
        get_text(a, T_UNFORMATTED, charset, text, sizeof text);
        if (!*text)
            get_text(a, T_TEXT_VALUE, charset, text, sizeof text);
        if (!*text || e->n_interp >= DCM_ECG_MAX_STATEMENTS)
            continue;
        e->interp[e->n_interp] = strdup(text);
        if (!e->interp[e->n_interp])
            return -ENOMEM;
        e->n_interp++;
    }
    return 0;
}

/* ---- top level ---------------------------------------------------------- */

/* "YYYY-MM-DDThh:mm:ss" from a DA + TM pair (or a DT split the same way). */
static void iso_time(const char *da, const char *tm, char *out, size_t cap)
{
    char t[7] = "000000";
    size_t i;

    out[0] = '\0';
    if (strlen(da) < 8)
        return;
    for (i = 0; i < 8; i++)
        if (da[i] < '0' || da[i] > '9')
            return;
    for (i = 0; i < 6 && tm[i] >= '0' && tm[i] <= '9'; i++)
        t[i] = tm[i];
    snprintf(out, cap, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2s", da, da + 4, da + 6, t, t + 2, t + 4);
}

/* The name as the report page shows it (decision 0025): the ideographic group
 * when there is one, else the alphabetic; components joined without a
 * separator when the group holds non-ASCII (Chinese), with spaces otherwise. */
static void patient_name(const dcm_ds *ds, const char *charset, char *out, size_t cap)
{
    char raw[512], *groups[3] = {raw, NULL, NULL}, *g, *p, *save = NULL;
    size_t n = 0, i;
    int wide = 0;

    get_text(ds, T_PAT_NAME, charset, raw, sizeof raw);
    for (i = 1, p = raw; i < 3 && (p = strchr(p, '=')) != NULL; i++) {
        *p++ = '\0';
        groups[i] = p;
    }
    g = groups[1] && *groups[1] ? groups[1] : groups[0];
    for (p = g; *p; p++)
        if ((unsigned char)*p >= 0x80)
            wide = 1;
    out[0] = '\0';
    for (p = strtok_r(g, "^", &save); p && n + 1 < cap; p = strtok_r(NULL, "^", &save)) {
        int k;
        while (*p == ' ')
            p++;
        if (!*p)
            continue;
        k = snprintf(out + n, cap - n, "%s%s", n && !wide ? " " : "", p);
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
    }
    while (n > 0 && out[n - 1] == ' ')
        out[--n] = '\0';
}

int dcm_ecg_decode_ds(const dcm_ds *ds, dcm_ecg **out, char *err, size_t cap)
{
    const dcm_elem *wf;
    char charset[128], da[32], tm[32];
    uint64_t budget = DCM_ECG_MAX_VALUES;
    dcm_ecg *e = NULL;
    size_t i;
    int rc = 0;

    *out = NULL;
    if (err && cap)
        err[0] = '\0';
    wf = dcm_ds_find(ds, T_WAVEFORM_SEQ);
    if (!wf || strcmp(wf->vr, "SQ") != 0 || wf->n_items == 0) {
        set_err(err, cap, "the object has no Waveform Sequence");
        return HR_ENOTFOUND;
    }
    if (wf->n_items > DCM_ECG_MAX_GROUPS) {
        set_err(err, cap, "%zu multiplex groups (at most %d)", wf->n_items, DCM_ECG_MAX_GROUPS);
        return HR_ETOOBIG;
    }
    e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    get_plain(ds, T_CHARSET, charset, sizeof charset);
    get_plain(ds, T_SOP_INSTANCE, e->instance, sizeof e->instance);
    get_plain(ds, T_STUDY_UID, e->study, sizeof e->study);
    get_plain(ds, T_SERIES_UID, e->series, sizeof e->series);
    get_plain(ds, T_SOP_CLASS, e->sop_class, sizeof e->sop_class);
    get_plain(ds, T_MODALITY, e->modality, sizeof e->modality);
    patient_name(ds, charset, e->patient_name, sizeof e->patient_name);
    get_text(ds, T_PAT_ID, charset, e->patient_id, sizeof e->patient_id);
    get_plain(ds, T_PAT_SEX, e->patient_sex, sizeof e->patient_sex);
    get_plain(ds, T_PAT_BIRTH, e->birth_date, sizeof e->birth_date);
    get_plain(ds, T_ACQ_DT, da, sizeof da);
    if (strlen(da) >= 8)
        iso_time(da, da + 8, e->acquired, sizeof e->acquired);
    if (!*e->acquired) {
        get_plain(ds, T_CONTENT_DATE, da, sizeof da);
        get_plain(ds, T_CONTENT_TIME, tm, sizeof tm);
        iso_time(da, tm, e->acquired, sizeof e->acquired);
    }
    if (!*e->acquired) {
        get_plain(ds, T_STUDY_DATE, da, sizeof da);
        get_plain(ds, T_STUDY_TIME, tm, sizeof tm);
        iso_time(da, tm, e->acquired, sizeof e->acquired);
    }
    e->groups = calloc(wf->n_items, sizeof *e->groups);
    if (!e->groups) {
        rc = -ENOMEM;
        goto out;
    }
    for (i = 0; i < wf->n_items; i++) {
        e->n_groups = i + 1; /* the group being filled is freed on error too */
        rc = decode_group(wf->items[i], i, charset, &budget, &e->groups[i], err, cap);
        if (rc)
            goto out;
    }
    rc = decode_annotations(ds, charset, e);
out:
    if (rc) {
        if (rc == -ENOMEM)
            set_err(err, cap, "out of memory");
        dcm_ecg_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

int dcm_ecg_decode(const uint8_t *p, size_t n, dcm_ecg **out, char *err, size_t cap)
{
    dcm_p10_info info;
    dcm_ds *ds = NULL;
    int rc;

    *out = NULL;
    if (err && cap)
        err[0] = '\0';
    if (n > DCM_ECG_MAX_INPUT) {
        set_err(err, cap, "the object is larger than %u bytes", DCM_ECG_MAX_INPUT);
        return HR_ETOOBIG;
    }
    rc = dcm_p10_read_meta(p, n, &info);
    if (rc) {
        set_err(err, cap, "not a DICOM Part 10 object (%s)", hr_strerror(rc));
        return rc == HR_ETRUNC ? HR_ETRUNC : HR_EPARSE;
    }
    rc = dcm_ds_parse(p + info.dataset_offset, n - info.dataset_offset, info.ts, DCM_ECG_MAX_INPUT,
                      &ds);
    if (rc) {
        set_err(err, cap, "the data set cannot be read (%s)", hr_strerror(rc));
        return rc;
    }
    rc = dcm_ecg_decode_ds(ds, out, err, cap);
    dcm_ds_free(ds);
    return rc;
}

/* ---- JSON --------------------------------------------------------------- */

static int put(hr_buf *b, const char *s)
{
    return hr_buf_append(b, s, strlen(s));
}

/* A JSON string (escaped by jansson); invalid UTF-8 becomes "". */
static int put_str(hr_buf *b, const char *s)
{
    json_t *j = json_string(s);
    char *t;
    int rc;

    if (!j)
        j = json_string("");
    if (!j)
        return -ENOMEM;
    t = json_dumps(j, JSON_ENCODE_ANY);
    json_decref(j);
    if (!t)
        return -ENOMEM;
    rc = put(b, t);
    free(t);
    return rc;
}

/* v rounded to 0.1 into o (at least 32 bytes), integral values without a
 * fraction, "null" when not finite; returns the length (< 32). By hand because
 * snprintf dominated the time of a long recording. */
static size_t fmt_tenths(char *o, double v)
{
    char t[24];
    long long r;
    unsigned long long u, ip;
    unsigned fd;
    size_t n = 0, k = 0;

    if (!isfinite(v)) {
        memcpy(o, "null", 4);
        return 4;
    }
    if (fabs(v) >= 1e15) {
        /* tenths are below a double's precision here: the shortest exact
         * form, at most 24 bytes ("-1.7976931348623157e+308") */
        int w = snprintf(o, 32, "%.17g", v);
        if (w > 0 && w < 32)
            return (size_t)w;
        memcpy(o, "null", 4);
        return 4;
    }
    r = llround(v * 10.0);
    if (r < 0) {
        o[n++] = '-';
        u = (unsigned long long)(-r);
    } else {
        u = (unsigned long long)r;
    }
    ip = u / 10;
    fd = (unsigned)(u % 10);
    do {
        t[k++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    while (k)
        o[n++] = t[--k];
    if (fd) {
        o[n++] = '.';
        o[n++] = (char)('0' + fd);
    }
    return n;
}

/* A number rounded to 0.1, integral values without a fraction. */
static int put_num(hr_buf *b, double v)
{
    char t[48];
    size_t n = fmt_tenths(t, v);

    return hr_buf_append(b, t, n);
}

static int put_kv(hr_buf *b, const char *k, const char *v, int comma)
{
    int rc = comma ? put(b, ",") : 0;

    if (!rc)
        rc = put_str(b, k);
    if (!rc)
        rc = put(b, ":");
    if (!rc)
        rc = put_str(b, v);
    return rc;
}

static int put_code(hr_buf *b, const dcm_ecg_code *c)
{
    int rc = put(b, "{");

    if (!rc)
        rc = put_kv(b, "scheme", c->scheme, 0);
    if (!rc)
        rc = put_kv(b, "value", c->value, 1);
    if (!rc)
        rc = put_kv(b, "meaning", c->meaning, 1);
    if (!rc)
        rc = put(b, "}");
    return rc;
}

static int put_group(hr_buf *b, const dcm_ecg_group *g)
{
    size_t c, s;
    int rc = put(b, "{");

    if (!rc)
        rc = put_kv(b, "label", g->label, 0);
    if (!rc)
        rc = put(b, ",\"sampling_frequency\":");
    if (!rc) {
        char t[48];
        snprintf(t, sizeof t, "%.17g", g->fs);
        rc = put(b, t);
    }
    if (!rc) {
        char t[96];
        snprintf(t, sizeof t, ",\"samples\":%u,\"bits\":%u,\"channels\":[", g->n_samples, g->bits);
        rc = put(b, t);
    }
    for (c = 0; !rc && c < g->n_channels; c++) {
        const dcm_ecg_channel *ch = &g->ch[c];
        rc = put(b, c ? ",{" : "{");
        if (!rc)
            rc = put_kv(b, "lead", ch->lead, 0);
        if (!rc)
            rc = put(b, ",\"code\":");
        if (!rc)
            rc = put_code(b, &ch->code);
        if (!rc)
            rc = put_kv(b, "units", ch->units, 1);
        if (!rc)
            rc = put(b, ",\"data\":[");
        for (s = 0; !rc && s < g->n_samples;) {
            char chunk[4096];
            size_t n = 0;
            for (; s < g->n_samples && n < sizeof(chunk) - 40; s++) {
                if (s)
                    chunk[n++] = ',';
                n += fmt_tenths(chunk + n, ch->data[s]);
            }
            rc = hr_buf_append(b, chunk, n);
        }
        if (!rc)
            rc = put(b, "]}");
    }
    if (!rc)
        rc = put(b, "]}");
    return rc;
}

int dcm_ecg_to_json(const dcm_ecg *e, hr_buf *out)
{
    size_t start = out->len, i;
    int rc;

    rc = put(out, "{");
    if (!rc)
        rc = put_kv(out, "instance", e->instance, 0);
    if (!rc)
        rc = put_kv(out, "study", e->study, 1);
    if (!rc)
        rc = put_kv(out, "series", e->series, 1);
    if (!rc)
        rc = put_kv(out, "sop_class", e->sop_class, 1);
    if (!rc)
        rc = put_kv(out, "modality", e->modality, 1);
    if (!rc)
        rc = put(out, ",\"patient\":{");
    if (!rc)
        rc = put_kv(out, "name", e->patient_name, 0);
    if (!rc)
        rc = put_kv(out, "id", e->patient_id, 1);
    if (!rc)
        rc = put_kv(out, "sex", e->patient_sex, 1);
    if (!rc)
        rc = put_kv(out, "birth_date", e->birth_date, 1);
    if (!rc)
        rc = put(out, "}");
    if (!rc)
        rc = put_kv(out, "acquired", e->acquired, 1);
    if (!rc)
        rc = put(out, ",\"groups\":[");
    for (i = 0; !rc && i < e->n_groups; i++) {
        if (i)
            rc = put(out, ",");
        if (!rc)
            rc = put_group(out, &e->groups[i]);
    }
    if (!rc)
        rc = put(out, "],\"measurements\":[");
    for (i = 0; !rc && i < e->n_meas; i++) {
        const dcm_ecg_meas *m = &e->meas[i];
        rc = put(out, i ? ",{" : "{");
        if (!rc)
            rc = put_kv(out, "name", m->name, 0);
        if (!rc)
            rc = put(out, ",\"code\":");
        if (!rc)
            rc = put_code(out, &m->code);
        if (!rc)
            rc = put(out, ",\"value\":");
        if (!rc)
            rc = put_num(out, m->value);
        if (!rc)
            rc = put_kv(out, "unit", m->unit, 1);
        if (!rc)
            rc = put(out, "}");
    }
    if (!rc)
        rc = put(out, "],\"interpretation\":[");
    for (i = 0; !rc && i < e->n_interp; i++) {
        if (i)
            rc = put(out, ",");
        if (!rc)
            rc = put_str(out, e->interp[i]);
    }
    if (!rc)
        rc = put(out, "]}");
    if (rc)
        out->len = start;
    return rc;
}
