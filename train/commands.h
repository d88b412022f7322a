/* train/commands.h - subcommands provided by the data module's command-line front ends. */
#ifndef CF_COMMANDS_DATA_H
#define CF_COMMANDS_DATA_H

int cf_cmd_tokenizer(int argc, char **argv); /* cformer tokenizer train|encode|decode ... */
int cf_cmd_data(int argc, char **argv);      /* cformer data toy ... */

#endif
