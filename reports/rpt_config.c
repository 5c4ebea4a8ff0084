/* reports.*: signing keys, the regional CA, the TSA.
 *
 *   key                      default              rule
 *   reports.keys_dir         "" (<data_dir>/keys) a path
 *   reports.ca_dir           "" (<data_dir>/ca)   a path
 *   reports.tsa_url          "" (none)            "" or http://... or https://...
 *   reports.tsa_timeout_ms   10000                100..120000
 *   reports.sign_session_s   0                    0 (PIN per signature)
 *   reports.cert_days        730                  1..3650
 *   reports.templates[]      a few per modality   at most 200; the file's list replaces it
 *   reports.templates[].id   required             1-64 of [A-Za-z0-9._-], unique
 *   reports.templates[].name required             1..128 bytes of text
 *   reports.templates[].modalities  []            CS values (<= 16); [] = any modality
 *   reports.templates[].body_parts  []            CS values (<= 16); [] = any
 *   reports.templates[].findings, .impression ""  text, <= 8192 bytes each, not both empty
 *   reports.phrases[]        a phrase library     at most 1000; the file's list replaces it
 *   reports.phrases[].group  required             1..128 bytes of text
 *   reports.phrases[].text   required             1..1024 bytes of text
 *   reports.phrases[].modalities    []            CS values (<= 16); [] = any
 *
 * Meaning: docs/configuration.md. */
#include "rpt_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_keys[] = {"keys_dir",       "ca_dir",         "tsa_url",
                                     "tsa_timeout_ms", "sign_session_s", "cert_days",
                                     "templates",      "phrases",        NULL};

/* 1 when s (n bytes, UTF-8 checked by jansson) has no control character but
 * tab, CR, LF. */
static int text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || ch == 0x7F)
            return 0;
    }
    return 1;
}

/* A text member of o: present (unless optional), a string of min..max bytes
 * without control characters. Absent optional: "" is set. */
static int text_member(json_t *o, const char *key, size_t min, size_t max, int optional,
                       const char *path, size_t i, char *err, size_t ecap)
{
    json_t *v = json_object_get(o, key);
    if (!v && optional)
        return json_object_set_new(o, key, json_string("")) ? -ENOMEM : 0;
    size_t n = json_is_string(v) ? json_string_length(v) : 0;
    if (!json_is_string(v) || n < min || n > max || !text_ok(json_string_value(v), n))
        return hr_cfg_fail(err, ecap, "%s[%zu].%s: %stext of at most %zu bytes", path, i, key,
                           min ? "non-empty " : "", max);
    return 0;
}

/* A list of CS values of o (absent: [] is set). */
static int cs_member(json_t *o, const char *key, const char *path, size_t i, char *err, size_t ecap)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return json_object_set_new(o, key, json_array()) ? -ENOMEM : 0;
    size_t j;
    json_t *e;
    if (!json_is_array(v) || json_array_size(v) > RPT_TEMPLATE_CS_MAX)
        return hr_cfg_fail(err, ecap, "%s[%zu].%s: a list of at most %d values", path, i, key,
                           RPT_TEMPLATE_CS_MAX);
    json_array_foreach(v, j, e)
    {
        if (!json_is_string(e) || !hr_cs_valid(json_string_value(e)))
            return hr_cfg_fail(err, ecap, "%s[%zu].%s[%zu]: a DICOM code string (1-16 characters)",
                               path, i, key, j);
    }
    return 0;
}

/* 1 when s is 1-64 of [A-Za-z0-9._-]. */
static int id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

/* One list of reports (templates, phrases): each item an object with the
 * members k_members, checked by item; a checked copy replaces *dst. */
typedef struct list_spec {
    const char *path; /* "reports.templates" */
    const char *noun; /* "templates": the error message */
    size_t max;
    const char *const *members;
    int (*item)(json_t *list, json_t *t, size_t i, const char *where, char *err, size_t ecap);
} list_spec;

static int parse_list(const list_spec *ls, json_t *v, json_t **dst, char *err, size_t ecap)
{
    if (!json_is_array(v) || json_array_size(v) > ls->max)
        return hr_cfg_fail(err, ecap, "%s: a list of at most %zu %s", ls->path, ls->max, ls->noun);
    json_t *copy = json_deep_copy(v);
    if (!copy)
        return -ENOMEM;
    size_t i;
    json_t *t;
    char where[64];
    int rc = 0;
    json_array_foreach(copy, i, t)
    {
        snprintf(where, sizeof(where), "%s[%zu].", ls->path, i);
        if (!json_is_object(t)) {
            rc = hr_cfg_fail(err, ecap, "%s[%zu]: an object", ls->path, i);
            break;
        }
        rc = hr_cfg_check_keys(t, where, ls->members, err, ecap);
        if (!rc)
            rc = ls->item(copy, t, i, where, err, ecap);
        if (rc)
            break;
    }
    if (rc) {
        json_decref(copy);
        return rc;
    }
    json_decref(*dst);
    *dst = copy;
    return 0;
}

/* reports.templates[i]: a unique id, a name, its modalities and body parts,
 * findings or impression. */
static int template_item(json_t *list, json_t *t, size_t i, const char *where, char *err,
                         size_t ecap)
{
    const char *path = "reports.templates";
    int rc = 0;
    if (!id_ok(json_string_value(json_object_get(t, "id"))))
        rc = hr_cfg_fail(err, ecap, "%sid: 1-64 of A-Z a-z 0-9 . _ -", where);
    for (size_t j = 0; !rc && j < i; j++)
        if (json_equal(json_object_get(json_array_get(list, j), "id"), json_object_get(t, "id")))
            rc = hr_cfg_fail(err, ecap, "%sid: \"%s\" twice", where,
                             json_string_value(json_object_get(t, "id")));
    if (!rc)
        rc = text_member(t, "name", 1, RPT_TEMPLATE_NAME_MAX, 0, path, i, err, ecap);
    if (!rc)
        rc = cs_member(t, "modalities", path, i, err, ecap);
    if (!rc)
        rc = cs_member(t, "body_parts", path, i, err, ecap);
    if (!rc)
        rc = text_member(t, "findings", 0, RPT_TEMPLATE_TEXT_MAX, 1, path, i, err, ecap);
    if (!rc)
        rc = text_member(t, "impression", 0, RPT_TEMPLATE_TEXT_MAX, 1, path, i, err, ecap);
    if (!rc && !json_string_length(json_object_get(t, "findings")) &&
        !json_string_length(json_object_get(t, "impression")))
        rc = hr_cfg_fail(err, ecap, "%s[%zu]: findings or impression", path, i);
    return rc;
}

/* reports.phrases[i]: a group, a text, its modalities. */
static int phrase_item(json_t *list, json_t *t, size_t i, const char *where, char *err, size_t ecap)
{
    (void)list, (void)where;
    const char *path = "reports.phrases";
    int rc = text_member(t, "group", 1, RPT_TEMPLATE_NAME_MAX, 0, path, i, err, ecap);
    if (!rc)
        rc = text_member(t, "text", 1, RPT_PHRASE_MAX, 0, path, i, err, ecap);
    if (!rc)
        rc = cs_member(t, "modalities", path, i, err, ecap);
    return rc;
}

static const char *const k_template_members[] = {
    "id", "name", "modalities", "body_parts", "findings", "impression", NULL};
static const char *const k_phrase_members[] = {"group", "text", "modalities", NULL};
static const list_spec k_templates = {"reports.templates", "templates", RPT_TEMPLATES_MAX,
                                      k_template_members, template_item};
static const list_spec k_phrases = {"reports.phrases", "phrases", RPT_PHRASES_MAX, k_phrase_members,
                                    phrase_item};

static int parse(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    long long n;
    int rc;
    if (!json_is_object(v))
        return hr_cfg_fail(err, ecap, "%s: must be an object", path);
    rc = hr_cfg_check_keys(v, "reports.", k_keys, err, ecap);
    if (rc)
        return rc;
    if (!c->reports) {
        c->reports = calloc(1, sizeof(*c->reports));
        if (!c->reports)
            return -ENOMEM;
    }
    struct rpt_config *r = c->reports;
    rc = hr_cfg_get_str(v, "keys_dir", "reports.", r->keys_dir, sizeof(r->keys_dir), 1, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(v, "ca_dir", "reports.", r->ca_dir, sizeof(r->ca_dir), 1, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(v, "tsa_url", "reports.", r->tsa_url, sizeof(r->tsa_url), 1, err, ecap);
    if (!rc && r->tsa_url[0] && strncmp(r->tsa_url, "http://", 7) != 0 &&
        strncmp(r->tsa_url, "https://", 8) != 0)
        rc = hr_cfg_fail(err, ecap, "reports.tsa_url: must be \"\" or an http:// or https:// URL");
    n = r->tsa_timeout_ms;
    if (!rc)
        rc = hr_cfg_get_int(v, "tsa_timeout_ms", "reports.", 100, 120000, &n, err, ecap);
    r->tsa_timeout_ms = (int)n;
    n = r->sign_session_s;
    if (!rc)
        rc = hr_cfg_get_int(v, "sign_session_s", "reports.", 0, 0, &n, err, ecap);
    r->sign_session_s = (int)n;
    n = r->cert_days;
    if (!rc)
        rc = hr_cfg_get_int(v, "cert_days", "reports.", 1, 3650, &n, err, ecap);
    r->cert_days = (int)n;
    json_t *t = json_object_get(v, "templates");
    if (!rc && t)
        rc = parse_list(&k_templates, t, &r->templates, err, ecap);
    t = json_object_get(v, "phrases");
    if (!rc && t)
        rc = parse_list(&k_phrases, t, &r->phrases, err, ecap);
    return rc;
}

/* The directories that follow data_dir when not set. */
static int validate(hr_config *c, json_t *user, char *err, size_t ecap)
{
    struct rpt_config *r = c->reports;
    if (!r)
        return hr_cfg_fail(err, ecap, "reports: missing");
    if (!r->keys_dir[0] && (size_t)snprintf(r->keys_dir, sizeof(r->keys_dir), "%s/keys",
                                            c->data_dir) >= sizeof(r->keys_dir))
        return hr_cfg_fail(err, ecap, "reports.keys_dir: data_dir too long");
    if (!r->ca_dir[0] &&
        (size_t)snprintf(r->ca_dir, sizeof(r->ca_dir), "%s/ca", c->data_dir) >= sizeof(r->ca_dir))
        return hr_cfg_fail(err, ecap, "reports.ca_dir: data_dir too long");
    if (!r->templates)
        r->templates = json_array();
    if (!r->phrases)
        r->phrases = json_array();
    if (!r->templates || !r->phrases)
        return -ENOMEM;
    (void)user;
    return 0;
}

static void release(hr_config *c)
{
    if (c->reports) {
        json_decref(c->reports->templates);
        json_decref(c->reports->phrases);
    }
    free(c->reports);
    c->reports = NULL;
}

int rpt_config_trust_path(const hr_config *cfg, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/trust.pem", cfg->reports->ca_dir);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The embedded default of the section: the paths, and example templates and
 * phrases (zh-CN) a deployment replaces with its own (docs/configuration.md). */
static const char k_defaults[] =
    "{\"keys_dir\":\"\",\"ca_dir\":\"\",\"tsa_url\":\"\","
    "\"tsa_timeout_ms\":10000,\"sign_session_s\":"
    "0,\"cert_days\":730,\"templates\":[{\"id\":\"dx"
    "-chest-pa\",\"name\":\"胸部正位片\",\"modalities\":["
    "\"DX\",\"CR\"],\"body_parts\":[\"CHEST\"],\"findi"
    "ngs\":\"胸廓对称，气管居中。双肺纹理清晰，走行自然，双肺野未见明确实变影及结"
    "节影。双肺门影不大。心影大小、形态未见异常。双侧膈面光滑，肋膈角锐利。所见骨质未"
    "见明确异常。\",\"impression\":\"心、肺、膈未见明显异常。\"},{\"i"
    "d\":\"dx-lumbar\",\"name\":\"腰椎正侧位片\",\"modaliti"
    "es\":[\"DX\",\"CR\"],\"body_parts\":[\"LSPINE\",\""
    "SPINE\"],\"findings\":\"腰椎序列连续，生理曲度存在。各椎体形态、"
    "大小未见异常，骨质未见明确破坏。各椎间隙未见明确狭窄，椎旁软组织未见异常。\",\""
    "impression\":\"腰椎未见明显异常。\"},{\"id\":\"dx-abdom"
    "en\",\"name\":\"腹部立位平片\",\"modalities\":[\"DX\",\""
    "CR\"],\"body_parts\":[\"ABDOMEN\"],\"findings\""
    ":\"双侧膈下未见游离气体。腹部肠管未见明显扩张积气，未见气液平面。双侧腰大肌影清"
    "晰，腹部未见明确异常钙化影。\",\"impression\":\"腹部立位平片未见明显"
    "异常。\"},{\"id\":\"ct-head\",\"name\":\"头颅CT平扫\",\"m"
    "odalities\":[\"CT\"],\"body_parts\":[\"HEAD\",\""
    "BRAIN\"],\"findings\":\"脑实质密度均匀，灰白质分界清楚，未见明确"
    "异常密度影。脑室系统大小、形态正常，脑沟、脑裂、脑池未见增宽，中线结构居中。颅骨"
    "骨质未见明确异常。\",\"impression\":\"颅脑CT平扫未见明显异常。\"}"
    ",{\"id\":\"ct-chest\",\"name\":\"胸部CT平扫\",\"modal"
    "ities\":[\"CT\"],\"body_parts\":[\"CHEST\"],\"fi"
    "ndings\":\"胸廓对称。气管及各级支气管通畅。双肺纹理清晰，双肺未见明确实变"
    "影、结节影及肿块影。纵隔居中，纵隔内未见明确肿大淋巴结。心脏及大血管形态未见异常"
    "。双侧胸腔未见积液。\",\"impression\":\"胸部CT平扫未见明显异常。\""
    "},{\"id\":\"ct-abdomen\",\"name\":\"上腹部CT平扫\",\"m"
    "odalities\":[\"CT\"],\"body_parts\":[\"ABDOMEN"
    "\"],\"findings\":\"肝脏大小、形态正常，各叶比例协调，肝实质密度均匀，"
    "未见明确异常密度影。胆囊不大，壁不厚。胰腺、脾脏形态及密度未见异常。双肾形态、密"
    "度未见异常。腹膜后未见明确肿大淋巴结。\",\"impression\":\"上腹部CT"
    "平扫未见明显异常。\"},{\"id\":\"mr-head\",\"name\":\"头颅MR"
    "I平扫\",\"modalities\":[\"MR\"],\"body_parts\":[\""
    "HEAD\",\"BRAIN\"],\"findings\":\"脑实质内未见明确异常信号影"
    "，灰白质分界清楚。脑室系统大小、形态正常，中线结构居中。脑沟、脑裂未见增宽。DW"
    "I未见明确弥散受限。\",\"impression\":\"头颅MRI平扫未见明显异常。"
    "\"},{\"id\":\"us-abdomen\",\"name\":\"腹部超声（肝胆胰脾肾"
    "）\",\"modalities\":[\"US\"],\"body_parts\":[],\""
    "findings\":\"肝脏大小、形态正常，包膜光滑，实质回声均匀，肝内管道结构清"
    "晰。胆囊大小正常，壁光滑，腔内未见明显异常回声。胰腺、脾脏大小及回声未见异常。双"
    "肾大小、形态正常，集合系统未见分离。\",\"impression\":\"肝、胆、胰、"
    "脾、双肾超声检查未见明显异常。\"},{\"id\":\"ecg-12lead\",\"na"
    "me\":\"常规十二导联心电图\",\"modalities\":[\"ECG\"],\"bo"
    "dy_parts\":[],\"findings\":\"窦性心律，心率 次/分。P波、"
    "QRS波群及T波形态未见异常，PR间期、QT间期在正常范围内。\",\"impres"
    "sion\":\"窦性心律，正常心电图。\"}],\"phrases\":[{\"group"
    "\":\"肺部\",\"text\":\"双肺纹理增多、增粗。\",\"modalities\":"
    "[\"DX\",\"CR\",\"CT\"]},{\"group\":\"肺部\",\"text\":\""
    "右肺下叶见斑片状模糊影，边界不清。\",\"modalities\":[\"DX\",\"C"
    "R\",\"CT\"]},{\"group\":\"肺部\",\"text\":\"考虑肺部感染，建"
    "议抗炎治疗后复查。\",\"modalities\":[\"DX\",\"CR\",\"CT\"]"
    "},{\"group\":\"心脏大血管\",\"text\":\"心影增大，心胸比约0.55"
    "。\",\"modalities\":[\"DX\",\"CR\"]},{\"group\":\"心"
    "脏大血管\",\"text\":\"主动脉迂曲，主动脉结钙化。\",\"modalities"
    "\":[\"DX\",\"CR\",\"CT\"]},{\"group\":\"颅脑\",\"text\""
    ":\"左侧基底节区见斑点状低密度影，边界清楚。\",\"modalities\":[\"C"
    "T\"]},{\"group\":\"颅脑\",\"text\":\"考虑腔隙性脑梗死。\",\"m"
    "odalities\":[\"CT\",\"MR\"]},{\"group\":\"颅脑\",\"t"
    "ext\":\"脑室系统扩大，脑沟、脑裂增宽，考虑脑萎缩。\",\"modalities"
    "\":[\"CT\",\"MR\"]},{\"group\":\"骨骼\",\"text\":\"椎体边"
    "缘骨质增生，呈唇样改变。\",\"modalities\":[\"DX\",\"CR\",\"C"
    "T\"]},{\"group\":\"腹部\",\"text\":\"肝内见类圆形无回声区，边界"
    "清，后方回声增强，考虑肝囊肿。\",\"modalities\":[\"US\"]},{\""
    "group\":\"腹部\",\"text\":\"胆囊内见强回声团伴声影，随体位改变移动，"
    "考虑胆囊结石。\",\"modalities\":[\"US\"]},{\"group\":\""
    "对比\",\"text\":\"与本人外院既往检查比较，病灶未见明显变化。\",\"moda"
    "lities\":[]},{\"group\":\"建议\",\"text\":\"建议结合临床"
    "及其他相关检查。\",\"modalities\":[]},{\"group\":\"建议\""
    ",\"text\":\"建议短期复查。\",\"modalities\":[]},{\"gro"
    "up\":\"建议\",\"text\":\"建议进一步增强检查。\",\"modalities"
    "\":[\"CT\",\"MR\"]},{\"group\":\"危急值\",\"text\":\"右侧"
    "胸腔见大量气体影，肺组织压缩，考虑气胸（危急值，已电话通知临床）。\",\"moda"
    "lities\":[\"DX\",\"CR\",\"CT\"]},{\"group\":\"危急值\""
    ",\"text\":\"颅内见高密度影，考虑急性颅内出血（危急值，已电话通知临床）。\""
    ",\"modalities\":[\"CT\"]}]}";

const hr_config_section rpt_config_reports = {
    .name = "reports",
    .defaults = k_defaults,
    .parse = parse,
    .validate = validate,
    .free = release,
};
