/* huren-bench-fill: fills a huren Redis index with the study plan of
 * bench/build_archive, through the same commit as ingest and reindex
 * (sto_index_commit_sync: the index script), without object files. For
 * bench/query's index-only archives (1 M instances in minutes instead of
 * hours of C-STORE on a small machine; QIDO and C-FIND at STUDY level read
 * only the index).
 *
 *   huren-bench-fill REDIS_URL FIRST_STUDY N_STUDIES
 *
 * Study i: 2 series x 5 instances; PatientID P<i/2>, AccessionNumber
 * ACC<i>, StudyDate 2015-01-01 + i*365/1000 days, MR when i % 4 == 3 else
 * CT (as bench/build_archive), hospital township1, and a Chinese patient
 * name "Pinyin^Given=汉字^名" drawn from patient i/2 with surname frequencies
 * like the population's (张, 王, 李 7 % each). Prints the fill rate. */
#include "common/hr_err.h"
#include "storage/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct syl {
    const char *han, *pinyin;
} syl;

/* surnames, each listed as many times as its share in percent (top ten),
 * then one entry each */
static const syl k_sur[] = {
    {"张", "Zhang"}, {"王", "Wang"}, {"李", "Li"},    {"刘", "Liu"},  {"陈", "Chen"},
    {"杨", "Yang"},  {"赵", "Zhao"}, {"黄", "Huang"}, {"周", "Zhou"}, {"吴", "Wu"},
    {"徐", "Xu"},    {"孙", "Sun"},  {"胡", "Hu"},    {"朱", "Zhu"},  {"高", "Gao"},
    {"林", "Lin"},   {"何", "He"},   {"郭", "Guo"},   {"马", "Ma"},   {"罗", "Luo"},
};
static const int k_share[] = {7, 7, 7, 5, 5, 3, 2, 2, 2, 2}; /* the rest share what is left */

static const syl k_given[] = {
    {"伟", "Wei"},   {"芳", "Fang"}, {"娜", "Na"},   {"敏", "Min"},  {"静", "Jing"}, {"丽", "Li"},
    {"强", "Qiang"}, {"磊", "Lei"},  {"军", "Jun"},  {"洋", "Yang"}, {"勇", "Yong"}, {"艳", "Yan"},
    {"杰", "Jie"},   {"娟", "Juan"}, {"涛", "Tao"},  {"明", "Ming"}, {"超", "Chao"}, {"秀", "Xiu"},
    {"霞", "Xia"},   {"平", "Ping"}, {"刚", "Gang"}, {"桂", "Gui"},  {"英", "Ying"}, {"华", "Hua"},
    {"建", "Jian"},  {"国", "Guo"},  {"兰", "Lan"},  {"文", "Wen"},  {"辉", "Hui"},  {"鹏", "Peng"},
};

static unsigned mix(unsigned x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static void patient_name(unsigned p, char *out, size_t cap)
{
    unsigned h = mix(p + 1);
    int pct = (int)(h % 100), s = 0, acc = 0;
    const int n_top = (int)(sizeof(k_share) / sizeof(k_share[0]));
    const int n_sur = (int)(sizeof(k_sur) / sizeof(k_sur[0]));
    for (s = 0; s < n_top; s++) {
        acc += k_share[s];
        if (pct < acc)
            break;
    }
    if (s == n_top)
        s = n_top + (int)((h >> 8) % (unsigned)(n_sur - n_top));
    const int ng = (int)(sizeof(k_given) / sizeof(k_given[0]));
    const syl *g1 = &k_given[(h >> 12) % (unsigned)ng], *g2 = &k_given[(h >> 20) % (unsigned)ng];
    char lower[16];
    snprintf(lower, sizeof(lower), "%s", g2->pinyin);
    lower[0] = (char)(lower[0] - 'A' + 'a');
    snprintf(out, cap, "%s^%s%s=%s^%s%s", k_sur[s].pinyin, g1->pinyin, lower, k_sur[s].han, g1->han,
             g2->han);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: huren-bench-fill REDIS_URL FIRST_STUDY N_STUDIES\n");
        return 2;
    }
    sto_redis_addr addr;
    int err;
    if (sto_redis_addr_parse(argv[1], &addr)) {
        fprintf(stderr, "huren-bench-fill: bad redis url %s\n", argv[1]);
        return 2;
    }
    long first = atol(argv[2]), n = atol(argv[3]);
    redisContext *c = sto_index_connect_sync(&addr, 5000, &err);
    if (!c) {
        fprintf(stderr, "huren-bench-fill: cannot connect to %s\n", argv[1]);
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long long received = 1750000000000LL + first * 10;
    int rc = 0;
    for (long i = first; !rc && i < first + n; i++) {
        dcm_attrs a;
        memset(&a, 0, sizeof(a));
        long days = i * 365 / 1000;
        struct tm tm = {.tm_year = 115, .tm_mon = 0, .tm_mday = 1 + (int)days, .tm_hour = 12};
        timegm(&tm); /* normalizes the day count into a date */
        snprintf(a.study_date, sizeof(a.study_date), "%04d%02d%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday);
        snprintf(a.study_time, sizeof(a.study_time), "%02ld%02ld00", 8 + i % 10, i % 60);
        snprintf(a.study_instance_uid, sizeof(a.study_instance_uid), "1.2.826.0.1.3680043.9.7.%ld",
                 i);
        snprintf(a.patient_id, sizeof(a.patient_id), "P%06ld", i / 2);
        patient_name((unsigned)(i / 2), a.patient_name, sizeof(a.patient_name));
        snprintf(a.patient_birth_date, sizeof(a.patient_birth_date), "19%02ld0101",
                 30 + i / 2 % 60);
        snprintf(a.patient_sex, sizeof(a.patient_sex), "%s", i / 2 % 2 ? "M" : "F");
        snprintf(a.accession_number, sizeof(a.accession_number), "ACC%07ld", i);
        snprintf(a.modality, sizeof(a.modality), "%s", i % 4 == 3 ? "MR" : "CT");
        snprintf(a.study_description, sizeof(a.study_description), "%s bench study", a.modality);
        snprintf(a.sop_class_uid, sizeof(a.sop_class_uid), "%s",
                 i % 4 == 3 ? "1.2.840.10008.5.1.4.1.1.4" : "1.2.840.10008.5.1.4.1.1.2");
        snprintf(a.transfer_syntax_uid, sizeof(a.transfer_syntax_uid), "1.2.840.10008.1.2.1");
        for (int se = 1; !rc && se <= 2; se++) {
            snprintf(a.series_instance_uid, sizeof(a.series_instance_uid), "%s.%d",
                     a.study_instance_uid, se);
            snprintf(a.series_number, sizeof(a.series_number), "%d", se);
            for (int k = 1; !rc && k <= 5; k++) {
                char sha[65];
                snprintf(a.sop_instance_uid, sizeof(a.sop_instance_uid), "%s.%d",
                         a.series_instance_uid, k);
                snprintf(a.instance_number, sizeof(a.instance_number), "%d", k);
                snprintf(sha, sizeof(sha), "%016lx%08x%040x", i, se * 16 + k, 0);
                sto_instance_rec rec = {
                    &a, sha, 3300, "township1", "TOWNSHIP1", received++, "township1", 0, 0};
                sto_index_result res;
                rc = sto_index_commit_sync(c, &rec, &res);
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    redisFree(c);
    if (rc) {
        fprintf(stderr, "huren-bench-fill: commit failed: %s\n", hr_strerror(rc));
        return 1;
    }
    fprintf(stderr, "huren-bench-fill: %ld studies (%ld instances) in %.1f s: %.0f instances/s\n",
            n, n * 10, s, s > 0 ? (double)n * 10 / s : 0.0);
    return 0;
}
