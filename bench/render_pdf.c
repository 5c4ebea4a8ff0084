/* huren-bench-render: rendered report PDFs per second on one thread (one
 * core), for a typical one-page report and a long one (three pages). Prints only;
 * not part of `make test` (bench/README.md).
 *   huren-bench-render [seconds per case, default 5] [out.pdf: the last case] */
#include "common/hr_buf.h"
#include "common/hr_err.h"
#include "reports/render_pdf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define DIGEST "3f9a0c1e5b7d2468ace013579bdf2468ace013579bdf2468ace013579bdf2468"

static const char k_payload[] =
    "{\"typ\": \"huren-report\", \"schema\": 1,"
    " \"report\": {\"id\": \"r1-1.2.840.99.1\", \"version\": 1, \"status\": \"final\","
    "  \"supersedes\": null},"
    " \"exam\": {\"study_uid\": \"1.2.840.99.1\", \"accession\": \"A20261203001\","
    "  \"hospital\": \"township1\", \"hospital_name\": \"城关镇卫生院\", \"modality\": \"CT\","
    "  \"procedure\": \"头颅CT平扫\", \"study_date\": \"20261201\", \"center\": \"imaging\","
    "  \"center_name\": \"医学影像中心\"},"
    " \"patient\": {\"id\": \"P0042\", \"issuer\": \"township1\", \"name\": \"张三丰\","
    "  \"sex\": \"M\", \"birth_date\": \"19800102\"},"
    " \"images\": {\"count\": 120, \"order\": \"sop-uid-bytewise\", \"digest\": \"" DIGEST "\","
    "  \"instances\": []},"
    " \"content\": {\"findings\": \"\", \"impression\": \"头颅CT平扫未见明显异常。\","
    "  \"critical\": false, \"codes\": []},"
    " \"recognition\": [{\"item\": \"CT-HEAD\", \"name\": \"头颅CT\", \"hr_mark\": \"鄂HR\","
    "  \"scope\": \"community\", \"valid_until\": \"2027-06-01\"}],"
    " \"signers\": [{\"user\": \"wang\", \"name\": \"王医生\", \"role\": \"reader\","
    "  \"function\": \"author\", \"center\": \"imaging\", \"hospital\": \"county\","
    "  \"signed_at\": \"2026-12-03T07:00:00.123Z\"},"
    "  {\"user\": \"li\", \"name\": \"李主任\", \"role\": \"auditor\","
    "  \"function\": \"authenticator\", \"center\": \"imaging\", \"hospital\": \"county\","
    "  \"signed_at\": \"2026-12-03T08:30:00.000Z\"}],"
    " \"signed_at\": \"2026-12-03T08:30:00.000Z\"}";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run_case(const char *label, json_t *p, double seconds, const char *save)
{
    rpt_render_in in = {.payload = p,
                        .digest = DIGEST,
                        .verify_url = "https://hub.example.cn/verify?report=r1-1.2.840.99.1&v=1"
                                      "&d=3f9a0c1e5b7d2468"};
    hr_buf out;
    double t0, t;
    long n = 0;
    int pages = 0, rc = 0;
    size_t bytes = 0;

    hr_buf_init(&out, RPT_RENDER_OUT_MAX);
    t0 = now_s();
    do {
        hr_buf_reset(&out);
        rc = rpt_render_pdf(NULL, &in, &out, &pages);
        if (rc) {
            fprintf(stderr, "render: %s\n", hr_strerror(rc));
            break;
        }
        bytes = out.len;
        n++;
        t = now_s() - t0;
    } while (t < seconds);
    if (!rc) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("%-12s %6.1f PDFs/s  (%ld in %.1f s, %d page(s), %zu bytes each; max RSS %ld KB)\n",
               label, n / t, n, t, pages, bytes, ru.ru_maxrss);
    }
    if (!rc && save) {
        FILE *f = fopen(save, "wb");
        if (f) {
            fwrite(out.data, 1, out.len, f);
            fclose(f);
        }
    }
    hr_buf_free(&out);
    return rc;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 5;
    const char *save = argc > 2 ? argv[2] : NULL;
    json_error_t e;
    json_t *p = json_loads(k_payload, 0, &e);
    char *longtext = malloc(64 << 10);
    size_t len = 0;
    int rc;

    if (!p || !longtext) {
        fprintf(stderr, "payload: %s\n", e.text);
        return 1;
    }
    if (seconds <= 0)
        seconds = 5;
    json_object_set_new(json_object_get(p, "content"), "findings",
                        json_string("颅骨骨质完整，颅内未见明显异常密度影。脑室系统无扩大，"
                                    "脑沟、脑裂未见增宽，中线结构居中。"));
    printf("rendering on one thread, %.0f s per case\n", seconds);
    rc = run_case("one page", p, seconds, save);
    for (int i = 0; !rc && i < 60; i++)
        len +=
            (size_t)snprintf(longtext + len, (64 << 10) - len,
                             "第%03d句：双侧大脑半球对称，灰白质分界清楚，未见异常密度影。\n", i);
    if (!rc) {
        json_object_set_new(json_object_get(p, "content"), "findings", json_string(longtext));
        rc = run_case("long", p, seconds, save);
    }
    free(longtext);
    json_decref(p);
    return rc ? 1 : 0;
}
