/*
 * main.c: the coffer executable. Everything happens in cli.c.
 */
#include "cli.h"

int main(int argc, char **argv)
{
    return cf_cli_main(argc, argv);
}
