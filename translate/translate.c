/* translate/translate.c - batched translation of many sentences: length-sorted batches through
 * cf_decode_batch, detokenised into text. */
#include "translate/translate.h"

#include <stdlib.h>
#include <string.h>

#include "core/interrupt.h"
#include "core/threads.h"

static const int64_t *sort_lens; /* qsort has no context argument in C11 */

static int cmp_by_len(const void *a, const void *b) {
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (sort_lens[i] != sort_lens[j]) return sort_lens[i] < sort_lens[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if the bytes there are not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    for (size_t k = 1; k < len; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < len; k++) cp = cp << 6 | (s[k] & 0x3F);
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000}; /* no overlong forms */
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* What a decoded character becomes in a hypothesis line (translate.h, docs/decoding.md): a space
 * for tab, the line breaks and the other whitespace controls (every character at which Python's
 * str.splitlines() breaks a line, and U+001F), U+FFFD for every other C0 control, NUL included,
 * and DEL; anything else stays. 0 = keep, ' ' = space, 1 = U+FFFD. */
static int control_class(uint32_t cp) {
    if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F) || cp == 0x85 || cp == 0x2028 || cp == 0x2029)
        return ' ';
    if (cp < 0x20 || cp == 0x7F) return 1;
    return 0;
}

static uint32_t utf8_cp(const unsigned char *s, size_t len) {
    if (len == 1) return s[0];
    uint32_t cp = len == 2 ? s[0] & 0x1F : len == 3 ? s[0] & 0x0F : s[0] & 0x07;
    for (size_t k = 1; k < len; k++) cp = cp << 6 | (s[k] & 0x3F);
    return cp;
}

char *cf_hyp_line(const char *s, size_t n) {
    char *out = cf_xmalloc(3 * n + 1), *o = out;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq_len((const unsigned char *)s + i, n - i);
        int cls = len ? control_class(utf8_cp((const unsigned char *)s + i, len)) : 1;
        if (cls == 0) {
            memcpy(o, s + i, len);
            o += len;
        } else if (cls == ' ') {
            *o++ = ' ';
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i += len ? len : 1;
    }
    *o = 0;
    return out;
}

int cf_translate_tokens(cf_ctx *ctx, const cf_transformer *m, const int32_t *const *src, const int64_t *src_len,
                        int64_t n, const cf_decode_opts *o, int64_t batch_size, cf_decode_result *out) {
    if (batch_size < 1) batch_size = 1;
    int64_t *order = cf_xmalloc((size_t)(n ? n : 1) * sizeof *order);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    sort_lens = src_len;
    qsort(order, (size_t)n, sizeof *order, cmp_by_len); /* similar lengths together: less padding */
    int64_t limit = m->cfg.max_len - 1;                  /* room for <eos> */
    int32_t *buf = cf_xmalloc((size_t)batch_size * (size_t)(limit + 1) * sizeof *buf);
    int32_t *lens = cf_xmalloc((size_t)batch_size * sizeof *lens);
    /* outputs in sorted order, concatenated (grown geometrically: no malloc per sentence), then
     * copied to input order */
    int64_t *start_of = cf_xmalloc((size_t)(n + 1) * sizeof *start_of), total = 0, cap_tok = 1024;
    int32_t *toks = cf_xmalloc((size_t)cap_tok * sizeof *toks);
    double *logprob = cf_xmalloc((size_t)(n ? n : 1) * sizeof *logprob);
    double *score = cf_xmalloc((size_t)(n ? n : 1) * sizeof *score);
    /* the search's caches and buffers live in out->work, so a caller that reuses out across calls
     * (a benchmark, the trainer's evaluations) stops allocating once it has seen its largest batch */
    cf_decode_result res = {.work = out->work};
    out->work = NULL;
    if (!o->no_pack) cf_decode_pack(m, &res); /* the weights stay as they are for the whole call */
    int rc = 0;
    bool was_training = ctx->training, had_grad = cf_ctx_set_grad(ctx, false);
    ctx->training = false;
    for (int64_t start = 0; start < n && rc == 0; start += batch_size) {
        int64_t nb = n - start < batch_size ? n - start : batch_size, s_max = 0;
        for (int64_t k = 0; k < nb; k++) {
            int64_t len = src_len[order[start + k]];
            if (len > limit) len = limit; /* longer sources are truncated to what the model can read */
            lens[k] = (int32_t)(len + 1);
            if (len + 1 > s_max) s_max = len + 1;
        }
        for (int64_t k = 0; k < nb; k++) {
            int32_t *row = buf + k * s_max;
            int64_t len = lens[k] - 1;
            if (len > 0) memcpy(row, src[order[start + k]], (size_t)len * sizeof *row); /* an empty line may have no ids */
            row[len] = CF_EOS_ID;
            for (int64_t j = len + 1; j < s_max; j++) row[j] = CF_PAD_ID;
        }
        cf_threads_adapt(); /* between batches: results do not depend on the thread count */
        const bool stop = cf_interrupted() != 0; /* between batches: a stop request does not wait for all */
        if (stop) cf_error_set("interrupted");
        if (stop || cf_decode_batch(m, ctx, buf, lens, nb, s_max, o, &res) != 0) {
            rc = -1;
            break;
        }
        int64_t batch_tokens = res.offsets[nb];
        if (total + batch_tokens > cap_tok) {
            while (total + batch_tokens > cap_tok) cap_tok *= 2;
            toks = realloc(toks, (size_t)cap_tok * sizeof *toks);
            CF_ASSERT(toks != NULL, "out of memory for %lld output tokens", (long long)cap_tok);
        }
        memcpy(toks + total, res.tokens, (size_t)batch_tokens * sizeof *toks);
        for (int64_t k = 0; k < nb; k++) {
            start_of[start + k] = total + res.offsets[k];
            logprob[start + k] = res.logprob[k];
            score[start + k] = res.score[k];
        }
        total += batch_tokens;
        start_of[start + nb] = total;
    }
    ctx->training = was_training;
    cf_ctx_set_grad(ctx, had_grad);
    cf_decode_unpack(&res);
    out->work = res.work;
    res.work = NULL;
    if (rc == 0) {
        cf_decode_result_reserve(out, n, total);
        int64_t *pos = cf_xmalloc((size_t)(n ? n : 1) * sizeof *pos); /* sorted position of input i */
        for (int64_t k = 0; k < n; k++) pos[order[k]] = k;
        for (int64_t i = 0; i < n; i++) {
            int64_t k = pos[i], len = start_of[k + 1] - start_of[k], off = out->offsets[i];
            memcpy(out->tokens + off, toks + start_of[k], (size_t)len * sizeof *toks);
            out->offsets[i + 1] = off + len;
            out->logprob[i] = logprob[k];
            out->score[i] = score[k];
        }
        free(pos);
    } else {
        out->n = 0;
    }
    free(start_of);
    free(toks);
    free(logprob);
    free(score);
    cf_decode_result_free(&res);
    free(lens);
    free(buf);
    free(order);
    return rc;
}

char **cf_translate_ids(cf_ctx *ctx, const cf_transformer *m, const cf_tokenizer *tgt_tok, const int32_t *const *src,
                        const int64_t *src_len, int64_t n, const cf_decode_opts *o, int64_t batch_size) {
    cf_decode_result res = {0};
    if (cf_translate_tokens(ctx, m, src, src_len, n, o, batch_size, &res) != 0) {
        cf_decode_result_free(&res);
        return NULL;
    }
    char **out = cf_xcalloc((size_t)(n ? n : 1), sizeof *out);
    size_t text_cap = 256;
    char *text = cf_xmalloc(text_cap);
    for (int64_t i = 0; i < n; i++) {
        int64_t len = cf_decode_result_len(&res, i);
        size_t need = (size_t)len * 64 + 1; /* a token decodes to at most its byte string */
        if (need > text_cap) {
            text_cap = need;
            text = cf_xrealloc(text, text_cap);
        }
        size_t bytes = cf_tokenizer_decode(tgt_tok, res.tokens + res.offsets[i], len, text, text_cap);
        out[i] = cf_hyp_line(text, bytes);
    }
    free(text);
    cf_decode_result_free(&res);
    return out;
}

char **cf_translate_corpus(cf_ctx *ctx, const cf_transformer *m, const cf_tokenizer *tgt_tok, const cf_corpus *c, int64_t n,
                           const cf_decode_opts *o, int64_t batch_size) {
    if (n <= 0 || n > c->n) n = c->n;
    const int32_t **src = cf_xmalloc((size_t)(n ? n : 1) * sizeof *src);
    int64_t *len = cf_xmalloc((size_t)(n ? n : 1) * sizeof *len);
    for (int64_t i = 0; i < n; i++) {
        src[i] = cf_corpus_src(c, i);
        len[i] = cf_corpus_src_len(c, i);
    }
    char **out = cf_translate_ids(ctx, m, tgt_tok, src, len, n, o, batch_size);
    free(src);
    free(len);
    return out;
}

void cf_strings_free(char **s, int64_t n) {
    if (!s) return;
    for (int64_t i = 0; i < n; i++) free(s[i]);
    free(s);
}
