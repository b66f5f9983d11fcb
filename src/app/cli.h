/*
 * cli.h: the command line (see cli.c).
 */
#ifndef CF_CLI_H
#define CF_CLI_H

/* cf_cli_main(argc, argv): runs one command; returns the exit code (0, 1 or 2). */
int cf_cli_main(int argc, char **argv);
/* cf_scanner_main(argc, argv): the hidden `coffer scan-worker` command, run only by the server for
 * its scanner processes (scanner.c). argv[0] is "scan-worker". Never returns. */
int cf_scanner_main(int argc, char **argv);

#endif
