"""A PyTorch re-implementation of cformer's encoder-decoder Transformer, written from docs/model.md,
and the golden fixtures tests/fixtures/model_<case>.safetensors that tests/test_model_ref.c checks.

Run with Debian's python3 (torch 1.13): /usr/bin/python3 tests/ref/model.py
Imported by tests/ref/load_checkpoint.py (Transformer, ModelConfig).

Each fixture holds, for one tiny config (see CASES):
  every parameter under its cformer name (F32), the batch (src, src_lens, tgt_in, tgt_out as I32),
  `loss` (label-smoothed cross-entropy, smoothing 0.1, pad id 0) and `grad.<name>` for every
  parameter; `__metadata__` holds "config" (the cf_model_config fields as JSON), "label_smoothing"
  and "pad_id". Weights are random (torch.manual_seed, not cformer's init) and rounded to float32;
  the forward and backward run in float64, so the fixture is the float32-rounded exact answer.
The safetensors file is written by hand (no safetensors package needed).
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors_io import write_safetensors

# ---------------------------------------------------------------------------------------------
# Config: the fields of cf_model_config (nn/config.h) with cf_model_config_default()'s values.

DEFAULTS = {
    "src_vocab": 0, "tgt_vocab": 0,
    "d_model": 256, "n_heads": 8, "n_kv_heads": 0, "head_dim": 0,
    "attention": "mha",
    "kv_lora_rank": 0, "q_lora_rank": 0, "qk_nope_dim": 0, "qk_rope_dim": 0, "v_head_dim": 0,
    "enc_layers": 3, "dec_layers": 3, "d_ff": 1024,
    "activation": "relu", "norm": "layernorm", "pre_norm": True, "norm_eps": 1e-5,
    "pos_encoding": "sinusoidal", "rope_base": 10000.0, "rel_clip": 16, "rel_per_head": False, "qk_norm": False,
    "num_experts": 0, "num_experts_per_token": 2, "n_shared_experts": 0, "moe_d_ff": 0, "moe_aux_weight": 0.01,
    "max_len": 256, "window": 0,
    "dropout": 0.1, "attn_dropout": 0.0, "bias": True,
    "share_embeddings": True, "tie_output": True, "scale_embedding": True,
}


class ModelConfig:
    def __init__(self, **fields):
        unknown = set(fields) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        for key, value in DEFAULTS.items():
            setattr(self, key, fields.get(key, value))

    def to_dict(self):
        return {key: getattr(self, key) for key in DEFAULTS}

    def head_dim_(self):
        return self.head_dim if self.head_dim else self.d_model // self.n_heads

    def kv_heads(self):
        return {"mha": self.n_heads, "gqa": self.n_kv_heads, "mqa": 1}[self.attention]

    def mla_dims(self):
        """(kv_lora_rank, qk_nope_dim, qk_rope_dim, v_head_dim) with 0 replaced by the defaults."""
        hd = self.head_dim_()
        return (self.kv_lora_rank or self.d_model // 2, self.qk_nope_dim or hd,
                self.qk_rope_dim or hd // 2, self.v_head_dim or hd)


# ---------------------------------------------------------------------------------------------
# Building blocks (docs/model.md, "Layers").

class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight


def make_norm(cfg, d):
    if cfg.norm == "layernorm":
        return nn.LayerNorm(d, eps=cfg.norm_eps)  # biased variance, weight and bias
    return RMSNorm(d, cfg.norm_eps)


def rope(x, offset, base):
    """Rotate-half RoPE over the last dim D of x [..., T, D]; row t has position offset + t."""
    t_len, d = x.shape[-2], x.shape[-1]
    half = d // 2
    pos = torch.arange(offset, offset + t_len, dtype=torch.float64).view(t_len, 1)
    inv_freq = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / d)
    angle = pos * inv_freq  # [T, D/2]
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def sinusoid_table(max_len, d):
    """PE[pos, 2k] = sin(pos / 10000^(2k/d)), PE[pos, 2k+1] = cos(pos / 10000^(2k/d))."""
    pos = torch.arange(max_len, dtype=torch.float64).view(max_len, 1)
    two_k = (torch.arange(d) - torch.arange(d) % 2).to(torch.float64)
    angle = pos / (10000.0 ** (two_k / d))
    return torch.where(torch.arange(d) % 2 == 0, torch.sin(angle), torch.cos(angle))


def relative_scores(q, rel, rel_clip, off):
    """Shaw et al.'s relative keys: [B, H, T, S], entry q_i . a[clip(j - (i + off), -R, R) + R].
    rel is [2R+1, D] (shared by the heads) or [Hr, 2R+1, D] (head h reads table h // (H / Hr))."""
    n_heads, t_len = q.shape[1], q.shape[2]
    s_len = t_len + off
    if rel.dim() == 2:
        rel = rel.unsqueeze(0)
    rel = rel.repeat_interleave(n_heads // rel.shape[0], dim=0)  # [H, 2R+1, D]
    dist = torch.arange(s_len).view(1, s_len) - (torch.arange(t_len).view(t_len, 1) + off)
    a = rel[:, dist.clamp(-rel_clip, rel_clip) + rel_clip]  # [H, T, S, D]
    return torch.einsum("bhtd,htsd->bhts", q, a)


def attend(q, k, v, scale, causal, key_lens, window, attn_dropout, training, rel=None, rel_clip=0):
    """q [B, H, T, Dk], k [B, Hkv, S, Dk], v [B, Hkv, S, Dv] -> [B, H, T, Dv].

    Query head h reads KV head h // (H / Hkv). Masks are -inf before the softmax; a row that sees
    no key at all outputs zeros. rel: relative-position keys added to the scores before scaling."""
    n_heads, t_len, s_len = q.shape[1], q.shape[2], k.shape[2]
    group = n_heads // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-1, -2)  # [B, H, T, S]
    off = s_len - t_len  # > 0 when keys include cached positions
    if rel is not None:
        scores = scores + relative_scores(q, rel, rel_clip, off)
    scores = scores * scale
    i = torch.arange(t_len).view(t_len, 1)
    j = torch.arange(s_len).view(1, s_len)
    visible = torch.ones(t_len, s_len, dtype=torch.bool).view(1, 1, t_len, s_len)
    if causal:
        visible = visible & (j <= i + off)
    if window > 0:
        visible = visible & (j >= i + off - window + 1)
    if key_lens is not None:
        visible = visible & (j.view(1, 1, 1, s_len) < key_lens.view(-1, 1, 1, 1))
    scores = scores.masked_fill(~visible, float("-inf"))
    p = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
    p = F.dropout(p, attn_dropout, training)
    return p @ v


def split_heads(x, heads):
    """[B, T, heads * D] -> [B, heads, T, D]"""
    b, t, _ = x.shape
    return x.view(b, t, heads, -1).transpose(1, 2)


def merge_heads(x):
    """[B, H, T, D] -> [B, T, H * D]"""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


class RelTable(nn.Module):
    """Relative-position keys: weight [2R+1, D] shared by the heads, or [H, 2R+1, D]."""

    def __init__(self, cfg, n_heads, dim):
        super().__init__()
        n = 2 * cfg.rel_clip + 1
        shape = (n_heads, n, dim) if cfg.rel_per_head else (n, dim)
        self.weight = nn.Parameter(torch.zeros(*shape))


def add_options(module, cfg, self_attn, dim):
    """QK-norm (q_norm, k_norm over each head's D) and, in self-attention, relative positions."""
    module.qk_norm = cfg.qk_norm and cfg.attention != "mla"
    if module.qk_norm:
        module.q_norm = RMSNorm(dim, cfg.norm_eps)
        module.k_norm = RMSNorm(dim, cfg.norm_eps)
    module.rel_clip = cfg.rel_clip
    if self_attn and cfg.pos_encoding == "relative":
        module.rel_pos = RelTable(cfg, cfg.n_heads, dim)
    else:
        module.rel_pos = None


class Attention(nn.Module):
    """MHA / GQA / MQA: q_proj [H*D, d], k_proj and v_proj [Hkv*D, d], out_proj [d, H*D]."""

    def __init__(self, cfg, self_attn):
        super().__init__()
        d, hd = cfg.d_model, cfg.head_dim_()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.kv_heads(), hd
        self.use_rope = self_attn and cfg.pos_encoding == "rope"  # never in cross-attention
        self.rope_base = cfg.rope_base
        self.window = cfg.window if self_attn else 0
        self.attn_dropout = cfg.attn_dropout
        self.q_proj = nn.Linear(d, self.n_heads * hd, bias=cfg.bias)
        self.k_proj = nn.Linear(d, self.n_kv_heads * hd, bias=cfg.bias)
        self.v_proj = nn.Linear(d, self.n_kv_heads * hd, bias=cfg.bias)
        self.out_proj = nn.Linear(self.n_heads * hd, d, bias=cfg.bias)
        add_options(self, cfg, self_attn, hd)

    def forward(self, xq, xkv, causal, key_lens):
        q = split_heads(self.q_proj(xq), self.n_heads)
        k = split_heads(self.k_proj(xkv), self.n_kv_heads)
        v = split_heads(self.v_proj(xkv), self.n_kv_heads)
        if self.qk_norm:  # before RoPE
            q, k = self.q_norm(q), self.k_norm(k)
        if self.use_rope:
            q, k = rope(q, 0, self.rope_base), rope(k, 0, self.rope_base)
        rel = self.rel_pos.weight if self.rel_pos is not None else None
        o = attend(q, k, v, 1.0 / math.sqrt(self.head_dim), causal, key_lens, self.window, self.attn_dropout,
                   self.training, rel, self.rel_clip)
        return self.out_proj(merge_heads(o))


class MLAttention(nn.Module):
    """Multi-head latent attention (DeepSeek-V2 style), docs/model.md "MLA"."""

    def __init__(self, cfg, self_attn):
        super().__init__()
        d, h = cfg.d_model, cfg.n_heads
        self.r, self.dn, self.dr, self.dv = cfg.mla_dims()
        self.n_heads, self.q_lora_rank = h, cfg.q_lora_rank
        self.rope_base = cfg.rope_base
        self.window = cfg.window if self_attn else 0
        self.attn_dropout = cfg.attn_dropout
        qk = self.dn + self.dr
        if self.q_lora_rank > 0:
            self.q_a_proj = nn.Linear(d, self.q_lora_rank, bias=cfg.bias)
            self.q_a_norm = RMSNorm(self.q_lora_rank, 1e-6)
            self.q_b_proj = nn.Linear(self.q_lora_rank, h * qk, bias=cfg.bias)
        else:
            self.q_proj = nn.Linear(d, h * qk, bias=cfg.bias)
        self.kv_a_proj = nn.Linear(d, self.r + self.dr, bias=cfg.bias)
        self.kv_a_norm = RMSNorm(self.r, 1e-6)
        self.kv_b_proj = nn.Linear(self.r, h * (self.dn + self.dv), bias=cfg.bias)
        self.out_proj = nn.Linear(h * self.dv, d, bias=cfg.bias)
        add_options(self, cfg, self_attn, qk)

    def forward(self, xq, xkv, causal, key_lens):
        if self.q_lora_rank > 0:
            q = self.q_b_proj(self.q_a_norm(self.q_a_proj(xq)))
        else:
            q = self.q_proj(xq)
        q = split_heads(q, self.n_heads)  # [B, H, T, dn + dr]
        q = torch.cat([q[..., :self.dn], rope(q[..., self.dn:], 0, self.rope_base)], dim=-1)

        kv_a = self.kv_a_proj(xkv)  # [B, S, r + dr]
        c = self.kv_a_norm(kv_a[..., :self.r])  # the cached latent [B, S, r]
        k_rope = rope(kv_a[..., self.r:].unsqueeze(1), 0, self.rope_base)  # [B, 1, S, dr], cached
        kv = split_heads(self.kv_b_proj(c), self.n_heads)  # [B, H, S, dn + dv]
        k_nope, v = kv[..., :self.dn], kv[..., self.dn:]
        k = torch.cat([k_nope, k_rope.expand(-1, self.n_heads, -1, -1)], dim=-1)
        rel = self.rel_pos.weight if self.rel_pos is not None else None
        o = attend(q, k, v, 1.0 / math.sqrt(self.dn + self.dr), causal, key_lens, self.window, self.attn_dropout,
                   self.training, rel, self.rel_clip)
        return self.out_proj(merge_heads(o))


def make_attention(cfg, self_attn):
    return MLAttention(cfg, self_attn) if cfg.attention == "mla" else Attention(cfg, self_attn)


class FFN(nn.Module):
    """relu/gelu: fc2(drop(act(fc1(x))));  swiglu: down_proj(drop(silu(gate_proj(x)) * up_proj(x)))."""

    def __init__(self, cfg, d_ff=None):
        super().__init__()
        self.kind, self.dropout = cfg.activation, cfg.dropout
        d, f = cfg.d_model, d_ff or cfg.d_ff
        if self.kind == "swiglu":
            self.gate_proj = nn.Linear(d, f, bias=cfg.bias)
            self.up_proj = nn.Linear(d, f, bias=cfg.bias)
            self.down_proj = nn.Linear(f, d, bias=cfg.bias)
        else:
            self.fc1 = nn.Linear(d, f, bias=cfg.bias)
            self.fc2 = nn.Linear(f, d, bias=cfg.bias)

    def forward(self, x):
        if self.kind == "swiglu":
            h = F.silu(self.gate_proj(x)) * self.up_proj(x)
            return self.down_proj(F.dropout(h, self.dropout, self.training))
        h = self.fc1(x)
        h = F.relu(h) if self.kind == "relu" else F.gelu(h)  # exact (erf) GELU
        return self.fc2(F.dropout(h, self.dropout, self.training))


class StackedLinear(nn.Module):
    """One Linear per expert: weight [E, out, in], bias [E, out]; expert e maps x to x W[e]^T + b[e]."""

    def __init__(self, n, d_in, d_out, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n, d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(n, d_out)) if bias else None

    def forward(self, x, e):
        y = x @ self.weight[e].t()
        return y + self.bias[e] if self.bias is not None else y


class Experts(nn.Module):
    """The routed experts, FFNs of the model's activation and width F, stacked."""

    def __init__(self, cfg, n, f):
        super().__init__()
        self.kind, self.dropout = cfg.activation, cfg.dropout
        d = cfg.d_model
        if self.kind == "swiglu":
            self.gate_proj = StackedLinear(n, d, f, cfg.bias)
            self.up_proj = StackedLinear(n, d, f, cfg.bias)
            self.down_proj = StackedLinear(n, f, d, cfg.bias)
        else:
            self.fc1 = StackedLinear(n, d, f, cfg.bias)
            self.fc2 = StackedLinear(n, f, d, cfg.bias)

    def forward(self, x, e):
        if self.kind == "swiglu":
            h = F.silu(self.gate_proj(x, e)) * self.up_proj(x, e)
            return self.down_proj(F.dropout(h, self.dropout, self.training), e)
        h = self.fc1(x, e)
        h = F.relu(h) if self.kind == "relu" else F.gelu(h)
        return self.fc2(F.dropout(h, self.dropout, self.training), e)


class MoE(nn.Module):
    """docs/model.md "Mixture of experts": router.weight [E, d]; the k experts with the largest logits,
    gates = softmax over those k logits; y = sum_s gate_s expert_s(x) + shared_experts(x). forward
    returns (y, aux) with Switch's load-balancing loss aux = E * sum_e f_e P_e over all N rows."""

    def __init__(self, cfg):
        super().__init__()
        d, self.n, self.k = cfg.d_model, cfg.num_experts, cfg.num_experts_per_token
        f = cfg.moe_d_ff or cfg.d_ff
        self.router = nn.Linear(d, self.n, bias=False)
        self.experts = Experts(cfg, self.n, f)
        self.shared_experts = FFN(cfg, cfg.n_shared_experts * f) if cfg.n_shared_experts > 0 else None

    def forward(self, x):
        xs = x.reshape(-1, x.shape[-1])  # [N, d]
        logits = self.router(xs)  # [N, E]
        chosen = torch.topk(logits, self.k, dim=-1).indices  # descending; random logits have no ties
        gates = torch.softmax(logits.gather(1, chosen), dim=-1)  # [N, k]
        y = torch.zeros_like(xs)
        for e in range(self.n):
            rows, slot = (chosen == e).nonzero(as_tuple=True)
            if rows.numel():
                y = y.index_add(0, rows, gates[rows, slot].unsqueeze(1) * self.experts(xs[rows], e))
        if self.shared_experts is not None:
            y = y + self.shared_experts(xs)
        frac = torch.bincount(chosen.reshape(-1), minlength=self.n).to(xs.dtype) / chosen.numel()
        aux = self.n * (frac * torch.softmax(logits, dim=-1).mean(0)).sum()
        return y.view_as(x), aux


def make_ffn(cfg):
    return MoE(cfg) if cfg.num_experts > 0 else FFN(cfg)


class Sublayer:
    """Residual wiring: pre-LN x + drop(f(norm(x)));  post-LN norm(x + drop(f(x)))."""

    @staticmethod
    def apply(cfg, training, norm, f, x):
        if cfg.pre_norm:
            return x + F.dropout(f(norm(x)), cfg.dropout, training)
        return norm(x + F.dropout(f(x), cfg.dropout, training))


class EncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.self_attn_norm = make_norm(cfg, cfg.d_model)
        self.self_attn = make_attention(cfg, self_attn=True)
        self.self_attn.window = 0  # the sliding window is for the causal decoder only
        self.ffn_norm = make_norm(cfg, cfg.d_model)
        self.ffn = make_ffn(cfg)

    def forward(self, x, src_lens, aux):
        x = Sublayer.apply(self.cfg, self.training, self.self_attn_norm,
                           lambda h: self.self_attn(h, h, causal=False, key_lens=src_lens), x)
        return Sublayer.apply(self.cfg, self.training, self.ffn_norm, ffn_call(self.ffn, aux), x)


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.self_attn_norm = make_norm(cfg, cfg.d_model)
        self.self_attn = make_attention(cfg, self_attn=True)
        self.cross_attn_norm = make_norm(cfg, cfg.d_model)
        self.cross_attn = make_attention(cfg, self_attn=False)
        self.ffn_norm = make_norm(cfg, cfg.d_model)
        self.ffn = make_ffn(cfg)

    def forward(self, x, memory, src_lens, aux):
        x = Sublayer.apply(self.cfg, self.training, self.self_attn_norm,
                           lambda h: self.self_attn(h, h, causal=True, key_lens=None), x)
        # memory is the encoder output as is: the cross-attention norm applies to the queries only
        x = Sublayer.apply(self.cfg, self.training, self.cross_attn_norm,
                           lambda h: self.cross_attn(h, memory, causal=False, key_lens=src_lens), x)
        return Sublayer.apply(self.cfg, self.training, self.ffn_norm, ffn_call(self.ffn, aux), x)


def ffn_call(ffn, aux):
    """The FFN as a function of its input; an MoE layer appends its load-balancing loss to aux."""
    if not isinstance(ffn, MoE):
        return ffn

    def call(h):
        y, a = ffn(h)
        aux.append(a)
        return y
    return call


class Stack(nn.Module):
    """The encoder or decoder: [embed_tokens], [embed_positions], layers, [norm]."""

    def __init__(self, cfg, layer_cls, n_layers, vocab, own_embedding):
        super().__init__()
        self.cfg = cfg
        if own_embedding:
            self.embed_tokens = nn.Embedding(vocab, cfg.d_model)
        if cfg.pos_encoding == "learned":
            self.embed_positions = nn.Embedding(cfg.max_len, cfg.d_model)
        elif cfg.pos_encoding == "sinusoidal":
            self.register_buffer("sinusoid", sinusoid_table(cfg.max_len, cfg.d_model), persistent=False)
        self.layers = nn.ModuleList([layer_cls(cfg) for _ in range(n_layers)])
        if cfg.pre_norm:
            self.norm = make_norm(cfg, cfg.d_model)

    def embed(self, table, ids):
        x = F.embedding(ids, table)
        if self.cfg.scale_embedding:
            x = x * math.sqrt(self.cfg.d_model)
        t_len = ids.shape[1]
        if self.cfg.pos_encoding == "learned":
            x = x + self.embed_positions.weight[:t_len]
        elif self.cfg.pos_encoding == "sinusoidal":
            x = x + self.sinusoid[:t_len].to(x.dtype)
        return F.dropout(x, self.cfg.dropout, self.training)

    def finish(self, x):
        return self.norm(x) if self.cfg.pre_norm else x


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.encoder = Stack(cfg, EncoderLayer, cfg.enc_layers, cfg.src_vocab, own_embedding=True)
        self.decoder = Stack(cfg, DecoderLayer, cfg.dec_layers, cfg.tgt_vocab,
                             own_embedding=not cfg.share_embeddings)
        if not cfg.tie_output:
            self.output_proj = nn.Linear(cfg.d_model, cfg.tgt_vocab, bias=False)

    def tgt_table(self):
        return (self.encoder if self.cfg.share_embeddings else self.decoder).embed_tokens.weight

    def encode(self, src, src_lens, aux=None):
        aux = [] if aux is None else aux
        x = self.encoder.embed(self.encoder.embed_tokens.weight, src)
        for layer in self.encoder.layers:
            x = layer(x, src_lens, aux)
        return self.encoder.finish(x)

    def decode(self, memory, src_lens, tgt_in, aux=None):
        aux = [] if aux is None else aux
        x = self.decoder.embed(self.tgt_table(), tgt_in)
        for layer in self.decoder.layers:
            x = layer(x, memory, src_lens, aux)
        x = self.decoder.finish(x)
        w = self.tgt_table() if self.cfg.tie_output else self.output_proj.weight
        return x @ w.t()  # [B, T, V], no bias

    def loss(self, src, src_lens, tgt_in, tgt_out, label_smoothing, pad_id, training_losses=True):
        """The label-smoothed cross-entropy; with training_losses (what cformer's training mode adds)
        plus moe_aux_weight times the mean load-balancing loss of the MoE layers."""
        aux = []
        logits = self.decode(self.encode(src, src_lens, aux), src_lens, tgt_in, aux)
        loss = smoothed_cross_entropy(logits, tgt_out, label_smoothing, pad_id)
        if training_losses and aux and self.cfg.moe_aux_weight > 0:
            loss = loss + self.cfg.moe_aux_weight * torch.stack(aux).mean()
        return loss


def smoothed_cross_entropy(logits, targets, ls, pad_id):
    """Mean over non-pad rows of (1 - ls) * -log p[y] + ls * mean_v(-log p[v])."""
    logp = torch.log_softmax(logits.reshape(-1, logits.shape[-1]), dim=-1)
    y = targets.reshape(-1).long()
    keep = y != pad_id
    nll = -logp.gather(1, y.view(-1, 1)).squeeze(1)
    smooth = -logp.mean(dim=1)
    rows = (1 - ls) * nll + ls * smooth
    n = keep.sum()
    return (rows * keep).sum() / n if n > 0 else rows.sum() * 0


# ---------------------------------------------------------------------------------------------
# Fixtures.

# Tiny base config: d 16, 4 heads of 4, 2+2 layers, d_ff 20, vocab 19, max_len 8, no dropout (sizes
# chosen so that each fixture, parameters and gradients, stays under 100 KB).
BASE = dict(src_vocab=19, tgt_vocab=19, d_model=16, n_heads=4, enc_layers=2, dec_layers=2, d_ff=20,
            max_len=8, dropout=0.0)
# MLA with every dim distinct: latent 6, per head 2 plain + 4 rotary query/key dims, values of 3.
MLA = dict(attention="mla", kv_lora_rank=6, qk_nope_dim=2, qk_rope_dim=4, v_head_dim=3)

# name -> config overrides (mirrored by the list in tests/test_model_ref.c). The cases beyond the
# attention variants mix in GQA/MQA where that keeps the file under 100 KB.
CASES = {
    "mha": {},
    "gqa": dict(attention="gqa", n_kv_heads=2),
    "mqa": dict(attention="mqa", n_kv_heads=1),
    "mla": dict(MLA),
    "mla_qlora": dict(MLA, q_lora_rank=6),
    "post_ln": dict(pre_norm=False),
    "rmsnorm": dict(attention="gqa", n_kv_heads=2, norm="rmsnorm"),
    "rope": dict(pos_encoding="rope", bias=False),
    "learned": dict(pos_encoding="learned", attention="gqa", n_kv_heads=2),
    "swiglu": dict(activation="swiglu", d_ff=12),  # SwiGLU usually gets ~2/3 of d_ff
    "gelu_window": dict(attention="mqa", n_kv_heads=1, activation="gelu", window=2),
    "untied": dict(attention="mqa", n_kv_heads=1, tgt_vocab=17, share_embeddings=False, tie_output=False, scale_embedding=False),
    "unshared_tied": dict(attention="gqa", n_kv_heads=2, tgt_vocab=17, share_embeddings=False, tie_output=True),
    # issue 15: the course's remaining techniques
    "relative": dict(pos_encoding="relative", rel_clip=2),
    "relative_per_head": dict(pos_encoding="relative", rel_clip=3, rel_per_head=True, attention="gqa", n_kv_heads=2),
    "qk_norm": dict(qk_norm=True, pos_encoding="rope", attention="gqa", n_kv_heads=2, bias=False),
    "moe": dict(num_experts=4, num_experts_per_token=2, moe_d_ff=8, moe_aux_weight=0.1, attention="mqa",
                n_kv_heads=1),
    "moe_swiglu_shared": dict(num_experts=3, num_experts_per_token=1, n_shared_experts=1, moe_d_ff=6,
                              activation="swiglu", bias=False, moe_aux_weight=0.2, attention="mqa", n_kv_heads=1),
}

# B 3, source length 7 (lengths 7, 5, 3; pad 0), target length 6 (<bos> = 2, <eos> = 3, pad 0).
# Source ids stay below 19 and target ids below 17, so that every case's vocabularies hold them.
SRC = [[5, 9, 12, 4, 18, 7, 6],
       [11, 4, 4, 16, 8, 0, 0],
       [17, 13, 10, 0, 0, 0, 0]]
SRC_LENS = [7, 5, 3]
TGT_IN = [[2, 14, 6, 9, 15, 5],
          [2, 10, 13, 12, 0, 0],
          [2, 8, 0, 0, 0, 0]]
TGT_OUT = [[14, 6, 9, 15, 5, 3],
           [10, 13, 12, 3, 0, 0],
           [8, 3, 0, 0, 0, 0]]
LABEL_SMOOTHING = 0.1
PAD_ID = 0


def randomize(model, seed):
    """Deterministic random weights (not cformer's init), rounded to float32: matrices and tables
    N(0, 1/fan_in) (embeddings N(0, 0.09); stacked expert matrices [E, out, in] per expert), norm
    gains 1 + N(0, 0.1^2), biases (expert biases [E, out] too) N(0, 0.1^2)."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if p.dim() >= 2 and not name.endswith("bias"):
            std = 0.3 if "embed" in name else 1.0 / math.sqrt(p.shape[-1])
            value = torch.randn(p.shape, generator=gen) * std
        elif "norm" in name and name.endswith("weight"):
            value = 1 + 0.1 * torch.randn(p.shape, generator=gen)
        else:
            value = 0.1 * torch.randn(p.shape, generator=gen)
        with torch.no_grad():
            p.copy_(value.to(torch.float32).to(p.dtype))


def make_fixture(name, overrides, seed, out_dir):
    cfg = ModelConfig(**dict(BASE, **overrides))
    model = Transformer(cfg).double()
    model.eval()  # dropout is 0 anyway; eval makes that explicit
    randomize(model, seed)
    src = torch.tensor(SRC, dtype=torch.int32)
    src_lens = torch.tensor(SRC_LENS, dtype=torch.int32)
    tgt_in = torch.tensor(TGT_IN, dtype=torch.int32)
    tgt_out = torch.tensor(TGT_OUT, dtype=torch.int32)
    loss = model.loss(src.long(), src_lens.long(), tgt_in.long(), tgt_out, LABEL_SMOOTHING, PAD_ID)
    loss.backward()

    # Our loss equals PyTorch's own label-smoothed cross-entropy (a check of the formula).
    with torch.no_grad():
        logits = model.decode(model.encode(src.long(), src_lens.long()), src_lens.long(), tgt_in.long())
        torch_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1).long(),
                                     ignore_index=PAD_ID, label_smoothing=LABEL_SMOOTHING)
        ce = model.loss(src.long(), src_lens.long(), tgt_in.long(), tgt_out, LABEL_SMOOTHING, PAD_ID, False)
    assert abs(torch_loss.item() - ce.item()) < 1e-12, (torch_loss.item(), ce.item())

    tensors = {}
    params = dict(model.named_parameters())
    for pname, p in params.items():
        tensors[pname] = p.detach()
    tensors.update(src=src, src_lens=src_lens, tgt_in=tgt_in, tgt_out=tgt_out, loss=loss.detach().view(1))
    for pname, p in params.items():
        tensors["grad." + pname] = p.grad
    metadata = {"config": json.dumps(cfg.to_dict()), "label_smoothing": repr(LABEL_SMOOTHING),
                "pad_id": str(PAD_ID)}
    path = os.path.join(out_dir, f"model_{name}.safetensors")
    write_safetensors(path, tensors.items(), metadata, metadata_first=True)
    n_params = sum(p.numel() for p in params.values())
    print(f"wrote {path}: loss {loss.item():.6f}, {len(params)} tensors, {n_params} params, "
          f"{os.path.getsize(path)} bytes")


def main():
    out_dir = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
    for i, (name, overrides) in enumerate(CASES.items()):
        make_fixture(name, overrides, 1000 + i, out_dir)


if __name__ == "__main__":
    main()
