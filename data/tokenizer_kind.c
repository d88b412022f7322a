/* data/tokenizer_kind.c - cf_tokenizer: one interface over the three kinds (a tagged pointer and
 * a switch per call), the shared trainer, and loading by the file's "format".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/fileio.h"
#include "data/lines.h"
#include "data/tokenizer_internal.h"
#include "data/unigram.h"
#include "data/wordpiece.h"

struct cf_tokenizer {
    cf_tok_kind kind;
    cf_bpe *bpe;
    cf_wordpiece *wp;
    cf_unigram *ug;
};

static const char *const kind_names[CF_TOK_N_KINDS] = {"bpe", "wordpiece", "unigram"};
static const char *const kind_formats[CF_TOK_N_KINDS] = {"cformer-bpe", "cformer-wordpiece", "cformer-unigram"};

const char *cf_tok_kind_name(cf_tok_kind k) { return k >= 0 && k < CF_TOK_N_KINDS ? kind_names[k] : "?"; }

int cf_tok_kind_parse(const char *name) {
    for (int k = 0; name && k < CF_TOK_N_KINDS; k++)
        if (strcmp(name, kind_names[k]) == 0) return k;
    return -1;
}

/* ---------------------------------------------------------------- training */

/* The trainer is the BPE's word counter: the three kinds learn from the same word counts. */
struct cf_tok_trainer {
    cf_bpe_trainer *words;
};

cf_tok_trainer *cf_tok_trainer_new(void) {
    cf_tok_trainer *tr = cf_xcalloc(1, sizeof *tr);
    tr->words = cf_bpe_trainer_new();
    return tr;
}

void cf_tok_trainer_add(cf_tok_trainer *tr, const char *text, size_t len) { cf_bpe_trainer_add(tr->words, text, len); }

int cf_tok_trainer_add_file(cf_tok_trainer *tr, const char *path) {
    cf_lines *r = cf_lines_open(path);
    if (!r) return -1;
    const char *line;
    size_t n;
    int rc;
    while ((rc = cf_lines_next(r, &line, &n)) > 0) cf_bpe_trainer_add(tr->words, line, n);
    cf_lines_close(r);
    return rc < 0 ? -1 : 0;
}

tok_words tok_trainer_words(const cf_tok_trainer *tr) { return bpe_trainer_words(tr->words); }

void cf_tok_trainer_free(cf_tok_trainer *tr) {
    if (!tr) return;
    cf_bpe_trainer_free(tr->words);
    free(tr);
}

cf_tokenizer *cf_tok_trainer_finish(cf_tok_trainer *tr, cf_tok_kind kind, int vocab_size) {
    return cf_tok_trainer_finish_ex(tr, kind, vocab_size, 0);
}

cf_tokenizer *cf_tok_trainer_finish_ex(cf_tok_trainer *tr, cf_tok_kind kind, int vocab_size, int64_t min_count) {
    switch (kind) {
    case CF_TOK_BPE: {
        cf_bpe_trainer *words = tr->words;
        free(tr);
        cf_bpe *b = cf_bpe_trainer_finish_ex(words, vocab_size, min_count);
        return b ? cf_tokenizer_from_bpe(b) : NULL;
    }
    case CF_TOK_WORDPIECE: {
        cf_wordpiece *w =
            cf_wordpiece_train(tr, &(cf_wordpiece_opts){.vocab_size = vocab_size, .min_count = min_count});
        return w ? cf_tokenizer_from_wordpiece(w) : NULL;
    }
    case CF_TOK_UNIGRAM: {
        cf_unigram *u = cf_unigram_train(tr, &(cf_unigram_opts){.vocab_size = vocab_size});
        return u ? cf_tokenizer_from_unigram(u) : NULL;
    }
    default: break;
    }
    cf_error_set("tokenizer: unknown kind %d", (int)kind);
    cf_tok_trainer_free(tr);
    return NULL;
}

cf_tokenizer *cf_tokenizer_train_files(cf_tok_kind kind, const char *const *paths, int n_paths, int vocab_size) {
    cf_tok_trainer *tr = cf_tok_trainer_new();
    for (int i = 0; i < n_paths; i++)
        if (cf_tok_trainer_add_file(tr, paths[i]) != 0) {
            cf_tok_trainer_free(tr);
            return NULL;
        }
    return cf_tok_trainer_finish(tr, kind, vocab_size);
}

/* ---------------------------------------------------------------- wrapping */

static cf_tokenizer *wrap(cf_tok_kind kind) {
    cf_tokenizer *t = cf_xcalloc(1, sizeof *t);
    t->kind = kind;
    return t;
}

cf_tokenizer *cf_tokenizer_from_bpe(cf_bpe *b) {
    cf_tokenizer *t = wrap(CF_TOK_BPE);
    t->bpe = b;
    return t;
}

cf_tokenizer *cf_tokenizer_from_wordpiece(cf_wordpiece *w) {
    cf_tokenizer *t = wrap(CF_TOK_WORDPIECE);
    t->wp = w;
    return t;
}

cf_tokenizer *cf_tokenizer_from_unigram(cf_unigram *u) {
    cf_tokenizer *t = wrap(CF_TOK_UNIGRAM);
    t->ug = u;
    return t;
}

cf_bpe *cf_tokenizer_bpe(const cf_tokenizer *t) { return t->bpe; }
cf_wordpiece *cf_tokenizer_wordpiece(const cf_tokenizer *t) { return t->wp; }
cf_unigram *cf_tokenizer_unigram(const cf_tokenizer *t) { return t->ug; }
cf_tok_kind cf_tokenizer_kind(const cf_tokenizer *t) { return t->kind; }

void cf_tokenizer_free(cf_tokenizer *t) {
    if (!t) return;
    cf_bpe_free(t->bpe);
    cf_wordpiece_free(t->wp);
    cf_unigram_free(t->ug);
    free(t);
}

/* ---------------------------------------------------------------- dispatch */

int cf_tokenizer_vocab_size(const cf_tokenizer *t) {
    switch (t->kind) {
    case CF_TOK_BPE: return cf_bpe_vocab_size(t->bpe);
    case CF_TOK_WORDPIECE: return cf_wordpiece_vocab_size(t->wp);
    default: return cf_unigram_vocab_size(t->ug);
    }
}

void cf_tokenizer_encode(cf_tokenizer *t, const char *text, size_t len, cf_ids *out) {
    switch (t->kind) {
    case CF_TOK_BPE: cf_bpe_encode(t->bpe, text, len, out); break;
    case CF_TOK_WORDPIECE: cf_wordpiece_encode(t->wp, text, len, out); break;
    default: cf_unigram_encode(t->ug, text, len, out); break;
    }
}

size_t cf_tokenizer_decode(const cf_tokenizer *t, const int32_t *ids, int64_t n, char *out, size_t cap) {
    switch (t->kind) {
    case CF_TOK_BPE: return cf_bpe_decode(t->bpe, ids, n, out, cap);
    case CF_TOK_WORDPIECE: return cf_wordpiece_decode(t->wp, ids, n, out, cap);
    default: return cf_unigram_decode(t->ug, ids, n, out, cap);
    }
}

const char *cf_tokenizer_token(const cf_tokenizer *t, int32_t id, size_t *len, bool *cont) {
    if (cont) *cont = false;
    switch (t->kind) {
    case CF_TOK_BPE: return cf_bpe_token(t->bpe, id, len);
    case CF_TOK_WORDPIECE: return cf_wordpiece_token(t->wp, id, len, cont);
    default: return cf_unigram_token(t->ug, id, len, NULL);
    }
}

size_t cf_tokenizer_token_text(const cf_tokenizer *t, int32_t id, char *out, size_t cap) {
    size_t n;
    bool cont;
    const unsigned char *s = (const unsigned char *)cf_tokenizer_token(t, id, &n, &cont);
    tok_buf b = {0};
    if (id < CF_TOK_N_SPECIAL) tok_buf_put(&b, (const char *)s, n);
    else {
        if (cont) tok_buf_str(&b, "##");
        for (size_t i = 0; i < n;) {
            size_t u = tok_unit_len(s + i, n - i);
            if (s[i] == ' ') tok_buf_str(&b, "\xe2\x96\x81"); /* U+2581, as in the files */
            else if (u > 1 || (s[i] > 0x20 && s[i] < 0x7f)) tok_buf_put(&b, (const char *)s + i, u);
            else tok_buf_printf(&b, "<0x%02X>", s[i]);
            i += u;
        }
    }
    size_t len = b.n;
    if (cap > 0) {
        size_t k = len < cap ? len : cap - 1;
        if (k) memcpy(out, b.p, k);
        out[k] = '\0';
    }
    free(b.p);
    return len;
}

/* ---------------------------------------------------------------- files */

char *cf_tokenizer_to_json(const cf_tokenizer *t) {
    switch (t->kind) {
    case CF_TOK_BPE: return cf_bpe_to_json(t->bpe);
    case CF_TOK_WORDPIECE: return cf_wordpiece_to_json(t->wp);
    default: return cf_unigram_to_json(t->ug);
    }
}

int cf_tokenizer_save(const cf_tokenizer *t, const char *path) {
    char *json = cf_tokenizer_to_json(t);
    int rc = cf_write_file_atomic(path, json, strlen(json));
    free(json);
    return rc;
}

cf_tokenizer *cf_tokenizer_from_json(const char *json, size_t len, const char *path) {
    cJSON *root = tok_parse_json(json, len, path);
    if (!root) return NULL;
    const char *fmt = cJSON_IsObject(root) ? tok_format(root) : NULL;
    int kind = -1;
    for (int k = 0; fmt && k < CF_TOK_N_KINDS; k++)
        if (strcmp(fmt, kind_formats[k]) == 0) kind = k;
    cf_tokenizer *t = NULL;
    switch (kind) {
    case CF_TOK_BPE: {
        cf_bpe *b = bpe_from_root(root, path);
        if (b) t = cf_tokenizer_from_bpe(b);
        break;
    }
    case CF_TOK_WORDPIECE: {
        cf_wordpiece *w = wordpiece_from_root(root, path);
        if (w) t = cf_tokenizer_from_wordpiece(w);
        break;
    }
    case CF_TOK_UNIGRAM: {
        cf_unigram *u = unigram_from_root(root, path);
        if (u) t = cf_tokenizer_from_unigram(u);
        break;
    }
    default:
        cf_error_set("%s: not a cformer tokenizer (\"format\" must be \"%s\", \"%s\" or \"%s\")", path, kind_formats[0],
                     kind_formats[1], kind_formats[2]);
    }
    cJSON_Delete(root);
    return t;
}

cf_tokenizer *cf_tokenizer_load(const char *path) {
    size_t n;
    char *json = tok_read_file(path, &n);
    if (!json) return NULL;
    cf_tokenizer *t = cf_tokenizer_from_json(json, n, path);
    free(json);
    return t;
}
