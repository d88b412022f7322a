/* train/config_table.c - the run config's keys (one row each) and their defaults.
 *
 * Parsing, cf_config_to_json, the unknown-key suggestions, the resume check and the documentation
 * all walk this table, so a key added here is parsed, written, suggested, checked and documented
 * at once; the test config_doc_in_sync fails until docs/config.md is regenerated
 * (cformer config --doc, train/config_doc.c).
 */
#include "train/config_table.h"

#include <math.h>
#include <string.h>

/* Every enum field is read and written through an int. */
_Static_assert(sizeof(cf_attn_kind) == sizeof(int) && sizeof(cf_ffn_kind) == sizeof(int) &&
                   sizeof(cf_norm_kind) == sizeof(int) && sizeof(cf_pos_kind) == sizeof(int) &&
                   sizeof(cf_optim_kind) == sizeof(int) && sizeof(cf_schedule_kind) == sizeof(int) &&
                   sizeof(cf_data_task) == sizeof(int),
               "enum fields must be int-sized");

void cf_config_defaults(cf_config *c) {
    memset(c, 0, sizeof *c);
    c->name = NULL; /* parsing takes it from the file name */
    c->seed = 1;
    c->data = (cf_data_config){.task = CF_TASK_TRANSLATION, .vocab_size = 8000, .shared_vocab = true, .max_len = 128,
                               .copy_vocab = 11, .copy_len = 10, .copy_train = 3000, .copy_valid = 200};
    c->model = cf_model_config_default();
    /* Transformer practice (Vaswani et al.) rather than PyTorch's generic betas and eps. */
    c->optim = cf_optim_config_default(CF_OPTIM_ADAMW);
    c->optim.beta2 = 0.98;
    c->optim.eps = 1e-9;
    c->optim.weight_decay = 0.01;
    c->schedule = (cf_schedule){.kind = CF_SCHED_COSINE, .lr = 5e-4, .min_lr = 1e-5, .warmup_steps = 400,
                                .total_steps = 0, .noam_factor = 1.0, .d_model = c->model.d_model};
    c->train = (cf_train_config){
        .max_steps = 10000, .batch_tokens = 4096, .grad_accum = 1, .label_smoothing = 0.1, .clip = 1.0,
        .eval_every = 1000, .save_every = 1000, .log_every = 50, .keep_last = 3, .threads = 0,
        .adapt_threads = true, .bucket_mb = 16,
        .patience = 0, .max_bad_steps = 10, .eval_max_sentences = 0, .exempt_embeddings = true,
    };
    c->decode = (cf_decode_config){.beam = 4, .length_penalty = 0.6, .max_len_a = 1.2, .max_len_b = 10,
                                   .eval_beam = 1, .batch_size = 64};
    c->bench = (cf_bench_config){.batch_size = 32, .src_len = 32, .tgt_len = 32, .steps = 20, .warmup = 3};
}

/* Name callbacks with one signature (calling the typed ones through a cast pointer is UB). */
static const char *attn_name(int v) { return cf_attn_kind_name((cf_attn_kind)v); }
static const char *ffn_name(int v) { return cf_ffn_kind_name((cf_ffn_kind)v); }
static const char *norm_name(int v) { return cf_norm_kind_name((cf_norm_kind)v); }
static const char *pos_name(int v) { return cf_pos_kind_name((cf_pos_kind)v); }
static const char *optim_name(int v) { return cf_optim_kind_name((cf_optim_kind)v); }
static const char *sched_name(int v) { return cf_schedule_kind_name((cf_schedule_kind)v); }
static const char *task_name(int v) { return cf_data_task_name((cf_data_task)v); }

const char *cf_data_task_name(cf_data_task t) { return t == CF_TASK_COPY ? "copy" : "translation"; }

/* data.tokenizer's kinds (data/tokenizer.h, cf_tok_kind_name), the default first. */
static const char *const tokenizer_kinds[] = {"bpe", "wordpiece", "unigram", NULL};

#define NO_LIMIT INFINITY
/* Upper bounds on sizes (docs/reliability.md): far above any model this code trains, and low
 * enough that no product of them overflows: every GEMM dimension stays below 2^21 (BLAS takes
 * int), every tensor's element count below 2^47 (int64 with room), so an absurd value is an error
 * naming its key, and a merely too large model ends in a clear out-of-memory message. */
#define MAX_WIDTH 65536             /* d_model and the per-head/latent widths */
#define MAX_FF 262144               /* d_ff */
#define MAX_HEADS 4096
#define MAX_LAYERS 1024
#define MAX_POSITIONS 65536         /* model.max_len, data.max_len, windows, output lengths */
#define MAX_BATCH_TOKENS 1048576    /* tokens of one micro-batch */
#define MAX_BATCH 65536             /* sentences decoded (or benchmarked) together */
#define MAX_COUNT 1000000           /* grad_accum, keep_last, max_bad_steps, bench steps */
#define OFF(field) offsetof(cf_config, field)
/* Each macro gives a row's fields; a row is {K_...(...)} or {K_...(...), SHAPES}. */
#define K_INT(p, f, lo_, hi_, d) .path = p, .type = CF_CONFIG_INT, .offset = OFF(f), .lo = lo_, .hi = hi_, .doc = d
/* [lo, inf), (lo, inf), [lo, hi] and [0, 1) doubles: the only shapes of range the keys need */
#define K_GE(p, f, lo_, d) .path = p, .type = CF_CONFIG_DOUBLE, .offset = OFF(f), .lo = lo_, .hi = NO_LIMIT, .doc = d
#define K_GT(p, f, lo_, d)                                                                                   \
    .path = p, .type = CF_CONFIG_DOUBLE, .offset = OFF(f), .lo = lo_, .hi = NO_LIMIT, .lo_open = true, .doc = d
#define K_DBL(p, f, lo_, hi_, d) .path = p, .type = CF_CONFIG_DOUBLE, .offset = OFF(f), .lo = lo_, .hi = hi_, .doc = d
#define K_UNIT(p, f, d) .path = p, .type = CF_CONFIG_DOUBLE, .offset = OFF(f), .lo = 0, .hi = 1, .hi_open = true, .doc = d
#define K_BOOL(p, f, d) .path = p, .type = CF_CONFIG_BOOL, .offset = OFF(f), .doc = d
#define K_PATH(p, f, d) .path = p, .type = CF_CONFIG_PATH, .offset = OFF(f), .doc = d
#define K_ENUM(p, f, fn, n, d) .path = p, .type = CF_CONFIG_ENUM, .offset = OFF(f), .enum_name = fn, .n_enum = n, .doc = d
/* The key fixes parameter or optimizer-state shapes (or the vocabulary behind them): a resumed run
 * must keep its value, since the checkpoint's tensors would no longer fit. */
#define SHAPES .sets_shapes = true
/* The key says how a run executes, not what it computes: checkpoints leave it out of their config
 * metadata (so 1 or 8 threads write byte-identical files) and a resume may change it silently. */
#define RUN_ONLY .run_only = true

static const cf_config_key keys[] = {
    {.path = "name", .type = CF_CONFIG_STRING, .offset = OFF(name), .default_doc = "the file name without extension",
     .doc = "run name; the trainer's default output directory is `runs/NAME`"},
    {.path = "seed", .type = CF_CONFIG_U64, .offset = OFF(seed), .lo = 0, .hi = 9007199254740992.0,
     .doc = "seeds initialisation, dropout and data order"},

    {K_ENUM("data.task", data.task, task_name, 2, "translation: the corpora below; copy: the course's synthetic copy task (data.copy_*, docs/course.md)"), SHAPES},
    {K_PATH("data.train_src", data.train_src, "training source sentences, one a line (plain or .gz)")},
    {K_PATH("data.train_tgt", data.train_tgt, "training target sentences, line-aligned with data.train_src")},
    {K_PATH("data.train_tsv", data.train_tsv, "instead of train_src/train_tgt: one file of `source<TAB>target` lines")},
    {K_PATH("data.valid_src", data.valid_src, "validation source (required: valid_src+valid_tgt or valid_tsv)")},
    {K_PATH("data.valid_tgt", data.valid_tgt, "validation target")},
    {K_PATH("data.valid_tsv", data.valid_tsv, "validation pairs as one TSV file")},
    {K_PATH("data.test_src", data.test_src, "test source (optional)")},
    {K_PATH("data.test_tgt", data.test_tgt, "test target")},
    {K_PATH("data.test_tsv", data.test_tsv, "test pairs as one TSV file")},
    {.path = "data.tokenizer", .type = CF_CONFIG_PATH, .offset = OFF(data.tokenizer), .words = tokenizer_kinds,
     .doc = "the tokenizer kind to train on the training data (docs/data.md), or the path of an existing "
            "tokenizer.json (any kind); with data.shared_vocab false a kind only (one tokenizer per side)", SHAPES},
    {K_INT("data.vocab_size", data.vocab_size, 260, 1000000, "tokenizer vocabulary size (4 specials + 256 bytes + learned tokens)"), SHAPES},
    {K_BOOL("data.shared_vocab", data.shared_vocab, "one tokenizer for both languages (needed by model.share_embeddings); false: one per side, tokenizer.json and tokenizer.tgt.json"), SHAPES},
    {K_INT("data.max_len", data.max_len, 1, MAX_POSITIONS, "training pairs with more tokens on either side are dropped")},
    {K_INT("data.copy_vocab", data.copy_vocab, 4, 1000000, "copy: vocabulary (<pad> 0, <bos> 1, <eos> copy_vocab - 1, symbols between)"), SHAPES},
    {K_INT("data.copy_len", data.copy_len, 1, 1000, "copy: symbols per sequence")},
    {K_INT("data.copy_train", data.copy_train, 1, 16777215, "copy: sequences per training epoch, drawn anew every epoch")},
    {K_INT("data.copy_valid", data.copy_valid, 1, 16777215, "copy: validation sequences (exact greedy copies are counted)")},

    {K_INT("model.d_model", model.d_model, 1, MAX_WIDTH, "width of embeddings and residual stream"), SHAPES},
    {K_INT("model.n_heads", model.n_heads, 1, MAX_HEADS, "attention (query) heads"), SHAPES},
    {K_INT("model.n_kv_heads", model.n_kv_heads, 0, MAX_HEADS, "key/value heads: 0 = n_heads (mha) or 1 (mqa); a divisor of n_heads for gqa"), SHAPES},
    {K_INT("model.head_dim", model.head_dim, 0, MAX_WIDTH, "per-head dimension; 0: d_model / n_heads"), SHAPES},
    {K_ENUM("model.attention", model.attention, attn_name, 4, "attention variant: multi-head, grouped-query, multi-query, multi-head latent"), SHAPES},
    {K_INT("model.kv_lora_rank", model.kv_lora_rank, 0, MAX_WIDTH, "mla: key/value latent rank; 0: d_model / 2"), SHAPES},
    {K_INT("model.q_lora_rank", model.q_lora_rank, 0, MAX_WIDTH, "mla: query latent rank; 0: queries projected directly"), SHAPES},
    {K_INT("model.qk_nope_dim", model.qk_nope_dim, 0, MAX_WIDTH, "mla: per-head query/key dims without RoPE; 0: head dim"), SHAPES},
    {K_INT("model.qk_rope_dim", model.qk_rope_dim, 0, MAX_WIDTH, "mla: per-head query/key dims with RoPE (even); 0: head dim / 2"), SHAPES},
    {K_INT("model.v_head_dim", model.v_head_dim, 0, MAX_WIDTH, "mla: per-head value dim; 0: head dim"), SHAPES},
    {K_INT("model.enc_layers", model.enc_layers, 0, MAX_LAYERS, "encoder layers"), SHAPES},
    {K_INT("model.dec_layers", model.dec_layers, 1, MAX_LAYERS, "decoder layers"), SHAPES},
    {K_INT("model.d_ff", model.d_ff, 1, MAX_FF, "hidden width of the feed-forward blocks"), SHAPES},
    {K_ENUM("model.activation", model.activation, ffn_name, 3, "feed-forward activation"), SHAPES},
    {K_ENUM("model.norm", model.norm, norm_name, 2, "normalisation layer"), SHAPES},
    {K_BOOL("model.pre_norm", model.pre_norm, "pre-LN (with a final norm on each stack); false: post-LN"), SHAPES},
    {K_GT("model.norm_eps", model.norm_eps, 0, "epsilon of the normalisation layers")},
    {K_ENUM("model.pos_encoding", model.pos_encoding, pos_name, 5, "positional encoding; relative: Shaw et al.'s learned relative keys in self-attention"), SHAPES},
    {K_GT("model.rope_base", model.rope_base, 1, "RoPE frequency base")},
    {K_INT("model.rel_clip", model.rel_clip, 0, 4096, "relative: clip distance R; the table has 2R+1 entries"), SHAPES},
    {K_BOOL("model.rel_per_head", model.rel_per_head, "relative: one table per head; false: one table shared by all heads"), SHAPES},
    {K_BOOL("model.qk_norm", model.qk_norm, "RMSNorm of each head's queries and keys before RoPE (Qwen3's QK-norm; mha/gqa/mqa)"), SHAPES},
    {K_INT("model.num_experts", model.num_experts, 0, 4096, "mixture of experts: routed experts in every FFN; 0: dense FFNs"), SHAPES},
    {K_INT("model.num_experts_per_token", model.num_experts_per_token, 1, 4096, "moe: experts each token is routed to (top-k)")},
    {K_INT("model.n_shared_experts", model.n_shared_experts, 0, 4096, "moe: always-on shared experts (one FFN of n_shared_experts x moe_d_ff)"), SHAPES},
    {K_INT("model.moe_d_ff", model.moe_d_ff, 0, MAX_FF, "moe: hidden width of one expert; 0: model.d_ff"), SHAPES},
    {K_GE("model.moe_aux_weight", model.moe_aux_weight, 0, "moe: weight of the load-balancing loss (Switch Transformer's E * sum_e f_e P_e)")},
    {K_INT("model.max_len", model.max_len, 1, MAX_POSITIONS, "positions available (must cover data.max_len and decoding)"), SHAPES},
    {K_INT("model.window", model.window, 0, MAX_POSITIONS, "sliding-window self-attention width; 0: full attention")},
    {K_UNIT("model.dropout", model.dropout, "dropout on embeddings, residual branches and feed-forward")},
    {K_UNIT("model.attn_dropout", model.attn_dropout, "dropout on attention weights")},
    {K_BOOL("model.bias", model.bias, "biases in projections and feed-forward layers"), SHAPES},
    {K_BOOL("model.share_embeddings", model.share_embeddings, "one embedding table for source and target (needs data.shared_vocab)"), SHAPES},
    {K_BOOL("model.tie_output", model.tie_output, "output projection = target embedding transposed"), SHAPES},
    {K_BOOL("model.scale_embedding", model.scale_embedding, "multiply embeddings by sqrt(d_model)")},

    {K_ENUM("optim.kind", optim.kind, optim_name, 3, "optimizer (PyTorch's update rules)"), SHAPES},
    {K_UNIT("optim.beta1", optim.beta1, "Adam first-moment decay")},
    {K_UNIT("optim.beta2", optim.beta2, "Adam second-moment decay")},
    {K_GE("optim.eps", optim.eps, 0, "Adam denominator epsilon")},
    {K_GE("optim.weight_decay", optim.weight_decay, 0, "decoupled (adamw) or L2 (adam, sgd) weight decay")},
    {K_GE("optim.momentum", optim.momentum, 0, "sgd momentum")},
    {K_GE("optim.dampening", optim.dampening, 0, "sgd dampening")},
    {K_BOOL("optim.nesterov", optim.nesterov, "sgd Nesterov momentum (needs momentum > 0, dampening 0)")},

    {K_ENUM("schedule.kind", schedule.kind, sched_name, 4, "learning-rate schedule (optim/schedule.h)")},
    {K_GE("schedule.lr", schedule.lr, 0, "peak learning rate, reached after warmup (unused by noam)")},
    {K_GE("schedule.min_lr", schedule.min_lr, 0, "cosine/linear: final learning rate (<= lr)")},
    {K_INT("schedule.warmup_steps", schedule.warmup_steps, 0, NO_LIMIT, "linear warmup updates (noam: >= 1)")},
    {K_INT("schedule.total_steps", schedule.total_steps, 0, NO_LIMIT, "cosine/linear: decay ends here; 0: train.max_steps (written resolved)")},
    {K_GT("schedule.noam_factor", schedule.noam_factor, 0, "noam: lr = `factor * d_model^-0.5 * min(t^-0.5, t * warmup^-1.5)`")},

    {K_INT("train.max_steps", train.max_steps, 1, NO_LIMIT, "optimizer updates to run")},
    {K_INT("train.batch_tokens", train.batch_tokens, 1, MAX_BATCH_TOKENS, "token budget per micro-batch (padded source or target, whichever larger)")},
    {K_INT("train.grad_accum", train.grad_accum, 1, MAX_COUNT, "micro-batches per update and rank; K MPI ranks make the global accumulation K times this, which is what config.json and checkpoints record (docs/distributed.md)")},
    {K_UNIT("train.label_smoothing", train.label_smoothing, "label smoothing of the cross-entropy")},
    {K_GE("train.clip", train.clip, 0, "clip the global gradient norm to this; 0: no clipping")},
    {K_INT("train.eval_every", train.eval_every, 1, NO_LIMIT, "updates between evaluations (valid loss and BLEU)")},
    {K_INT("train.save_every", train.save_every, 1, NO_LIMIT, "updates between checkpoints")},
    {K_INT("train.log_every", train.log_every, 1, NO_LIMIT, "updates between metrics.jsonl train lines")},
    {K_INT("train.keep_last", train.keep_last, 1, MAX_COUNT, "checkpoints kept besides the best")},
    {K_INT("train.threads", train.threads, 0, 4096, "threads; 0: every CPU this process may use (affinity, cgroup quota)"), RUN_ONLY},
    {K_BOOL("train.adapt_threads", train.adapt_threads, "between steps, use only the cores other processes leave free (results do not change)"), RUN_ONLY},
    {K_INT("train.bucket_mb", train.bucket_mb, 1, 1024, "MPI runs: MiB of gradients exchanged per bucket (results do not change)"), RUN_ONLY},
    {K_INT("train.patience", train.patience, 0, NO_LIMIT, "evaluations without a better valid BLEU before stopping; 0: never stop early")},
    {K_INT("train.max_bad_steps", train.max_bad_steps, 1, MAX_COUNT, "consecutive non-finite updates before giving up")},
    {K_INT("train.eval_max_sentences", train.eval_max_sentences, 0, NO_LIMIT, "valid sentences decoded for BLEU at each evaluation; 0: all")},
    {K_BOOL("train.exempt_embeddings", train.exempt_embeddings, "no weight decay on embedding tables")},

    {K_INT("decode.beam", decode.beam, 1, 1024, "beam size; 1: greedy")},
    {K_GE("decode.length_penalty", decode.length_penalty, 0, "GNMT alpha: hypotheses are ranked by `score / ((5 + len) / 6)^alpha`")},
    {K_DBL("decode.max_len_a", decode.max_len_a, 0, 1000, "output length limit: floor(a * source length + b) tokens before `<eos>`, the source length counting its `<eos>`; at most model.max_len - 1 (docs/decoding.md)")},
    {K_INT("decode.max_len_b", decode.max_len_b, 0, MAX_POSITIONS, "see max_len_a")},
    {K_INT("decode.eval_beam", decode.eval_beam, 1, 1024, "beam size for validation BLEU during training")},
    {K_INT("decode.batch_size", decode.batch_size, 1, MAX_BATCH, "sentences decoded together")},

    {K_INT("bench.batch_size", bench.batch_size, 1, MAX_BATCH, "sentence pairs per benchmark step")},
    {K_INT("bench.src_len", bench.src_len, 1, MAX_POSITIONS, "source tokens per sentence (no padding)")},
    {K_INT("bench.tgt_len", bench.tgt_len, 1, MAX_POSITIONS, "target tokens per sentence (no padding)")},
    {K_INT("bench.steps", bench.steps, 1, MAX_COUNT, "timed training steps; the median is reported")},
    {K_INT("bench.warmup", bench.warmup, 0, MAX_COUNT, "untimed steps before timing (the arena grows to its size)")},
};
enum { N_KEYS = sizeof keys / sizeof keys[0] };

const cf_config_key *cf_config_keys(int *n) {
    *n = N_KEYS;
    return keys;
}

const cf_config_key *cf_config_key_find(const char *path) {
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].path, path) == 0) return &keys[i];
    return NULL;
}
