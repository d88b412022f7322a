"""tests/ref/ops_a.py - PyTorch golden values for relu, gelu (erf/tanh), silu, softmax, log_softmax,
layernorm and rmsnorm (forward and backward, float32).

Run with Debian's python3 (it has torch 1.13):  /usr/bin/python3 tests/ref/ops_a.py
Writes tests/fixtures/ops_a.safetensors, read by tests/test_ops_a.c. For each case NAME it stores
NAME.x (input), NAME.w / NAME.b (parameters, when used), NAME.r (upstream gradient: the loss is
sum(out * r)), NAME.out, NAME.grad_x, NAME.grad_w, NAME.grad_b. The safetensors file is written by
hand (8-byte little-endian header length, JSON header, raw little-endian data).
"""
import os

import numpy as np
import torch
from safetensors_io import write_safetensors

torch.manual_seed(1234)
torch.set_num_threads(1)

tensors = {}  # name -> float32 numpy array


def put(name, t):
    tensors[name] = t.detach().to(torch.float32).contiguous().numpy()


def rmsnorm(x, w, eps):
    # PyTorch 1.13 has no rms_norm: x / sqrt(mean(x^2) + eps) * w
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * w if w is not None else y


def case(name, fn, x, params=()):
    """Runs fn(x, *params), backward from loss = sum(out * r), and records everything."""
    x = x.clone().requires_grad_(True)
    params = [p.clone().requires_grad_(True) if p is not None else None for p in params]
    out = fn(x, *params)
    r = torch.rand(out.shape) * 2 - 1
    (out * r).sum().backward()
    put(name + ".x", x)
    put(name + ".r", r)
    put(name + ".out", out)
    put(name + ".grad_x", x.grad)
    for key, p in zip("wb", params):
        if p is not None:
            put(name + "." + key, p)
            put(name + ".grad_" + key, p.grad)


def uniform(shape, lo, hi):
    return torch.rand(shape) * (hi - lo) + lo


F = torch.nn.functional

# Activations: a wide range (saturation of tanh/erf/sigmoid at both ends) on 2-D to 4-D shapes.
x = uniform((4, 37), -3, 3)
x = torch.where(x.abs() < 1e-3, torch.full_like(x, 0.5), x)  # no exact zeros at relu's kink
case("relu", F.relu, x)
case("gelu_erf", lambda t: F.gelu(t, approximate="none"), uniform((3, 5, 41), -8, 8))
case("gelu_tanh", lambda t: F.gelu(t, approximate="tanh"), uniform((3, 5, 41), -8, 8))
case("silu", F.silu, uniform((2, 3, 4, 9), -12, 12))

# Softmax family: a row with large logits (stability) and a row with -1e9 "masked" entries.
x = uniform((6, 53), -4, 4)
x[1] += 100.0
x[2, 10:30] = -1e9
case("softmax", lambda t: F.softmax(t, dim=-1), x)
case("log_softmax", lambda t: F.log_softmax(t, dim=-1), x)
case("softmax_3d", lambda t: F.softmax(t, dim=-1), uniform((2, 3, 7), -2, 2))

# Norms: offset means (centering), odd widths; with and without affine parameters.
C = 48
case("layernorm", lambda t, w, b: F.layer_norm(t, (C,), w, b, 1e-5),
     uniform((2, 7, C), -1, 1) * 3 + 5, (uniform((C,), 0.5, 1.5), uniform((C,), -1, 1)))
case("layernorm_plain", lambda t: F.layer_norm(t, (33,), None, None, 1e-5), uniform((5, 33), -2, 2))
case("rmsnorm", lambda t, w: rmsnorm(t, w, 1e-6), uniform((3, 4, 40), -2, 2), (uniform((40,), 0.5, 1.5),))
case("rmsnorm_plain", lambda t: rmsnorm(t, None, 1e-6), uniform((7, 19), -2, 2))


here = os.path.dirname(os.path.abspath(__file__))
out_path = os.path.join(here, "..", "fixtures", "ops_a.safetensors")
os.makedirs(os.path.dirname(out_path), exist_ok=True)
write_safetensors(out_path, sorted(tensors.items()), {"source": "tests/ref/ops_a.py", "torch": torch.__version__})
print("wrote %s: %d tensors, %d bytes" % (os.path.normpath(out_path), len(tensors), os.path.getsize(out_path)))
