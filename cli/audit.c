/* huren audit verify: check the audit log's hash chain. */
#include "cli.h"
#include "../common/hr_err.h"
#include "../storage/audit.h"

#include <stdio.h>
#include <string.h>

#define AUDIT_USAGE "usage: huren audit verify [--config FILE]"

int cli_audit(int argc, char **argv)
{
    hr_config cfg;
    int flags = 0;
    long long records = 0;
    char err[1024];
    if (argc < 2 || strcmp(argv[1], "verify") != 0) {
        int help = argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0);
        fprintf(help ? stdout : stderr, "%s\n", AUDIT_USAGE);
        return help ? 0 : 2;
    }
    int rc = cli_load_config(argc - 1, argv + 1, AUDIT_USAGE, &cfg, &flags, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    rc = sto_audit_verify(cfg.data_dir, &records, err, sizeof(err));
    if (rc == 0) {
        printf("audit log intact: %lld records\n", records);
        if (err[0])
            printf("%s\n", err);
    } else if (rc == HR_EMISMATCH) {
        fprintf(stderr, "huren: audit log broken: %s\n", err);
    } else {
        fprintf(stderr, "huren: cannot verify the audit log: %s\n", err[0] ? err : hr_strerror(rc));
    }
    hr_config_free(&cfg);
    return rc == 0 ? 0 : 1;
}
