#include "common/hr_err.h"
#include "storage/objstore.h"
#include "support/support.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

static void setup(void)
{
    cr_assert_eq(ts_tmpdir(dir), 0);
}

static void teardown(void)
{
    ts_rmrf(dir);
}

TestSuite(objstore, .init = setup, .fini = teardown);

static const char *SHA = "ab12cd34000000000000000000000000000000000000000000000000000000ff";

Test(objstore, open_creates_layout_and_removes_stale_temp_files)
{
    sto_objstore s;
    int removed = -1;
    char stale[600];
    cr_assert_eq(sto_objstore_open(&s, dir, &removed), 0);
    cr_expect_eq(removed, 0);
    snprintf(stale, sizeof(stale), "%s/tmp/crashed.part", dir);
    FILE *f = fopen(stale, "w");
    cr_assert_not_null(f);
    fputs("half an object", f);
    fclose(f);
    cr_assert_eq(sto_objstore_open(&s, dir, &removed), 0);
    cr_expect_eq(removed, 1);
    cr_expect_neq(access(stale, F_OK), 0);
}

Test(objstore, commit_moves_content_under_its_name)
{
    sto_objstore s;
    int removed, existed = -1;
    char tmp[STO_PATH_MAX], final[STO_PATH_MAX];
    cr_assert_eq(sto_objstore_open(&s, dir, &removed), 0);
    int fd = sto_objstore_tmp_create(&s, tmp);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "payload", 7), 7);
    sto_objstore_path(&s, SHA, final);
    cr_expect_neq(access(final, F_OK), 0, "not visible before commit");
    cr_assert_eq(sto_objstore_commit(&s, fd, tmp, SHA, &existed), 0);
    cr_expect_eq(existed, 0);
    cr_expect_neq(access(tmp, F_OK), 0, "temp file gone");
    size_t n;
    unsigned char *b = ts_read_file(final, &n);
    cr_assert_not_null(b);
    cr_expect_eq(n, 7);
    cr_expect_eq(memcmp(b, "payload", 7), 0);
    free(b);
    cr_expect(strstr(final, "/objects/ab/12/ab12cd34") != NULL, "%s", final);
}

Test(objstore, identical_content_is_stored_once)
{
    sto_objstore s;
    int removed, existed;
    char tmp[STO_PATH_MAX], final[STO_PATH_MAX];
    cr_assert_eq(sto_objstore_open(&s, dir, &removed), 0);
    for (int i = 0; i < 2; i++) {
        int fd = sto_objstore_tmp_create(&s, tmp);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, "same", 4), 4);
        cr_assert_eq(sto_objstore_commit(&s, fd, tmp, SHA, &existed), 0);
        cr_expect_eq(existed, i, "second commit finds the first");
        cr_expect_neq(access(tmp, F_OK), 0, "no temp file is left");
    }
    sto_objstore_path(&s, SHA, final);
    struct stat st;
    cr_assert_eq(stat(final, &st), 0);
    cr_expect_eq(st.st_size, 4);
}

/* The same data set may arrive again with another File Meta header (another
 * AE, STOW after C-STORE): the first file stays byte for byte. */
Test(objstore, an_existing_object_is_never_replaced)
{
    sto_objstore s;
    int removed, existed;
    char tmp[STO_PATH_MAX], final[STO_PATH_MAX];
    static const char *const bodies[] = {"first header+data", "a longer second header+data"};
    cr_assert_eq(sto_objstore_open(&s, dir, &removed), 0);
    for (int i = 0; i < 2; i++) {
        int fd = sto_objstore_tmp_create(&s, tmp);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, bodies[i], strlen(bodies[i])), (ssize_t)strlen(bodies[i]));
        cr_assert_eq(sto_objstore_commit(&s, fd, tmp, SHA, &existed), 0);
        cr_expect_eq(existed, i);
        cr_expect_neq(access(tmp, F_OK), 0, "no temp file is left");
    }
    sto_objstore_path(&s, SHA, final);
    size_t n;
    unsigned char *b = ts_read_file(final, &n);
    cr_assert_not_null(b);
    cr_expect_eq(n, strlen(bodies[0]));
    cr_expect_eq(memcmp(b, bodies[0], n), 0, "the first file is kept");
    free(b);
}

Test(objstore, commit_failure_leaves_no_object_and_no_temp_file)
{
    sto_objstore s;
    int removed, existed;
    char tmp[STO_PATH_MAX], final[STO_PATH_MAX];
    cr_assert_eq(sto_objstore_open(&s, dir, &removed), 0);
    int fd = sto_objstore_tmp_create(&s, tmp);
    cr_assert_geq(fd, 0);
    close(fd); /* fdatasync on a closed descriptor fails: the commit must fail cleanly */
    cr_expect_eq(sto_objstore_commit(&s, fd, tmp, SHA, &existed), -EBADF);
    sto_objstore_path(&s, SHA, final);
    cr_expect_neq(access(final, F_OK), 0);
    cr_expect_neq(access(tmp, F_OK), 0);
}
