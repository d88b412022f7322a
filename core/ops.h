/* core/ops.h - differentiable tensor operations.
 *
 * Usage:
 *     cf_tensor *h = cf_relu(ctx, cf_linear(ctx, x, w1, b1));      // x [N, C] -> h [N, F]
 *     cf_tensor *loss = cf_cross_entropy(ctx, logits, targets, 0.1, CF_PAD_ID, NULL);
 *     cf_backward(ctx, loss);
 *
 * Every op allocates its output from the context's arena and, when grad mode is on and an input
 * requires grad, records a tape node whose backward adds (+=) into the inputs' gradients.
 * Kernels are OpenMP-parallel over output rows (static schedule, no cross-thread reductions), so
 * results are bit-identical for any thread count; GEMMs go to OpenBLAS with transpose flags.
 * Shape mistakes are programming errors and stop with CF_ASSERT naming the op and shapes.
 *
 * Shape letters: N rows (all leading dims flattened), C last dim, B batch, H heads, T query length,
 * S key length, D head dim, V vocabulary, M x K @ K x N for matmul.
 */
#ifndef CF_OPS_H
#define CF_OPS_H

#include "core/autograd.h"

/* ---- linear algebra ---- */

/* a [..., M, K] @ b -> [..., M, N]. b is [K, N] (or [N, K] with trans_b), shared by every
 * leading index of a; or b has a's leading dims too ([..., K, N] / [..., N, K]): batched. */
cf_tensor *cf_matmul(cf_ctx *ctx, cf_tensor *a, cf_tensor *b, bool trans_b);
/* x [..., IN] @ w[OUT, IN]^T + bias[OUT] -> [..., OUT]; bias may be NULL. Bias is fused into the
 * GEMM (beta = 1 over a broadcast copy), its gradient is a column sum. */
cf_tensor *cf_linear(cf_ctx *ctx, cf_tensor *x, cf_tensor *w, cf_tensor *bias);

/* ---- elementwise, with broadcasting ----
 * The output has a's shape. b's shape is right-aligned against a's; each of b's dims equals a's or
 * is 1 (numpy rules, one-sided): bias [C] over [B, T, C], mask [B, 1, 1, S] over [B, H, T, S]. */
cf_tensor *cf_add(cf_ctx *ctx, cf_tensor *a, cf_tensor *b);
cf_tensor *cf_sub(cf_ctx *ctx, cf_tensor *a, cf_tensor *b);
cf_tensor *cf_mul(cf_ctx *ctx, cf_tensor *a, cf_tensor *b);
cf_tensor *cf_scale(cf_ctx *ctx, cf_tensor *x, double s);
/* x broadcast to shape (x's shape right-aligned against it, each dim equal or 1, as b above);
 * materialised. Backward sums over the broadcast dims in a fixed order. */
cf_tensor *cf_expand(cf_ctx *ctx, cf_tensor *x, int ndim, const int64_t *shape);

/* ---- activations ---- */
typedef enum cf_gelu_kind { CF_GELU_ERF, CF_GELU_TANH } cf_gelu_kind;
cf_tensor *cf_relu(cf_ctx *ctx, cf_tensor *x);
cf_tensor *cf_gelu(cf_ctx *ctx, cf_tensor *x, cf_gelu_kind kind);
cf_tensor *cf_silu(cf_ctx *ctx, cf_tensor *x);

/* ---- over the last dim ---- */
cf_tensor *cf_softmax(cf_ctx *ctx, cf_tensor *x);
cf_tensor *cf_log_softmax(cf_ctx *ctx, cf_tensor *x);
/* (x - mean) / sqrt(var + eps) * w + b, biased variance; w and b [C] may be NULL (no affine). */
cf_tensor *cf_layernorm(cf_ctx *ctx, cf_tensor *x, cf_tensor *w, cf_tensor *b, double eps);
/* x / sqrt(mean(x^2) + eps) * w; w [C] may be NULL. */
cf_tensor *cf_rmsnorm(cf_ctx *ctx, cf_tensor *x, cf_tensor *w, double eps);

/* ---- lookup ----
 * weight [V, C]; ids has `ndim` dims of sizes `shape` -> [shape..., C]. Backward scatter-adds
 * into weight's gradient (deterministically: each row of the gradient is owned by one thread). */
cf_tensor *cf_embedding(cf_ctx *ctx, cf_tensor *weight, const int32_t *ids, int ndim, const int64_t *shape);
/* A model's input in one pass: out [B, T, C] = dropout(weight[ids] * scale + pos[pos_offset + t])
 * for ids [B*T], pos [P, C] (learned or fixed; NULL: none), dropout p in training mode. The same
 * values, mask and gradients as cf_embedding, cf_scale, cf_add and cf_dropout one after the other. */
cf_tensor *cf_embed_input(cf_ctx *ctx, cf_tensor *weight, const int32_t *ids, int64_t batch, int64_t len, double scale,
                          cf_tensor *pos, int64_t pos_offset, double p);

/* ---- regularisation ----
 * Zeroes each element with probability p and scales the rest by 1/(1-p); the keep mask is a pure
 * function of (ctx->seed, ctx->step, call index within the step, element index). Identity when
 * !ctx->training or p == 0.
 * The drop rule, shared with cf_attention's dropout (both through cf_dropout_keep_bits in
 * core/rng.h): element i of call c is dropped iff u < p, u = cf_rng_uniform_at(seed, step, c, i),
 * compared in double. u is a multiple of 2^-24, so the drop probability is ceil(p 2^24) / 2^24
 * (p itself is never rounded to float). */
cf_tensor *cf_dropout(cf_ctx *ctx, cf_tensor *x, double p);
/* dropout(relu(x)) in one pass (the FFN's activation): the same values and mask as the two ops. */
cf_tensor *cf_relu_dropout(cf_ctx *ctx, cf_tensor *x, double p);
/* res + dropout(x), same shapes, in one pass (a residual branch): the same values and mask as
 * cf_add(res, cf_dropout(x)); res's gradient is dout itself (no copy, see cf_grad_pass). */
cf_tensor *cf_dropout_add(cf_ctx *ctx, cf_tensor *res, cf_tensor *x, double p);

/* ---- shape ---- */
/* Same data, new shape (numel must match). */
cf_tensor *cf_reshape(cf_ctx *ctx, cf_tensor *x, int ndim, const int64_t *shape);
/* out.shape[d] = x.shape[perm[d]]; materialised. */
cf_tensor *cf_permute(cf_ctx *ctx, cf_tensor *x, const int *perm);
cf_tensor *cf_transpose(cf_ctx *ctx, cf_tensor *x, int dim0, int dim1);
/* Join n (<= CF_NODE_MAX_INPUTS) tensors along dim; all other dims equal. */
cf_tensor *cf_concat(cf_ctx *ctx, cf_tensor *const *xs, int n, int dim);
/* x[..., start:start+len, ...] along dim. */
cf_tensor *cf_slice(cf_ctx *ctx, cf_tensor *x, int dim, int64_t start, int64_t len);
/* n equal parts along dim into outs[0..n-1]. */
void cf_split(cf_ctx *ctx, cf_tensor *x, int dim, int n, cf_tensor **outs);

/* ---- reductions (to one element, accumulated in double in a fixed order) ---- */
cf_tensor *cf_sum(cf_ctx *ctx, cf_tensor *x);
cf_tensor *cf_mean(cf_ctx *ctx, cf_tensor *x);

/* ---- masking ----
 * out = value where mask != 0, else x; mask broadcasts against x like b in cf_add and is not
 * differentiated. Use a large negative finite value (e.g. -1e9) before softmax. */
cf_tensor *cf_masked_fill(cf_ctx *ctx, cf_tensor *x, const cf_tensor *mask, double value);

/* ---- loss ----
 * Fused log_softmax + cross-entropy with label smoothing (PyTorch semantics: the target
 * distribution is (1 - ls) * onehot(y) + ls / V) and an ignore index. logits [..., V],
 * targets [N] with N = rows of logits. Returns the mean over non-ignored rows ([1]); 0 when all
 * rows are ignored. stats (may be NULL) receives the unsmoothed NLL sum and the token count. */
typedef struct cf_ce_stats {
    double nll_sum;             /* sum over counted rows of -log p(target) */
    int64_t n_tokens;           /* rows not ignored */
} cf_ce_stats;
cf_tensor *cf_cross_entropy(cf_ctx *ctx, cf_tensor *logits, const int32_t *targets,
                            double label_smoothing, int32_t ignore_index, cf_ce_stats *stats);
/* cross_entropy(x W^T) for x [..., d], W [V, d], in chunks of rows, without the [N, V] logits
 * (the model's output projection: bench-small's step keeps 49 MB less). Its gradients are computed
 * chunk by chunk during the forward; dW sums the chunks in order (fixed by V alone). */
cf_tensor *cf_linear_cross_entropy(cf_ctx *ctx, cf_tensor *x, cf_tensor *w, const int32_t *targets,
                                   double label_smoothing, int32_t ignore_index, cf_ce_stats *stats);

/* ---- rotary position embedding ----
 * x [..., T, D] (D even), position of row t = pos_offset + t. Rotates pairs (i, i + D/2) (the
 * "rotate half" layout) by angle pos * base^(-2i/D):
 *   out[i] = x[i] cos - x[i + D/2] sin,   out[i + D/2] = x[i + D/2] cos + x[i] sin. */
cf_tensor *cf_rope(cf_ctx *ctx, cf_tensor *x, int64_t pos_offset, double base);

/* ---- attention ----
 * Fused scaled-dot-product attention with grouped KV heads (one kernel: scores, mask, softmax,
 * dropout, weighted sum; and one backward).
 *   q [B, H, T, Dk], k [B, Hkv, S, Dk], v [B, Hkv, S, Dv], H % Hkv == 0 -> out [B, H, T, Dv].
 *   Query head h reads KV head h / (H / Hkv): MHA is Hkv == H, MQA Hkv == 1, GQA in between; K/V
 *   are never copied per query head. Dv may differ from Dk (MLA).
 * Masks (all optional; a masked score is excluded exactly, as if -inf):
 *   causal:   query i sees key j iff j <= i + (S - T)   (S - T > 0 when keys include a KV cache)
 *   key_lens: keys j >= key_lens[b] are padding
 *   window:   if > 0, query i also cannot see j < i + (S - T) - window + 1 (sliding window)
 * A query row that sees no key outputs zeros. Dropout (training only) drops attention weights
 * with the counter-based RNG like cf_dropout.
 * Relative positions (Shaw et al. 2018, keys only), when rel is set: a table of learned vectors
 * a[r], r = 0 .. 2R (R = rel_clip), of shape [2R+1, Dk] shared by all heads or [Hr, 2R+1, Dk]
 * (H % Hr == 0; query head h reads table h / (H / Hr)). Query row i sits at position
 * p = i + (S - T) and key j at j, so
 *   score[i, j] = (q_i . k_j + q_i . a[clip(j - p, -R, R) + R]) * scale
 * and rel receives its gradient like q, k and v. */
typedef struct cf_attn_opts {
    double scale;               /* usually 1 / sqrt(Dk) */
    bool causal;
    const int32_t *key_lens;    /* [B] or NULL */
    int64_t window;             /* 0: unlimited */
    double dropout;             /* probability on the attention weights */
    cf_tensor *rel;             /* relative-position key table, or NULL */
    int64_t rel_clip;           /* R: distances beyond +-R share the end entries */
} cf_attn_opts;
cf_tensor *cf_attention(cf_ctx *ctx, cf_tensor *q, cf_tensor *k, cf_tensor *v, const cf_attn_opts *opts);

/* The same attention on operands read through strides, out written [B, T, H*Dv] (heads_first
 * false: what an output projection reads) or [B, H, T, Dv] (true). Element d of head h, row s of
 * batch b of a view is t->data[offset + b*batch + h*head + s*row + d]; its gradient lands at the
 * same index of t's gradient. q, k and v may be views of one tensor (a fused [B, T, (H + 2 Hkv) D]
 * projection), k and v of a KV cache [B, Hkv, cap, D] (no gradient there). */
typedef struct cf_attn_view {
    cf_tensor *t;
    int64_t offset, batch, head, row; /* element strides */
} cf_attn_view;
typedef struct cf_attn_shape {
    int64_t B, H, Hkv, T, S, Dk, Dv;
} cf_attn_shape;
cf_attn_view cf_attn_view_heads(cf_tensor *t);                         /* t [B, heads, rows, D] */
cf_attn_view cf_attn_view_cols(cf_tensor *t, int64_t col, int64_t d); /* t [B, rows, W]; head h at col + h*d */
cf_tensor *cf_attention_views(cf_ctx *ctx, const cf_attn_shape *sh, cf_attn_view q, cf_attn_view k, cf_attn_view v,
                              const cf_attn_opts *opts, bool heads_first);

/* ---- mixture of experts (nn/moe.h builds the layer from these) ----
 * cf_moe_route: logits [N, E] of a router; each token t keeps the k experts with the largest logits
 * (ties: the lower index), slot 0 the largest, and gets gates [N, k] = softmax over the kept
 * logits (differentiable; the other logits get no gradient from them). r (filled, arena memory)
 * orders the N*k dispatched rows by expert, tokens increasing within an expert: expert e owns rows
 * [offset[e], offset[e+1]); slot_row[t*k + s] is the row of (t, s), row_token[row] its token. */
typedef struct cf_moe_routing {
    int64_t n_tokens, n_experts, k;
    int32_t *expert;            /* [N, k] chosen experts */
    int32_t *slot_row;          /* [N, k] dispatched row of each (token, slot) */
    int32_t *row_token;         /* [N*k] token of each dispatched row */
    int64_t *offset;            /* [E + 1] */
    cf_real *probs;             /* [N, E] softmax of the logits over all experts */
} cf_moe_routing;
cf_tensor *cf_moe_route(cf_ctx *ctx, cf_tensor *logits, int64_t k, cf_moe_routing *r);
/* Switch Transformer's load-balancing loss [1]: E * sum_e f_e P_e, f_e = (rows of expert e) / (N k),
 * P_e = mean over tokens of probs[t, e]; 1 when both are uniform. Differentiates through P only. */
cf_tensor *cf_moe_aux_loss(cf_ctx *ctx, cf_tensor *logits, const cf_moe_routing *r);
/* x [N, d] -> [N*k, d]: row i is x[row_token[i]]. */
cf_tensor *cf_moe_dispatch(cf_ctx *ctx, cf_tensor *x, const cf_moe_routing *r);
/* ys [N*k, d], gates [N, k] -> [N, d]: out[t] = sum over slots s (in order) of gates[t, s] ys[slot_row[t, s]]. */
cf_tensor *cf_moe_combine(cf_ctx *ctx, cf_tensor *ys, cf_tensor *gates, const cf_moe_routing *r);
/* x [M, IN] whose rows [offset[g], offset[g+1]) belong to group g -> [M, OUT], row i of group g =
 * x_i w[g]^T + bias[g]; w [G, OUT, IN], bias [G, OUT] or NULL, offset [G + 1] (copied). One tiled
 * GEMM per group (empty groups are skipped). */
cf_tensor *cf_grouped_linear(cf_ctx *ctx, cf_tensor *x, cf_tensor *w, cf_tensor *bias, const int64_t *offset);

#endif
