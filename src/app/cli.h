/*
 * cli.h: the command line (see cli.c).
 */
#ifndef CF_CLI_H
#define CF_CLI_H

/* cf_cli_main(argc, argv): runs one command; returns the exit code (0, 1 or 2). */
int cf_cli_main(int argc, char **argv);

#endif
