#!/usr/bin/python3
"""Golden values for optim/: AdamW, Adam, SGD, LR schedules and clip_grad_norm_ from PyTorch.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tests/ref/optim.py
Writes tests/fixtures/optim.safetensors (hand-written safetensors: 8-byte little-endian header
length, JSON header, raw little-endian float32 data). tests/test_optim.c mirrors the case table
below (hyper-parameters are not stored in the file); change both together.

Tensor names:
  init.<p>                 initial parameter values, shared by every optimizer case
  grad.<t>.<p>             gradient of update t (1..T), shared by every optimizer case
  <case>.lr                [T] learning rate used by update t (index t-1)
  <case>.final.<p>         parameters after T updates
  <case>.<p>.exp_avg       AdamW/Adam state after T updates (exp_avg_sq likewise);
  <case>.<p>.momentum_buffer   SGD state after T updates
  sched.<kind>             [N] lr used by update t = 1..N (index t-1), via LambdaLR
  clip.grad.<p>            gradients before clipping; clip.norm = [norm] (the same for both cases)
  clip.<case>.<p>          gradients after clip_grad_norm_(max_norm) for case big / small
"""
import math
import os

import numpy as np
import torch
from safetensors_io import write_safetensors

T = 10
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "optim.safetensors")

tensors = {}


def put(name, value):
    a = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
    if a.ndim == 0:
        a = a.reshape(1)
    assert name not in tensors, name
    tensors[name] = a


torch.manual_seed(1234)
# Names as the nn module registers them: a 2-D weight (decayed), a bias (1-D: never decayed) and an
# embedding (decayed unless embeddings are exempt).
PARAMS = [("enc.fc.weight", (4, 3)), ("enc.fc.bias", (3,)), ("src_embed.weight", (5, 2))]
init = {n: torch.randn(s) for n, s in PARAMS}
grads = []
for t in range(1, T + 1):
    g = {}
    for n, s in PARAMS:
        x = torch.randn(s) * (0.5 + 0.2 * t)
        x.view(-1)[0] = 0.0            # an exact zero gradient: the update then comes from m alone
        x.view(-1)[-1] *= 1e-5         # tiny gradients, where eps matters
        g[n] = x
    grads.append(g)
for n, _ in PARAMS:
    put(f"init.{n}", init[n])
    for t in range(1, T + 1):
        put(f"grad.{t}.{n}", grads[t - 1][n])

# case name -> (optimizer class, kwargs, names in the weight-decay group, lr of update t)
CASES = {
    # Transformer-style AdamW: embeddings exempt from decay.
    "adamw": (torch.optim.AdamW, dict(betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01),
              ["enc.fc.weight"], lambda t: 0.02 * (1 + 0.1 * t)),
    # PyTorch's default betas/eps, a strong decay, embeddings decayed.
    "adamw_default": (torch.optim.AdamW, dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
                      ["enc.fc.weight", "src_embed.weight"], lambda t: 0.05 / t),
    "adam": (torch.optim.Adam, dict(betas=(0.9, 0.98), eps=1e-9, weight_decay=0.0),
             [], lambda t: 0.01 * (1 + 0.05 * t)),
    # Adam's (coupled, L2) weight decay, for completeness.
    "adam_l2": (torch.optim.Adam, dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
                ["enc.fc.weight"], lambda t: 0.01),
    "sgd": (torch.optim.SGD, dict(momentum=0.9, weight_decay=0.0),
            [], lambda t: 0.1 * (1 - 0.05 * t)),
    "sgd_wd": (torch.optim.SGD, dict(momentum=0.9, weight_decay=0.01),
               ["enc.fc.weight", "src_embed.weight"], lambda t: 0.05),
    "sgd_nesterov": (torch.optim.SGD, dict(momentum=0.9, weight_decay=0.01, nesterov=True),
                     ["enc.fc.weight"], lambda t: 0.05 + 0.01 * t),
    # Dampening: the first update still copies d_p into the buffer undamped.
    "sgd_dampening": (torch.optim.SGD, dict(momentum=0.9, dampening=0.1, weight_decay=0.0),
                      [], lambda t: 0.1),
}

for case, (cls, kw, decay_names, lr_of) in CASES.items():
    params = {n: torch.nn.Parameter(init[n].clone()) for n, _ in PARAMS}
    wd = kw.pop("weight_decay")
    groups = [{"params": [params[n] for n, _ in PARAMS if n in decay_names], "weight_decay": wd},
              {"params": [params[n] for n, _ in PARAMS if n not in decay_names], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    opt = cls(groups, lr=lr_of(1), **kw)
    lrs = []
    for t in range(1, T + 1):
        lr = lr_of(t)
        for g in opt.param_groups:
            g["lr"] = lr
        lrs.append(lr)
        for n, _ in PARAMS:
            params[n].grad = grads[t - 1][n].clone()
        opt.step()
    put(f"{case}.lr", lrs)
    for n, _ in PARAMS:
        put(f"{case}.final.{n}", params[n].detach())
        st = opt.state[params[n]]
        for key in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
            if key in st:
                put(f"{case}.{n}.{key}", st[key])

# ---- schedules: the lr used by update t (1-based). With LambdaLR, update t runs after t-1 calls
# to scheduler.step(), so lr_lambda receives t-1: the lambdas below get epoch e and use t = e + 1.
N = 30
BASE, MIN_LR, WARMUP, TOTAL = 1e-3, 1e-5, 5, 25
NOAM_FACTOR, NOAM_D, NOAM_WARMUP = 2.0, 512, 8


def cosine(t):
    if t <= WARMUP:
        return BASE * t / WARMUP
    p = min(1.0, (t - WARMUP) / (TOTAL - WARMUP))
    return MIN_LR + 0.5 * (BASE - MIN_LR) * (1 + math.cos(math.pi * p))


def linear(t):
    if t <= WARMUP:
        return BASE * t / WARMUP
    p = min(1.0, (t - WARMUP) / (TOTAL - WARMUP))
    return MIN_LR + (BASE - MIN_LR) * (1 - p)


def constant(t):
    return BASE * t / WARMUP if t <= WARMUP else BASE


def noam(t):
    return NOAM_FACTOR * NOAM_D ** -0.5 * min(t ** -0.5, t * NOAM_WARMUP ** -1.5)


for kind, f, base in (("cosine", cosine, BASE), ("linear", linear, BASE), ("constant", constant, BASE),
                      ("noam", noam, 1.0)):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e, f=f, base=base: f(e + 1) / base)
    lrs = []
    for t in range(1, N + 1):
        lrs.append(opt.param_groups[0]["lr"])   # the lr this update uses
        p.grad = torch.zeros(1)
        opt.step()
        sched.step()
    put(f"sched.{kind}", lrs)

# ---- clip_grad_norm_: one set of gradients, a max_norm above and one below its norm.
clip_grads = {n: torch.randn(s) * 0.7 for n, s in PARAMS}
for n, _ in PARAMS:
    put(f"clip.grad.{n}", clip_grads[n])
for case, max_norm in (("big", 100.0), ("small", 1.5)):
    params = [torch.nn.Parameter(torch.zeros(s)) for _, s in PARAMS]
    for p, (n, _) in zip(params, PARAMS):
        p.grad = clip_grads[n].clone()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    if case == "big":
        put("clip.norm", float(norm))
    for p, (n, _) in zip(params, PARAMS):
        put(f"clip.{case}.{n}", p.grad)

os.makedirs(os.path.dirname(OUT), exist_ok=True)
write_safetensors(OUT, sorted(tensors.items()), {"generator": "tests/ref/optim.py", "torch": torch.__version__})
print(f"wrote {os.path.normpath(OUT)}: {len(tensors)} tensors")
