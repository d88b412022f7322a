"""Golden fixtures for cf_attention: tests/fixtures/attention.safetensors.

Run with Debian's python3 (torch 1.13): /usr/bin/python3 tests/ref/attention.py
For each case: inputs q, k, v, the upstream gradient R, and out = attention(q, k, v) with
dq, dk, dv of loss = (out * R).sum(), computed in float64 and stored as F32 (key_lens as I32).
Grouped KV heads are expanded with repeat_interleave here (the C kernel never copies them).
The safetensors file is written by hand (no safetensors package needed).
"""
import math
import os

import torch
from safetensors_io import write_safetensors

# name, B, H, Hkv, T, S, Dk, Dv, causal, window, key_lens, (rel_clip, rel_heads) (mirrored by
# tests/test_attention.c). rel_heads 0: no relative positions; 1: one table [2R+1, Dk] shared by
# the heads; else [rel_heads, 2R+1, Dk], query head h reading table h // (H / rel_heads).
CASES = [
    ("mha", 2, 4, 4, 7, 9, 16, 16, False, 0, None, 0, 0),
    ("gqa", 2, 8, 2, 12, 12, 16, 16, False, 0, None, 0, 0),
    ("mqa_causal", 2, 4, 1, 10, 10, 8, 8, True, 0, None, 0, 0),
    ("causal_pad", 3, 2, 2, 20, 20, 16, 16, True, 0, [20, 13, 5], 0, 0),
    ("window_cache", 2, 4, 2, 5, 24, 16, 16, True, 4, None, 0, 0),
    ("dv_ne_dk", 2, 4, 2, 9, 11, 16, 24, False, 0, [11, 6], 0, 0),
    ("decode", 2, 4, 2, 1, 10, 16, 16, True, 0, [10, 7], 0, 0),
    ("rel_shared_pad", 2, 4, 2, 9, 9, 8, 8, False, 0, [9, 4], 3, 1),
    ("rel_per_head_causal", 2, 4, 4, 12, 12, 8, 8, True, 0, None, 2, 4),
    ("rel_grouped_cache", 2, 4, 1, 3, 11, 8, 8, True, 0, [11, 8], 4, 2),
]


def relative_scores(q, rel, rel_clip, off):
    """Shaw et al.'s relative keys: [B, H, T, S] with entry q_i . a[clip(j - (i + off), -R, R) + R]."""
    B, H, T, Dk = q.shape
    S = T + off
    if rel.dim() == 2:
        rel = rel.unsqueeze(0)
    rel = rel.repeat_interleave(H // rel.shape[0], dim=0)  # [H, 2R+1, Dk]
    dist = torch.arange(S).view(1, S) - (torch.arange(T).view(T, 1) + off)
    idx = dist.clamp(-rel_clip, rel_clip) + rel_clip  # [T, S]
    a = rel[:, idx]  # [H, T, S, Dk]
    return torch.einsum("bhtd,htsd->bhts", q, a)


def reference(q, k, v, causal, window, key_lens, rel=None, rel_clip=0):
    B, H, T, Dk = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    k = k.repeat_interleave(H // Hkv, dim=1)
    v = v.repeat_interleave(H // Hkv, dim=1)
    scores = q @ k.transpose(-1, -2)
    if rel is not None:
        scores = scores + relative_scores(q, rel, rel_clip, S - T)
    scores = scores / math.sqrt(Dk)
    i = torch.arange(T).view(T, 1)
    j = torch.arange(S).view(1, S)
    off = S - T
    visible = torch.ones(B, 1, T, S, dtype=torch.bool)
    if causal:
        visible &= (j <= i + off).view(1, 1, T, S)
    if window > 0:
        visible &= (j >= i + off - window + 1).view(1, 1, T, S)
    if key_lens is not None:
        visible &= (j.view(1, S) < torch.tensor(key_lens).view(B, 1)).view(B, 1, 1, S)
    scores = scores.masked_fill(~visible, float("-inf"))
    p = torch.softmax(scores, dim=-1)
    p = torch.nan_to_num(p, nan=0.0)  # rows that see no key output zeros
    return p @ v


def main():
    torch.manual_seed(1234)
    out = {}
    for name, B, H, Hkv, T, S, Dk, Dv, causal, window, key_lens, rel_clip, rel_heads in CASES:
        # rounded to float32 first, so that C (reading F32) sees exactly the same inputs
        q = (torch.rand(B, H, T, Dk) * 4 - 2).double().requires_grad_()
        k = (torch.rand(B, Hkv, S, Dk) * 4 - 2).double().requires_grad_()
        v = (torch.rand(B, Hkv, S, Dv) * 2 - 1).double().requires_grad_()
        r = (torch.rand(B, H, T, Dv) * 2 - 1).double()
        rel = None
        if rel_heads:
            shape = (2 * rel_clip + 1, Dk) if rel_heads == 1 else (rel_heads, 2 * rel_clip + 1, Dk)
            rel = (torch.rand(*shape) * 2 - 1).double().requires_grad_()
        o = reference(q, k, v, causal, window, key_lens, rel, rel_clip)
        (o * r).sum().backward()
        for tag, t in (("q", q), ("k", k), ("v", v), ("R", r), ("out", o)):
            out[f"{name}.{tag}"] = t.detach()
        for tag, t in (("dq", q), ("dk", k), ("dv", v)):
            out[f"{name}.{tag}"] = t.grad
        if rel is not None:
            out[f"{name}.rel"] = rel.detach()
            out[f"{name}.drel"] = rel.grad
        if key_lens is not None:
            out[f"{name}.key_lens"] = torch.tensor(key_lens, dtype=torch.int32)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "attention.safetensors")
    write_safetensors(os.path.normpath(path), out.items())
    print(f"wrote {os.path.normpath(path)} ({os.path.getsize(path)} bytes, {len(out)} tensors)")


if __name__ == "__main__":
    main()
