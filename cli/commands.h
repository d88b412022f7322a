/* cli/commands.h - the subcommands of build/cformer (cli/main.c lists them). Each takes the
 * arguments after its name and returns the exit code: 0 ok, 1 runtime failure, 2 bad usage/input. */
#ifndef CF_COMMANDS_H
#define CF_COMMANDS_H

int cf_cmd_train(int argc, char **argv);     /* cformer train CONFIG [--out DIR] [--resume] [--set k=v]... */
int cf_cmd_eval(int argc, char **argv);      /* cformer eval RUN_DIR|CKPT_DIR [--split valid|test] [--beam N] */
int cf_cmd_translate(int argc, char **argv); /* cformer translate RUN_DIR|CKPT_DIR [--beam N] < src > hyp */
int cf_cmd_info(int argc, char **argv);      /* cformer info RUN_DIR|CKPT_DIR */
int cf_cmd_config(int argc, char **argv);    /* cformer config CONFIG [--set k=v]... | --doc */
int cf_cmd_bleu(int argc, char **argv);      /* cformer bleu --ref FILE... [--hyp FILE] */
int cf_cmd_tokenizer(int argc, char **argv); /* cformer tokenizer train|encode|decode|compare ... */
int cf_cmd_data(int argc, char **argv);      /* cformer data toy ... */
int cf_cmd_bench(int argc, char **argv);     /* cformer bench CONFIG [--steps N] [--warmup N] [--threads N] [--set k=v]... */
int cf_cmd_bench_attention(int argc, char **argv); /* cformer bench attention [--batch N] [--seq-len N] ... */
int cf_cmd_memory(int argc, char **argv);    /* cformer memory CONFIG|--preset NAME [--dtype D] [--batch N] ... */

#endif
