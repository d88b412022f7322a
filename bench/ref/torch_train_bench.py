"""PyTorch side of `make bench-torch`: the training step that `cformer bench CONFIG` times, in PyTorch.

Run with Debian's python3 (torch 1.13):
    /usr/bin/python3 bench/ref/torch_train_bench.py configs/bench_tiny.json [--threads 2] [--steps N]
        [--warmup N] [--json]

The model is tests/ref/model.py's Transformer (the same architecture and parameter names as
cformer's, checked against it by tests/test_model_ref.c), built from CONFIG's model section with
the vocabulary data.vocab_size. Batches are bench.batch_size sentence pairs of exactly
bench.src_len / bench.tgt_len random ids (no padding), drawn before each step's clock starts. A
timed step is: forward, F.cross_entropy with label smoothing (equal to cformer's loss, see
tests/ref/model.py), backward, clip_grad_norm_, AdamW.step with cformer's two parameter groups
(no weight decay on 1-d tensors and, with train.exempt_embeddings, on embeddings) and
zero_grad(set_to_none=True). Prints the median over bench.steps steps after bench.warmup
untimed ones, and peak RSS (getrusage ru_maxrss).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "ref"))
from model import DEFAULTS, ModelConfig, Transformer  # noqa: E402

# cformer's defaults (train/config_table.c) for the keys a bench config may leave out.
CF_DEFAULTS = {
    "seed": 1,
    "data": {"vocab_size": 8000},
    "optim": {"kind": "adamw", "beta1": 0.9, "beta2": 0.98, "eps": 1e-9, "weight_decay": 0.01},
    "schedule": {"lr": 5e-4},
    "train": {"label_smoothing": 0.1, "clip": 1.0, "exempt_embeddings": True},
    "bench": {"batch_size": 32, "src_len": 32, "tgt_len": 32, "steps": 20, "warmup": 3},
}
SPECIALS, BOS, PAD = 4, 2, 0


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def section(cfg, name):
    return dict(CF_DEFAULTS.get(name, {}), **cfg.get(name, {}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rss_start = peak_rss_mib()

    with open(args.config) as f:
        cfg = json.load(f)
    name = cfg.get("name", os.path.splitext(os.path.basename(args.config))[0])
    data, optim, sched, train, bench = (section(cfg, s) for s in ("data", "optim", "schedule", "train", "bench"))
    if optim["kind"] != "adamw":
        sys.exit(f"{args.config}: only optim.kind adamw is mirrored here")
    steps = args.steps if args.steps is not None else bench["steps"]
    warmup = args.warmup if args.warmup is not None else bench["warmup"]
    B, S, T, V = bench["batch_size"], bench["src_len"], bench["tgt_len"], data["vocab_size"]

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    seed = cfg.get("seed", CF_DEFAULTS["seed"])
    torch.manual_seed(seed)
    model_keys = {k: v for k, v in cfg.get("model", {}).items() if k in DEFAULTS}
    mc = ModelConfig(**dict(model_keys, src_vocab=V, tgt_vocab=V))
    model = Transformer(mc)
    # cformer's init (docs/model.md section 7): Xavier-uniform matrices and token tables, zero
    # biases. nn.Embedding's N(0, 1) times sqrt(d_model), tied to the output, would start the loss
    # near 100 instead of ln(V).
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() == 2:
                torch.nn.init.xavier_uniform_(p)
            elif pname.endswith("bias"):
                p.zero_()
    model.train()  # dropout on, as in cformer's training step

    decay, no_decay = [], []
    for pname, p in model.named_parameters():
        exempt = p.dim() < 2 or (train["exempt_embeddings"] and "embed" in pname)
        (no_decay if exempt else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": optim["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=sched["lr"], betas=(optim["beta1"], optim["beta2"]), eps=optim["eps"])
    rss_model = peak_rss_mib()

    gen = torch.Generator().manual_seed(seed)
    src_lens = torch.full((B,), S, dtype=torch.long)
    times, phases, first_loss, last_loss = [], [], None, None
    for step in range(warmup + steps):
        src = torch.randint(SPECIALS, V, (B, S), generator=gen)
        tgt_out = torch.randint(SPECIALS, V, (B, T), generator=gen)
        tgt_in = torch.cat([torch.full((B, 1), BOS, dtype=torch.long), tgt_out[:, :-1]], dim=1)
        t0 = time.perf_counter()
        logits = model.decode(model.encode(src, src_lens), src_lens, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD,
                               label_smoothing=train["label_smoothing"])
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if train["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), train["clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        lv = loss.item()
        first_loss = lv if first_loss is None else first_loss
        last_loss = lv
        if step >= warmup:
            times.append(t3 - t0)
            phases.append((t1 - t0, t2 - t1, t3 - t2))

    t_step = statistics.median(times)
    med = [statistics.median(p[i] for p in phases) for i in range(3)]
    n_params = sum(p.numel() for p in model.parameters())
    res = {
        "impl": "torch", "torch": torch.__version__, "config": name, "threads": torch.get_num_threads(),
        "batch": B, "src_len": S, "tgt_len": T, "vocab": V, "params": n_params, "steps": steps, "warmup": warmup,
        "step_ms": t_step * 1e3, "tgt_tok_s": B * T / t_step, "tok_s": B * (S + T) / t_step,
        "peak_rss_mib": peak_rss_mib(), "rss_start_mib": rss_start, "rss_model_mib": rss_model,
        "first_loss": first_loss, "last_loss": last_loss,
        "forward_ms": med[0] * 1e3, "backward_ms": med[1] * 1e3, "optim_ms": med[2] * 1e3,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
    }
    if args.json:
        print(json.dumps(res))
        return
    print(f"torch {torch.__version__} bench {name}: {n_params / 1e6:.2f}M parameters, batch {B} x {S}/{T}, "
          f"{res['threads']} threads, OPENBLAS_CORETYPE={res['openblas_coretype'] or '(unset)'}")
    print(f"loss {first_loss:.4f} (first step) -> {last_loss:.4f} (last step)")
    print(f"median step     {t_step * 1e3:9.2f} ms  (forward+loss {med[0] * 1e3:.2f}, backward {med[1] * 1e3:.2f}, "
          f"clip+adamw+zero {med[2] * 1e3:.2f})")
    print(f"target tokens/s {res['tgt_tok_s']:9.0f}")
    print(f"src+tgt tokens/s{res['tok_s']:9.0f}")
    print(f"peak RSS        {res['peak_rss_mib']:9.1f} MiB  ({rss_start:.1f} MiB after import torch, "
          f"{rss_model:.1f} MiB with model + optimizer)")


if __name__ == "__main__":
    main()
