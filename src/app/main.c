/*
 * main.c: the coffer executable. Everything happens in cli.c, after one thing that must come first
 * for every command (serve, the scanners, the offline commands that read the master key): no core
 * dumps and no memory access by other processes of the account (priv.h, cf_priv_no_dumps), whether
 * started as root, as the service account or by systemd.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "priv.h"

int main(int argc, char **argv)
{
    if (cf_priv_no_dumps() != 0) {
        fprintf(stderr, "coffer: cannot disable core dumps: %s\n", strerror(errno));
        return 1;
    }
    return cf_cli_main(argc, argv);
}
