/* HL7 aECG reader: see aecg.h. */
#include "aecg.h"

#include "../common/hr_err.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define V3_NS    "urn:hl7-org:v3"
#define XSI_NS   "http://www.w3.org/2001/XMLSchema-instance"
#define STMT_MAX 1024 /* bytes of one interpretation statement */

static pthread_once_t g_xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

/* ---- small helpers over the tree (no copies, no entity expansion: the
 * document has no DTD, so text and attribute values are plain text nodes) ---- */

static int is_el(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           strcmp((const char *)n->ns->href, V3_NS) == 0 &&
           strcmp((const char *)n->name, name) == 0;
}

/* The first child element name (in the v3 namespace) of n, or NULL. */
static xmlNode *child(const xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (is_el(c, name))
            return c;
    return NULL;
}

/* The next sibling element name after n, or NULL. */
static xmlNode *next_el(const xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->next : NULL; c; c = c->next)
        if (is_el(c, name))
            return c;
    return NULL;
}

/* An attribute without namespace (or in ns when not NULL) as text, or NULL. */
static const char *attr_ns(const xmlNode *n, const char *name, const char *ns)
{
    if (!n)
        return NULL;
    for (xmlAttr *a = n->properties; a; a = a->next) {
        if (strcmp((const char *)a->name, name) != 0)
            continue;
        if (ns ? !(a->ns && strcmp((const char *)a->ns->href, ns) == 0) : a->ns != NULL)
            continue;
        if (a->children && a->children->type == XML_TEXT_NODE && !a->children->next)
            return (const char *)a->children->content;
        return a->children ? NULL : "";
    }
    return NULL;
}

static const char *attr(const xmlNode *n, const char *name)
{
    return attr_ns(n, name, NULL);
}

/* The text of element n (its text and CDATA children), trimmed, into out
 * (cap bytes, truncated on a UTF-8 boundary); control characters become
 * spaces. */
static void text_of(const xmlNode *n, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (const xmlNode *c = n ? n->children : NULL; c && o + 1 < cap; c = c->next) {
        if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
            continue;
        for (const unsigned char *p = c->content; p && *p && o + 1 < cap; p++) {
            unsigned char ch = *p;
            if (ch < 0x20 || ch == 0x7f)
                ch = ' ';
            if (ch == ' ' && (o == 0 || out[o - 1] == ' '))
                continue;
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    /* keep only complete UTF-8 sequences (the cut above may split one) */
    size_t i = 0, good = 0;
    while (i < o) {
        unsigned char ch = (unsigned char)out[i];
        size_t need = ch < 0x80 ? 1 : ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : 2;
        if (i + need > o)
            break;
        i += need;
        good = i;
    }
    out[good] = '\0';
    while (good > 0 && out[good - 1] == ' ')
        out[--good] = '\0';
}

static void set_why(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* A decimal number (HL7 REAL/PQ value), finite. 0 or -1. */
static int parse_real(const char *s, double *v)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (errno || *end || !isfinite(d) || end == s)
        return -1;
    *v = d;
    return 0;
}

/* A voltage unit's factor to microvolts; 0 when not a voltage. */
static double uv_factor(const char *unit)
{
    if (!unit || strcmp(unit, "uV") == 0 || strcmp(unit, "\xC2\xB5V") == 0)
        return 1.0;
    if (strcmp(unit, "mV") == 0)
        return 1000.0;
    if (strcmp(unit, "nV") == 0)
        return 0.001;
    if (strcmp(unit, "V") == 0)
        return 1e6;
    return 0.0;
}

/* ---- the code tables ---- */

static const struct {
    const char *hl7, *label, *mdc, *meaning;
} k_leads[] = {
    {"I", "I", "2:1", "Lead I"},
    {"II", "II", "2:2", "Lead II"},
    {"V1", "V1", "2:3", "Lead V1"},
    {"V2", "V2", "2:4", "Lead V2"},
    {"V3", "V3", "2:5", "Lead V3"},
    {"V4", "V4", "2:6", "Lead V4"},
    {"V5", "V5", "2:7", "Lead V5"},
    {"V6", "V6", "2:8", "Lead V6"},
    {"V7", "V7", "2:9", "Lead V7"},
    {"V2R", "V2R", "2:10", "Lead V2R"},
    {"V3R", "V3R", "2:11", "Lead V3R"},
    {"V4R", "V4R", "2:12", "Lead V4R"},
    {"V5R", "V5R", "2:13", "Lead V5R"},
    {"V6R", "V6R", "2:14", "Lead V6R"},
    {"V7R", "V7R", "2:15", "Lead V7R"},
    {"X", "X", "2:16", "Lead X"},
    {"Y", "Y", "2:17", "Lead Y"},
    {"Z", "Z", "2:18", "Lead Z"},
    {"III", "III", "2:61", "Lead III"},
    {"AVR", "aVR", "2:62", "aVR, augmented voltage, right"},
    {"AVL", "aVL", "2:63", "aVL, augmented voltage, left"},
    {"AVF", "aVF", "2:64", "aVF, augmented voltage, foot"},
    {"V8", "V8", "2:66", "Lead V8"},
    {"V9", "V9", "2:67", "Lead V9"},
};

static const struct {
    const char *hl7, *scheme, *code, *meaning;
} k_meas[] = {
    {"MDC_ECG_HEART_RATE", "MDC", "2:16770", "ECG Heart Rate"},
    {"MDC_ECG_TIME_PD_RR", "MDC", "2:16000", "RR time period, global"},
    {"MDC_ECG_TIME_PD_RR_GL", "MDC", "2:16000", "RR time period, global"},
    {"MDC_ECG_TIME_PD_PR", "MDC", "2:15872", "PR time period, global"},
    {"MDC_ECG_TIME_PD_PR_GL", "MDC", "2:15872", "PR time period, global"},
    {"MDC_ECG_TIME_PD_P", "MDC", "2:16184", "P duration, global"},
    {"MDC_ECG_TIME_PD_P_GL", "MDC", "2:16184", "P duration, global"},
    {"MDC_ECG_TIME_PD_QRS", "MDC", "2:16156", "QRS duration, global"},
    {"MDC_ECG_TIME_PD_QRS_GL", "MDC", "2:16156", "QRS duration, global"},
    {"MDC_ECG_TIME_PD_QT", "MDC", "2:16160", "QT duration, global"},
    {"MDC_ECG_TIME_PD_QT_GL", "MDC", "2:16160", "QT duration, global"},
    {"MDC_ECG_TIME_PD_QTcB", "MDC", "2:15880", "QTc interval, Bazett"},
    {"MDC_ECG_TIME_PD_QTcF", "MDC", "2:15892", "QTc interval, Fridericia"},
    /* the aECG's uncorrected-formula QTc: no MDC code of DICOM's context
     * groups names it, so a local code (decision 0039) */
    {"MDC_ECG_TIME_PD_QTc", "99HUREN", "QTc", "QTc Interval"},
    {"MDC_ECG_ANGLE_P_FRONT", "MDC", "2:16128", "P axis"},
    {"MDC_ECG_ANGLE_QRS_FRONT", "MDC", "2:16132", "QRS axis"},
    {"MDC_ECG_ANGLE_T_FRONT", "MDC", "2:16136", "T axis"},
};

/* The UCUM unit and its meaning for a unit as written in the aECG. */
static void ucum(const char *unit, char *code, size_t ccap, char *meaning, size_t mcap)
{
    static const struct {
        const char *in, *code, *meaning;
    } k[] = {
        {"ms", "ms", "millisecond"},
        {"s", "s", "second"},
        {"bpm", "/min", "per minute"},
        {"/min", "/min", "per minute"},
        {"{beats}/min", "/min", "per minute"},
        {"deg", "deg", "degree"},
        {"uV", "uV", "microvolt"},
        {"mV", "mV", "millivolt"},
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        if (unit && strcmp(unit, k[i].in) == 0) {
            snprintf(code, ccap, "%s", k[i].code);
            snprintf(meaning, mcap, "%s", k[i].meaning);
            return;
        }
    snprintf(code, ccap, "%s", unit && *unit && strlen(unit) < ccap ? unit : "1");
    snprintf(meaning, mcap, "%s", unit && *unit && strlen(unit) < ccap ? unit : "no units");
}

/* ---- the parts of the document ---- */

/* HL7 TS (YYYYMMDD[HH[MM[SS[.F+]]]][+/-ZZZZ]) into a DICOM DT; "" when not one. */
static void ts_to_dt(const char *ts, char *out, size_t cap)
{
    out[0] = '\0';
    if (!ts)
        return;
    size_t d = 0;
    while (ts[d] >= '0' && ts[d] <= '9')
        d++;
    if (d < 8 || d > 14 || (d & 1))
        return;
    size_t i = d;
    if (ts[i] == '.') {
        size_t f = 0;
        while (ts[i + 1 + f] >= '0' && ts[i + 1 + f] <= '9')
            f++;
        if (f == 0 || f > 6 || d != 14)
            return;
        i += 1 + f;
    }
    if (ts[i] == '+' || ts[i] == '-') {
        for (int k = 1; k <= 4; k++)
            if (ts[i + k] < '0' || ts[i + k] > '9')
                return;
        i += 5;
    }
    if (ts[i] || i + 1 > cap)
        return;
    memcpy(out, ts, i);
    out[i] = '\0';
}

/* A DICOM PN component: no '^', '=' or '\\', at most 64 bytes. */
static void pn_part(const xmlNode *n, char *out, size_t cap)
{
    char tmp[260];
    text_of(n, tmp, sizeof(tmp) < cap ? sizeof(tmp) : cap);
    for (char *p = tmp; *p; p++)
        if (*p == '^' || *p == '=' || *p == '\\')
            *p = ' ';
    snprintf(out, cap, "%s", tmp);
}

static void read_subject(const xmlNode *root, dcm_aecg *e)
{
    const xmlNode *s =
        child(child(child(child(child(child(root, "componentOf"), "timepointEvent"), "componentOf"),
                          "subjectAssignment"),
                    "subject"),
              "trialSubject");
    if (!s)
        return;
    const xmlNode *id = child(s, "id");
    const char *v = attr(id, "extension");
    if (!v || !*v)
        v = attr(id, "root");
    if (v && strlen(v) < sizeof(e->patient_id)) {
        snprintf(e->patient_id, sizeof(e->patient_id), "%s", v);
        for (char *p = e->patient_id; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == '\\')
                *p = ' ';
    }
    const xmlNode *person = child(s, "subjectDemographicPerson");
    const xmlNode *name = child(person, "name");
    if (name) {
        const xmlNode *fam = child(name, "family"), *giv = child(name, "given");
        if (fam || giv) {
            /* PN: at most 64 characters for the whole alphabetic group */
            char f[65], g[65];
            pn_part(fam, f, sizeof(f));
            size_t room = strlen(f) + 1 < 64 ? 64 - strlen(f) - 1 : 0;
            g[0] = '\0';
            if (room)
                pn_part(giv, g, room + 1);
            snprintf(e->patient_name, sizeof(e->patient_name), "%s%s%s", f, g[0] ? "^" : "", g);
        } else {
            pn_part(name, e->patient_name, 65);
        }
    }
    const char *sex = attr(child(person, "administrativeGenderCode"), "code");
    if (sex && (strcmp(sex, "M") == 0 || strcmp(sex, "F") == 0))
        snprintf(e->sex, sizeof(e->sex), "%s", sex);
    else if (sex && (strcmp(sex, "UN") == 0 || strcmp(sex, "O") == 0))
        snprintf(e->sex, sizeof(e->sex), "O");
    const char *birth = attr(child(person, "birthTime"), "value");
    char dt[27];
    ts_to_dt(birth, dt, sizeof(dt));
    if (dt[0])
        snprintf(e->birth_date, sizeof(e->birth_date), "%.8s", dt);
}

/* The digits of one lead: space separated integers. */
static int read_digits(const xmlNode *digits, dcm_aecg_lead *l, char *why, size_t cap)
{
    size_t count = 0;
    for (const xmlNode *c = digits->children; c; c = c->next) {
        if (c->type != XML_TEXT_NODE) {
            set_why(why, cap, "lead %s: <digits> holds markup", l->label);
            return HR_EPARSE;
        }
        int in = 0;
        for (const unsigned char *p = c->content; p && *p; p++) {
            int sp = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';
            if (!sp && !in)
                count++;
            in = !sp;
        }
        /* libxml2 merges adjacent text into one node: only markup (a
         * comment, CDATA, an element) could split a number, and it is refused */
    }
    if (count == 0) {
        set_why(why, cap, "lead %s has no digits", l->label);
        return HR_EPARSE;
    }
    if (count > DCM_AECG_SAMPLES_MAX) {
        set_why(why, cap, "lead %s has %zu samples, more than %u", l->label, count,
                DCM_AECG_SAMPLES_MAX);
        return HR_ETOOBIG;
    }
    l->digits = malloc(count * sizeof(*l->digits));
    if (!l->digits)
        return -ENOMEM;
    size_t n = 0;
    for (const xmlNode *c = digits->children; c; c = c->next) {
        const char *p = (const char *)c->content;
        while (p && *p) {
            while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                p++;
            if (!*p)
                break;
            char *end;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < INT32_MIN || v > INT32_MAX ||
                (*end && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') ||
                n >= count) {
                set_why(why, cap, "lead %s: digit %zu is not an integer", l->label, n + 1);
                return HR_EPARSE;
            }
            l->digits[n++] = (int32_t)v;
            p = end;
        }
    }
    l->n = n;
    return 0;
}

/* One physical quantity element (origin, scale, increment): value in the
 * unit factor given. */
static int read_pq(const xmlNode *pq, double *v, const char **unit)
{
    if (!pq || parse_real(attr(pq, "value"), v))
        return -1;
    *unit = attr(pq, "unit");
    return 0;
}

static int read_lead(dcm_aecg *e, const char *code, const xmlNode *value, char *why, size_t cap)
{
    const char *name = code + strlen("MDC_ECG_LEAD_");
    size_t k = 0, nk = sizeof(k_leads) / sizeof(k_leads[0]);
    while (k < nk && strcasecmp(k_leads[k].hl7, name) != 0)
        k++;
    if (k == nk) {
        set_why(why, cap, "lead code %.40s is not one huren maps to DICOM", code);
        return HR_EUNSUP;
    }
    for (size_t i = 0; i < e->n_leads; i++)
        if (strcmp(e->leads[i].mdc, k_leads[k].mdc) == 0) {
            set_why(why, cap, "lead %s appears twice", k_leads[k].label);
            return HR_EPARSE;
        }
    if (e->n_leads == DCM_AECG_LEADS_MAX) {
        set_why(why, cap, "more than %d leads", DCM_AECG_LEADS_MAX);
        return HR_ETOOBIG;
    }
    dcm_aecg_lead *l = &e->leads[e->n_leads];
    memset(l, 0, sizeof(*l));
    snprintf(l->label, sizeof(l->label), "%s", k_leads[k].label);
    snprintf(l->mdc, sizeof(l->mdc), "%s", k_leads[k].mdc);
    snprintf(l->meaning, sizeof(l->meaning), "%s", k_leads[k].meaning);
    e->n_leads++; /* owned from here (freed with e) */
    const char *unit = NULL;
    double origin = 0, scale = 0;
    const xmlNode *o = child(value, "origin");
    if (o && read_pq(o, &origin, &unit)) {
        set_why(why, cap, "lead %s: origin has no numeric value", l->label);
        return HR_EPARSE;
    }
    if (o && uv_factor(unit) == 0) {
        set_why(why, cap, "lead %s: origin unit \"%.16s\" is not a voltage", l->label, unit);
        return HR_EUNSUP;
    }
    l->origin_uv = origin * uv_factor(o ? unit : NULL);
    if (read_pq(child(value, "scale"), &scale, &unit) || !(scale > 0)) {
        set_why(why, cap, "lead %s: scale missing or not positive", l->label);
        return HR_EPARSE;
    }
    if (uv_factor(unit) == 0) {
        set_why(why, cap, "lead %s: scale unit \"%.16s\" is not a voltage", l->label, unit);
        return HR_EUNSUP;
    }
    l->scale_uv = scale * uv_factor(unit);
    const xmlNode *digits = child(value, "digits");
    if (!digits) {
        set_why(why, cap, "lead %s has no <digits>", l->label);
        return HR_EPARSE;
    }
    return read_digits(digits, l, why, cap);
}

static int read_time(dcm_aecg *e, const xmlNode *value, char *why, size_t cap)
{
    double inc;
    const char *unit = NULL;
    if (read_pq(child(value, "increment"), &inc, &unit) || !(inc > 0)) {
        set_why(why, cap, "the time sequence has no positive <increment>");
        return HR_EPARSE;
    }
    double f = !unit || strcmp(unit, "s") == 0 ? 1.0
               : strcmp(unit, "ms") == 0       ? 1e-3
               : strcmp(unit, "us") == 0       ? 1e-6
                                               : 0;
    if (f == 0) {
        set_why(why, cap, "time increment unit \"%.16s\" is not s, ms or us", unit);
        return HR_EUNSUP;
    }
    double hz = 1.0 / (inc * f);
    if (!(hz >= 1.0 && hz <= 100000.0)) {
        set_why(why, cap, "sampling frequency %.3g Hz is out of range (1..100000)", hz);
        return HR_EPARSE;
    }
    e->sampling_hz = hz;
    return 0;
}

static int read_sequence_set(dcm_aecg *e, const xmlNode *set, char *why, size_t cap)
{
    int have_time = 0, rc = 0;
    for (const xmlNode *c = child(set, "component"); c && !rc; c = next_el(c, "component")) {
        const xmlNode *seq = child(c, "sequence");
        const char *code = attr(child(seq, "code"), "code");
        const xmlNode *value = child(seq, "value");
        if (!seq || !code)
            continue;
        if (strcmp(code, "TIME_ABSOLUTE") == 0 || strcmp(code, "TIME_RELATIVE") == 0) {
            if (have_time++)
                continue;
            rc = read_time(e, value, why, cap);
        } else if (strncmp(code, "MDC_ECG_LEAD_", 13) == 0) {
            rc = read_lead(e, code, value, why, cap);
        }
    }
    if (rc)
        return rc;
    if (!have_time) {
        set_why(why, cap, "no TIME_ABSOLUTE or TIME_RELATIVE sequence");
        return HR_EPARSE;
    }
    if (e->n_leads == 0) {
        set_why(why, cap, "no MDC_ECG_LEAD_ sequence");
        return HR_EPARSE;
    }
    e->n_samples = e->leads[0].n;
    for (size_t i = 1; i < e->n_leads; i++)
        if (e->leads[i].n != e->n_samples) {
            set_why(why, cap, "lead %s has %zu samples, lead %s %zu", e->leads[i].label,
                    e->leads[i].n, e->leads[0].label, e->n_samples);
            return HR_EPARSE;
        }
    return 0;
}

static int read_annotation(dcm_aecg *e, const xmlNode *ann, int depth)
{
    if (depth > 8)
        return 0;
    const char *code = attr(child(ann, "code"), "code");
    const xmlNode *value = child(ann, "value");
    if (code && value) {
        const char *type = attr_ns(value, "type", XSI_NS);
        const char *num = attr(value, "value");
        size_t nk = sizeof(k_meas) / sizeof(k_meas[0]), k = 0;
        while (k < nk && strcmp(k_meas[k].hl7, code) != 0)
            k++;
        double v;
        if (k < nk && num && parse_real(num, &v) == 0 && e->n_meas < DCM_AECG_MEAS_MAX) {
            int dup = 0;
            for (size_t i = 0; i < e->n_meas; i++)
                dup |= strcmp(e->meas[i].hl7, code) == 0;
            if (!dup) {
                dcm_aecg_meas *m = &e->meas[e->n_meas++];
                snprintf(m->hl7, sizeof(m->hl7), "%s", code);
                snprintf(m->scheme, sizeof(m->scheme), "%s", k_meas[k].scheme);
                snprintf(m->code, sizeof(m->code), "%s", k_meas[k].code);
                snprintf(m->meaning, sizeof(m->meaning), "%s", k_meas[k].meaning);
                m->value = v;
                ucum(attr(value, "unit"), m->unit, sizeof(m->unit), m->unit_meaning,
                     sizeof(m->unit_meaning));
            }
        } else if ((strstr(code, "INTERPRETATION") || strstr(code, "STATEMENT")) &&
                   (!type || strcmp(type, "ST") == 0 || strcmp(type, "CD") != 0) &&
                   e->n_text < DCM_AECG_TEXT_MAX) {
            char buf[STMT_MAX];
            text_of(value, buf, sizeof(buf));
            if (!buf[0] && attr(value, "displayName"))
                snprintf(buf, sizeof(buf), "%s", attr(value, "displayName"));
            if (buf[0]) {
                e->text[e->n_text] = strdup(buf);
                if (!e->text[e->n_text])
                    return -ENOMEM;
                e->n_text++;
            }
        }
    }
    for (const xmlNode *c = child(ann, "component"); c; c = next_el(c, "component")) {
        int rc = read_annotation(e, child(c, "annotation"), depth + 1);
        if (rc)
            return rc;
    }
    return 0;
}

static int read_annotations(dcm_aecg *e, const xmlNode *series)
{
    for (const xmlNode *so = child(series, "subjectOf"); so; so = next_el(so, "subjectOf")) {
        const xmlNode *set = child(so, "annotationSet");
        for (const xmlNode *c = child(set, "component"); c; c = next_el(c, "component")) {
            int rc = read_annotation(e, child(c, "annotation"), 0);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- the parser ---- */

/* SAX internalSubset: a <!DOCTYPE> (with or without an internal subset)
 * stops the parser before any declaration of it is read. */
static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
    xmlParserCtxtPtr c = ctx;
    *(int *)c->_private = 1;
    xmlStopParser(c);
}

static int read_doc(const xmlDoc *doc, dcm_aecg *e, char *why, size_t cap)
{
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "AnnotatedECG") != 0) {
        set_why(why, cap, "the root element is not AnnotatedECG");
        return HR_EPARSE;
    }
    if (!is_el(root, "AnnotatedECG")) {
        set_why(why, cap, "AnnotatedECG is not in the HL7 v3 namespace " V3_NS);
        return HR_EPARSE;
    }
    const xmlNode *id = child(root, "id");
    const char *ro = attr(id, "root"), *ex = attr(id, "extension");
    if (ro && strlen(ro) + (ex ? strlen(ex) : 0) + 2 <= sizeof(e->id))
        snprintf(e->id, sizeof(e->id), "%s%s%s", ro, ex && *ex ? "^" : "", ex ? ex : "");
    const xmlNode *et = child(root, "effectiveTime");
    const char *t = attr(child(et, "low"), "value");
    if (!t)
        t = attr(et, "value");
    if (!t)
        t = attr(child(et, "center"), "value");
    ts_to_dt(t, e->acquired, sizeof(e->acquired));
    read_subject(root, e);
    const xmlNode *series = child(child(root, "component"), "series");
    if (!series) {
        set_why(why, cap, "no component/series");
        return HR_EPARSE;
    }
    const xmlNode *set = child(child(series, "component"), "sequenceSet");
    if (!set) {
        set_why(why, cap, "the series has no component/sequenceSet");
        return HR_EPARSE;
    }
    int rc = read_sequence_set(e, set, why, cap);
    if (!rc)
        rc = read_annotations(e, series);
    return rc;
}

int dcm_aecg_parse(const uint8_t *xml, size_t len, dcm_aecg **out, char *why, size_t cap)
{
    *out = NULL;
    if (why && cap)
        why[0] = '\0';
    if (len > DCM_AECG_DOC_MAX) {
        set_why(why, cap, "document larger than %u bytes", DCM_AECG_DOC_MAX);
        return HR_ETOOBIG;
    }
    pthread_once(&g_xml_once, xml_init);
    int rc = 0, doctype = 0;
    xmlDocPtr doc = NULL;
    dcm_aecg *e = NULL;
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt)
        return -ENOMEM;
    ctxt->_private = &doctype;
    ctxt->sax->internalSubset = on_doctype;
    /* no NOENT (entities are not substituted), no DTDLOAD/DTDATTR/DTDVALID,
     * no XINCLUDE, no HUGE (libxml2's own depth and text limits stay), no
     * network */
    const int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
    doc = xmlCtxtReadMemory(ctxt, (const char *)xml, (int)len, NULL, NULL, opts);
    if (doctype) {
        set_why(why, cap, "a document type declaration (DTD) is not accepted");
        rc = HR_EUNSUP;
        goto out;
    }
    if (!doc || !ctxt->wellFormed) {
        const xmlError *err = xmlCtxtGetLastError(ctxt);
        set_why(why, cap, "not well-formed XML (line %d: %.80s)", err ? err->line : 0,
                err && err->message ? err->message : "parse error");
        if (why) /* libxml2's message ends with a newline */
            for (char *p = why; *p; p++)
                if (*p == '\n')
                    *p = ' ';
        rc = HR_EPARSE;
        goto out;
    }
    e = calloc(1, sizeof(*e));
    if (!e) {
        rc = -ENOMEM;
        goto out;
    }
    rc = read_doc(doc, e, why, cap);
out:
    if (doc)
        xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    if (rc) {
        dcm_aecg_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void dcm_aecg_free(dcm_aecg *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_leads; i++)
        free(e->leads[i].digits);
    for (size_t i = 0; i < e->n_text; i++)
        free(e->text[i]);
    free(e);
}

int dcm_aecg_is_12lead(const dcm_aecg *e)
{
    static const char *const k12[] = {"2:1", "2:2", "2:61", "2:62", "2:63", "2:64",
                                      "2:3", "2:4", "2:5",  "2:6",  "2:7",  "2:8"};
    if (e->n_leads != 12 || e->sampling_hz < 200.0 || e->sampling_hz > 1000.0 ||
        e->n_samples > 16384 || (double)e->n_samples / e->sampling_hz > 16.0 + 1e-9)
        return 0;
    for (size_t k = 0; k < 12; k++) {
        int found = 0;
        for (size_t i = 0; i < e->n_leads && !found; i++)
            found = strcmp(e->leads[i].mdc, k12[k]) == 0;
        if (!found)
            return 0;
    }
    return 1;
}
