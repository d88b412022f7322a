/* train/cmd_config.h - `cformer config`: print the effective config of a run, or the key docs.
 *
 *     cformer config configs/toy.json --set model.d_model=256    # effective JSON, exit 2 on errors
 *     cformer config --doc > docs/config.md                       # the key table as markdown
 */
#ifndef CF_CMD_CONFIG_H
#define CF_CMD_CONFIG_H

int cf_cmd_config(int argc, char **argv);

#endif
