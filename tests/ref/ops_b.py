#!/usr/bin/python3
"""tests/ref/ops_b.py - PyTorch golden values for tests/test_ops_b.c.

Run with Debian's python3 (it has torch 1.13):  /usr/bin/python3 tests/ref/ops_b.py
Writes tests/fixtures/ops_b.safetensors. Everything is float32; ids and targets are I32.
For an op with a non-scalar output the backward pass is taken from loss = (out * R).sum() with a
fixed random R stored as `<case>.R`; scalar outputs are differentiated directly.
The safetensors file is written by hand (8-byte little-endian header length, JSON header, raw data).
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors_io import write_safetensors

torch.manual_seed(1234)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "ops_b.safetensors")
tensors = {}  # name -> numpy array (float32 or int32)


def put(name, t):
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if a.dtype not in (np.float32, np.int32):
        a = a.astype(np.int32 if a.dtype.kind in "iub" else np.float32)
    assert name not in tensors, name
    tensors[name] = np.ascontiguousarray(a)


def param(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(*shape) * (hi - lo) + lo).requires_grad_(True)


def backward_weighted(case, out):
    """Store out and R; run backward of (out * R).sum()."""
    r = torch.rand(out.shape) * 2 - 1
    put(case + ".out", out)
    put(case + ".R", r)
    (out * r).sum().backward()


# ---- embedding: repeated ids, an unused row ----
w = param(11, 6)
ids = torch.tensor([[3, 5, 3, 0, 10, 3, 7], [5, 5, 1, 2, 3, 9, 0]], dtype=torch.int64)
put("emb.weight", w)
put("emb.ids", ids.to(torch.int32))
backward_weighted("emb", F.embedding(ids, w))
put("emb.grad_weight", w.grad)

# ---- permute ----
for k, perm in enumerate([(0, 2, 1, 3), (3, 1, 0, 2), (0, 1, 3, 2)]):
    x = param(2, 3, 4, 5)
    put(f"permute{k}.x", x)
    put(f"permute{k}.perm", torch.tensor(perm, dtype=torch.int32))
    backward_weighted(f"permute{k}", x.permute(*perm).contiguous())
    put(f"permute{k}.grad_x", x.grad)

# ---- concat along dims 0 and 2 ----
for dim in (0, 2):
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for k, s in enumerate(shapes):
        s[dim] = 1 + 2 * k
    xs = [param(*s) for s in shapes]
    for k, x in enumerate(xs):
        put(f"concat{dim}.x{k}", x)
    backward_weighted(f"concat{dim}", torch.cat(xs, dim))
    for k, x in enumerate(xs):
        put(f"concat{dim}.grad_x{k}", x.grad)

# ---- slice: x[:, 2:6, :] ----
x = param(3, 7, 5)
put("slice.x", x)
backward_weighted("slice", x[:, 2:6, :])
put("slice.grad_x", x.grad)

# ---- masked_fill: padding mask [B, 1, 1, S] and causal mask [T, S] over [B, H, T, S] ----
for name, mask in [("mfill_pad", torch.rand(2, 1, 1, 5) < 0.4), ("mfill_causal", torch.ones(4, 5).triu(1) > 0)]:
    x = param(2, 3, 4, 5)
    put(name + ".x", x)
    put(name + ".mask", mask.float())
    backward_weighted(name, x.masked_fill(mask, -1e9))
    put(name + ".grad_x", x.grad)

# ---- cross-entropy: ignore_index rows, ls 0 and 0.1 ----
for name, ls in [("ce", 0.0), ("ce_ls", 0.1)]:
    logits = param(3, 5, 17, lo=-4, hi=4)
    targets = torch.randint(0, 17, (15,))
    targets[[1, 6, 7, 14]] = -100
    loss = F.cross_entropy(logits.view(-1, 17), targets, ignore_index=-100, label_smoothing=ls)
    nll_sum = F.cross_entropy(logits.view(-1, 17), targets, ignore_index=-100, reduction="sum")
    loss.backward()
    put(name + ".logits", logits)
    put(name + ".targets", targets.to(torch.int32))
    put(name + ".loss", loss.reshape(1))
    put(name + ".nll_sum", nll_sum.reshape(1))
    put(name + ".grad_logits", logits.grad)

# ---- matmul: shared b, shared b transposed, batched b ----
for name, bshape, trans in [("mm_shared", (7, 4), False), ("mm_trans", (4, 7), True), ("mm_batched", (2, 3, 7, 4), False)]:
    a = param(2, 3, 5, 7)
    b = param(*bshape)
    put(name + ".a", a)
    put(name + ".b", b)
    backward_weighted(name, a @ (b.transpose(-1, -2) if trans else b))
    put(name + ".grad_a", a.grad)
    put(name + ".grad_b", b.grad)

# ---- linear with bias ----
x, w, b = param(2, 5, 8), param(6, 8), param(6)
put("linear.x", x)
put("linear.w", w)
put("linear.b", b)
backward_weighted("linear", F.linear(x, w, b))
put("linear.grad_x", x.grad)
put("linear.grad_w", w.grad)
put("linear.grad_b", b.grad)

# ---- add / sub / mul with broadcasting: [B, T, C] with [C]; [B, H, T, S] with [B, 1, 1, S] ----
for name, ashape, bshape in [("bias", (2, 3, 8), (8,)), ("bmask", (2, 4, 3, 5), (2, 1, 1, 5))]:
    for opname, op in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul)]:
        case = f"{opname}_{name}"
        a, bb = param(*ashape), param(*bshape)
        put(case + ".a", a)
        put(case + ".b", bb)
        backward_weighted(case, op(a, bb))
        put(case + ".grad_a", a.grad)
        put(case + ".grad_b", bb.grad)

# ---- sum, mean ----
for name, fn in [("sum", torch.sum), ("mean", torch.mean)]:
    x = param(3, 4, 5)
    out = fn(x)
    out.backward()
    put(name + ".x", x)
    put(name + ".out", out.reshape(1))
    put(name + ".grad_x", x.grad)


os.makedirs(os.path.dirname(OUT), exist_ok=True)
write_safetensors(OUT, sorted(tensors.items()), {"source": "tests/ref/ops_b.py", "torch": torch.__version__})
print(f"wrote {os.path.normpath(OUT)}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes")
