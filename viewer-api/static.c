/* The web application's files, its libraries and the OHIF Viewer, served
 * from web.root (decision 0028):
 *
 *   /, /index.html          app/index.html
 *   /app/<path>             app/<path>
 *   /vendor/<pkg>/<path>    node_modules/<pkg>/<path>, pkg in k_vendor only
 *   /share/<path>           share/<path>
 *   /s/<token>              share/index.html (the page reads its token)
 *   /viewer[/<path>]        vendor/ohif/<path>; a path without a file
 *                           extension is an OHIF route: its index.html
 *   /viewer/app-config.js   generated per session (va_handle_viewer_config)
 *
 * The files hold no patient data and are public. A path is taken only when
 * every segment is plain (no "..", no hidden name, no percent escape) and its
 * extension is in k_types; the file is opened on the pool without following a
 * final symbolic link, and must resolve inside web.root. MHD sends it from
 * the descriptor; an HTML page of ours is read into memory instead, so that
 * its CSP can allow its import map by hash (decision 0033). */
#include "api_config.h"
#include "va.h"

#include "../common/hr_log.h"

#include <openssl/evp.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_PATH_MAX 512            /* a request path we map */
#define STATIC_FILE_MAX (256ull << 20) /* OHIF's largest file is a 40 MB wasm */
#define STATIC_HTML_MAX (256u << 10)   /* a page of ours, read to hash its import map */
#define CSP_MAX         1024

static const char *const k_vendor[] = {"preact", "htm", "echarts", NULL};

static const struct {
    const char *ext, *type;
} k_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"wasm", "application/wasm"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"xml", "application/xml"},
    {"txt", "text/plain; charset=utf-8"},
};

/* The application and the share page: scripts and styles from this origin
 * only, no inline script; frames of this origin (the viewer beside the
 * report editor). */
#define CSP_APP_HEAD "default-src 'self'; script-src 'self'"
#define CSP_APP_TAIL                                                                               \
    "; style-src 'self' 'unsafe-inline'; "                                                         \
    "img-src 'self' data: blob:; connect-src 'self'; frame-src 'self'; "                           \
    "frame-ancestors 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
#define CSP_APP CSP_APP_HEAD CSP_APP_TAIL
/* An import map is an inline script to CSP: a page's map is allowed by the
 * SHA-256 of its text, computed when the page is read (decision 0033), so
 * that the map can change without a code change and nothing else inline
 * runs. */
#define IMPORTMAP_OPEN  "<script type=\"importmap\">"
#define IMPORTMAP_CLOSE "</script>"
/* OHIF: its index.html has two inline scripts, its codecs are WebAssembly,
 * its workers come from blob: URLs; still this origin only. */
#define CSP_VIEWER                                                                                 \
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' "      \
    "blob:; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; "                           \
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' data: blob:; "          \
    "media-src 'self' blob:; frame-ancestors 'self'; base-uri 'self'; object-src 'none'"

enum static_kind { ST_NONE, ST_APP, ST_VENDOR, ST_SHARE, ST_VIEWER };

typedef struct static_job {
    char rel[STATIC_PATH_MAX]; /* under web.root */
    const char *type;
    enum static_kind kind;
    int spa; /* a viewer route: index.html when rel has no file */
    int fd;  /* the open file, or -1 */
    uint64_t size;
    char etag[64];
    int status;        /* 0 = send fd (or html); else the error to answer */
    char *html;        /* an HTML page of the application read into memory (size bytes), or NULL */
    char csp[CSP_MAX]; /* its policy with the import map's hash; "" = the kind's */
} static_job;

/* A page of the application (ST_APP, ST_SHARE): read it (at most
 * STATIC_HTML_MAX) and allow its import map, when it has one, by hash. 0 or
 * -1 (then the file is not served). */
static int html_prepare(static_job *j)
{
    j->html = malloc(j->size + 1);
    if (!j->html)
        return -1;
    size_t got = 0;
    while (got < j->size) {
        ssize_t n = read(j->fd, j->html + got, j->size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    j->html[got] = '\0';
    const char *open_ = strstr(j->html, IMPORTMAP_OPEN);
    if (!open_)
        return 0;
    const char *body = open_ + strlen(IMPORTMAP_OPEN);
    const char *end = strstr(body, IMPORTMAP_CLOSE);
    if (!end)
        return -1;
    unsigned char md[32];
    unsigned int mdlen = 0;
    unsigned char b64[64];
    if (EVP_Digest(body, (size_t)(end - body), md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != sizeof(md))
        return -1;
    EVP_EncodeBlock(b64, md, (int)mdlen);
    snprintf(j->csp, sizeof(j->csp), "%s 'sha256-%s'%s", CSP_APP_HEAD, (const char *)b64,
             CSP_APP_TAIL);
    return 0;
}

/* 1 when [p, p+n) is a plain segment: [A-Za-z0-9._@+-], not starting with '.'. */
static int plain_segment(const char *p, size_t n)
{
    if (n == 0 || p[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '@' || c == '+'))
            return 0;
    }
    return 1;
}

/* 1 when every segment of the relative path [p, p+n) is plain. */
static int plain_path(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != '/')
            j++;
        if (!plain_segment(p + i, j - i))
            return 0;
        i = j + 1;
    }
    return n > 0 && p[n - 1] != '/';
}

/* The media type of a file name by its extension; NULL when not served. */
static const char *type_of(const char *name, int *has_ext)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash : name, '.');
    *has_ext = dot != NULL;
    if (!dot)
        return NULL;
    for (size_t i = 0; i < sizeof(k_types) / sizeof(k_types[0]); i++)
        if (strcmp(dot + 1, k_types[i].ext) == 0)
            return k_types[i].type;
    return NULL;
}

static int starts(const char *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(p, prefix, k) == 0;
}

/* Maps the request path [p, p+n) to a file under web.root in j. 1 when it is
 * one of ours (j->rel set), 0 when not a static path at all. */
static int map_path(const hr_config *cfg, const char *p, size_t n, static_job *j)
{
    const char *rest = NULL;
    size_t rn = 0;
    memset(j, 0, sizeof(*j));
    j->fd = -1;
    if (n >= STATIC_PATH_MAX - 32)
        return 0;
    if ((n == 1 && p[0] == '/') || (n == 11 && memcmp(p, "/index.html", 11) == 0)) {
        j->kind = ST_APP;
        snprintf(j->rel, sizeof(j->rel), "app/index.html");
    } else if (starts(p, n, "/app/")) {
        j->kind = ST_APP;
        rest = p + 5, rn = n - 5;
        if (!plain_path(rest, rn))
            return 0;
        snprintf(j->rel, sizeof(j->rel), "app/%.*s", (int)rn, rest);
    } else if (starts(p, n, "/share/")) {
        j->kind = ST_SHARE;
        rest = p + 7, rn = n - 7;
        if (!plain_path(rest, rn))
            return 0;
        snprintf(j->rel, sizeof(j->rel), "share/%.*s", (int)rn, rest);
    } else if (starts(p, n, "/s/")) {
        if (!plain_segment(p + 3, n - 3))
            return 0;
        j->kind = ST_SHARE;
        snprintf(j->rel, sizeof(j->rel), "share/index.html");
    } else if (starts(p, n, "/vendor/")) {
        rest = p + 8, rn = n - 8;
        const char *slash = memchr(rest, '/', rn);
        if (!slash)
            return 0;
        size_t pn = (size_t)(slash - rest);
        int known = 0;
        for (int i = 0; k_vendor[i]; i++)
            known |= strlen(k_vendor[i]) == pn && memcmp(k_vendor[i], rest, pn) == 0;
        if (!known || !plain_path(rest, rn))
            return 0;
        j->kind = ST_VENDOR;
        snprintf(j->rel, sizeof(j->rel), "node_modules/%.*s", (int)rn, rest);
    } else if ((n == 7 && memcmp(p, "/viewer", 7) == 0) || starts(p, n, "/viewer/")) {
        if (!cfg->web->viewer)
            return 0;
        j->kind = ST_VIEWER;
        rest = p + (n > 8 ? 8 : n), rn = n > 8 ? n - 8 : 0;
        if (rn == 0 || (rn == 10 && memcmp(rest, "index.html", 10) == 0)) {
            snprintf(j->rel, sizeof(j->rel), "vendor/ohif/index.html");
        } else {
            if (!plain_path(rest, rn))
                return 0;
            snprintf(j->rel, sizeof(j->rel), "vendor/ohif/%.*s", (int)rn, rest);
            int has_ext;
            j->type = type_of(j->rel, &has_ext);
            if (!has_ext) { /* an OHIF route (/viewer/viewer?StudyInstanceUIDs=...) */
                j->spa = 1;
                snprintf(j->rel, sizeof(j->rel), "vendor/ohif/index.html");
            }
        }
    } else {
        return 0;
    }
    int has_ext;
    j->type = type_of(j->rel, &has_ext);
    return 1;
}

int va_static_path(const hr_config *cfg, const char *path, size_t len)
{
    static_job j;
    return map_path(cfg, path, len, &j) && j.type != NULL;
}

/* Pool: opens the file, checks it is a regular file inside web.root. */
static void static_work(va_req *r, redisContext *c)
{
    (void)c;
    static_job *j = r->state;
    const char *root = r->srv->cfg->web->root;
    char path[PATH_MAX], real[PATH_MAX], realroot[PATH_MAX];
    j->status = 404;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", root, j->rel) >= sizeof(path))
        return;
    if (!realpath(root, realroot) || !realpath(path, real))
        return;
    size_t rl = strlen(realroot);
    if (strncmp(real, realroot, rl) != 0 || real[rl] != '/')
        return;
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > STATIC_FILE_MAX) {
        close(fd);
        return;
    }
    j->fd = fd;
    j->size = (uint64_t)st.st_size;
    if ((j->kind == ST_APP || j->kind == ST_SHARE) && strncmp(j->type, "text/html", 9) == 0) {
        int bad = j->size > STATIC_HTML_MAX || html_prepare(j) != 0;
        close(fd);
        j->fd = -1;
        if (bad) {
            hr_warn("http", "%s: page %s not served (over %u bytes or unreadable)", r->id, j->rel,
                    STATIC_HTML_MAX);
            free(j->html);
            j->html = NULL;
            return;
        }
    }
    snprintf(j->etag, sizeof(j->etag), "\"%llx-%llx-%llx\"", (unsigned long long)st.st_ino,
             (unsigned long long)st.st_size, (unsigned long long)st.st_mtime);
    j->status = 0;
}

static void static_done(va_req *r)
{
    static_job *j = r->state;
    r->state = NULL;
    if (va_req_gone(r)) {
        if (j->fd >= 0)
            close(j->fd);
        free(j->html);
        free(j);
        return;
    }
    if (j->status) {
        va_send_error(r, j->status, "not_found", "no such resource");
        free(j->html);
        free(j);
        return;
    }
    int is_index =
        j->kind == ST_APP || j->kind == ST_SHARE || j->spa || strstr(j->rel, "index.html") != NULL;
    va_add_header(r, "X-Content-Type-Options", "nosniff");
    /* share links carry their token in the path: never in a Referer */
    va_add_header(r, "Referrer-Policy", "no-referrer");
    va_add_header(r, "Content-Security-Policy",
                  j->csp[0]              ? j->csp
                  : j->kind == ST_VIEWER ? CSP_VIEWER
                                         : CSP_APP);
    /* pages and our modules revalidate (a new release shows at once);
     * libraries and OHIF's hashed bundles are kept a day */
    va_add_header(r, "Cache-Control",
                  is_index || j->kind == ST_APP || j->kind == ST_SHARE ? "no-cache"
                                                                       : "public, max-age=86400");
    va_add_header(r, "ETag", j->etag);
    const char *inm = va_header(r, "if-none-match");
    if (inm && strcmp(inm, j->etag) == 0) {
        if (j->fd >= 0)
            close(j->fd);
        free(j->html);
        free(j);
        va_send(r, 304, NULL, "", 0);
        return;
    }
    if (j->html) { /* va_send copies it */
        va_send(r, 200, j->type, j->html, (size_t)j->size);
        free(j->html);
        free(j);
        return;
    }
    int fd = j->fd;
    uint64_t size = j->size;
    const char *type = j->type;
    free(j);
    if (va_send_fd(r, 200, type, fd, size) != 0) {
        close(fd);
        va_send_error(r, 500, "internal", "out of memory");
    }
}

void va_handle_static(va_req *r)
{
    static_job *j = malloc(sizeof(*j));
    if (!j) {
        va_send_error(r, 503, "busy", "out of memory");
        return;
    }
    if (!map_path(r->srv->cfg, r->uri, r->path_len, j) || !j->type) {
        free(j);
        va_send_error(r, 404, "not_found", "no such resource");
        return;
    }
    r->state = j;
    va_req_run(r, static_work, static_done);
}

/* OHIF's configuration for this session: DICOMweb at this origin (the
 * session cookie authenticates it), the study list only for the roles that
 * browse a center's studies. */
static void viewer_config_done(va_req *r);

void va_handle_viewer_config(va_req *r)
{
    if (!r->srv->cfg->web->viewer) {
        va_send_error(r, 404, "not_found", "no such resource");
        return;
    }
    /* the pool step authenticates the session (no work of its own) */
    va_req_run(r, NULL, viewer_config_done);
}

/* 1 when base is "<scheme>://" and a host[:port] of plain characters, so it
 * can stand in a JavaScript string. */
static int plain_base(const char *base)
{
    const char *h = strstr(base, "://");
    if (!h || !h[3])
        return 0;
    for (h += 3; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
              *h == '.' || *h == '-' || *h == ':' || *h == '[' || *h == ']'))
            return 0;
    return 1;
}

static void viewer_config_done(va_req *r)
{
    if (va_req_gone(r))
        return;
    char base[512];
    va_base_url(r, base, sizeof(base));
    if (!plain_base(base)) /* a forged Host: the roots stay relative to the page */
        base[0] = '\0';
    enum sto_role role = r->who.role;
    int browse = role == STO_ROLE_READER || role == STO_ROLE_AUDITOR || role == STO_ROLE_ADMIN;
    char js[4096];
    int n = snprintf(js, sizeof(js),
                     "/* generated by huren for this session (decision 0028) */\n"
                     "window.config = {\n"
                     "  name: 'huren',\n"
                     "  routerBasename: '/viewer',\n"
                     "  extensions: [],\n"
                     "  modes: [],\n"
                     "  showStudyList: %s,\n"
                     "  showWarningMessageForCrossOrigin: false,\n"
                     "  showLoadingIndicator: true,\n"
                     "  investigationalUseDialog: { option: 'never' },\n"
                     "  maxNumberOfWebWorkers: 2,\n"
                     "  defaultDataSourceName: 'huren',\n"
                     "  dataSources: [{\n"
                     "    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',\n"
                     "    sourceName: 'huren',\n"
                     "    configuration: {\n"
                     "      friendlyName: 'huren',\n"
                     "      name: 'huren',\n"
                     "      wadoUriRoot: '%s/wado',\n"
                     "      qidoRoot: '%s/dicomweb',\n"
                     "      wadoRoot: '%s/dicomweb',\n"
                     "      qidoSupportsIncludeField: true,\n"
                     "      imageRendering: 'wadors',\n"
                     "      thumbnailRendering: 'thumbnail',\n"
                     "      thumbnailRequestStrategy: 'fetch',\n"
                     "      enableStudyLazyLoad: true,\n"
                     "      supportsFuzzyMatching: false,\n"
                     "      supportsWildcard: true,\n"
                     "      staticWado: false,\n"
                     "      singlepart: 'bulkdata,video',\n"
                     "      bulkDataURI: { enabled: true, relativeResolution: 'studies' },\n"
                     "      omitQuotationForMultipartRequest: true,\n"
                     "    },\n"
                     "  }],\n"
                     "};\n",
                     browse ? "true" : "false", base, base, base);
    if (n < 0 || (size_t)n >= sizeof(js)) {
        va_send_error(r, 500, "internal", "configuration too long");
        return;
    }
    va_add_header(r, "Cache-Control", "no-store");
    va_add_header(r, "X-Content-Type-Options", "nosniff");
    va_send(r, 200, "text/javascript; charset=utf-8", js, (size_t)n);
}
