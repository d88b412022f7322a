/* train/config_doc.h - the run config's reference page, docs/config.md, made from the key table.
 *
 * Usage:
 *     char *md = cf_config_doc_markdown();     // what `cformer config --doc` prints
 *     fputs(md, stdout);
 *     free(md);
 *
 * One table a config section, a row a key: type, default (written by cf_config_to_json from
 * cf_config_defaults, so it is the value the parser really uses), range and meaning. The test
 * config_doc_in_sync compares it with docs/config.md.
 */
#ifndef CF_TRAIN_CONFIG_DOC_H
#define CF_TRAIN_CONFIG_DOC_H

/* docs/config.md's text (malloc'ed). */
char *cf_config_doc_markdown(void);

#endif
