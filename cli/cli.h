/* cli/cli.h - the subcommands of build/cformer. Each takes argc/argv after the subcommand name
 * and returns the process exit code (0 ok, 1 runtime failure, 2 bad usage or bad input). */
#ifndef CF_CLI_H
#define CF_CLI_H

typedef int (*cf_cli_fn)(int argc, char **argv);

typedef struct cf_cli_command {
    const char *name;
    cf_cli_fn run;
    const char *summary;
} cf_cli_command;

#endif
