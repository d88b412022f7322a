/* train/cmd_bleu.h - `cformer bleu`: corpus BLEU (and chrF) of a hypothesis file, as sacrebleu.
 *
 *     cformer bleu --ref ref.de [--ref ref2.de]... [--hyp hyp.de] [--metrics bleu,chrf] [--sentence]
 */
#ifndef CF_CMD_BLEU_H
#define CF_CMD_BLEU_H

int cf_cmd_bleu(int argc, char **argv);

#endif
