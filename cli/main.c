#include "cli.h"
#include "../common/hr_log.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: huren <command> [options]\n"
               "\n"
               "commands:\n"
               "  serve [--config FILE]            run the hub (DICOM, index, embedded redis)\n"
               "  reindex [--config FILE] [--flush] rebuild the index from the object files\n"
               "  check-config [--config FILE]     validate a configuration and print it\n"
               "  audit verify [--config FILE]     check the audit log's hash chain\n"
               "  user add|passwd|disable|enable|list  accounts of the HTTP API (user -h)\n"
               "  ca init [--alg es256|sm2]        create the regional CA of signer certificates\n"
               "  keygen --user NAME --alg ALG     a signing key and certificate (keygen -h)\n"
               "  cert import --user NAME --chain FILE  a chain issued by a real CA\n"
               "  verify FILE.jws [--trust CA.pem] [--images DIR | --hub URL --token T]\n"
               "                                   verify a signed report offline (verify -h)\n"
               "  version                          print the version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cli_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "reindex") == 0)
        return cli_reindex(argc - 1, argv + 1);
    if (strcmp(cmd, "check-config") == 0)
        return cli_check_config(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0)
        return cli_audit(argc - 1, argv + 1);
    if (strcmp(cmd, "user") == 0)
        return cli_user(argc - 1, argv + 1);
    if (strcmp(cmd, "ca") == 0)
        return cli_ca(argc - 1, argv + 1);
    if (strcmp(cmd, "keygen") == 0)
        return cli_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "cert") == 0)
        return cli_cert(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0)
        return cli_verify(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("huren 0.1.0\n");
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "huren: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
