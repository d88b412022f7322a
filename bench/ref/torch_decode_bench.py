"""PyTorch side of bench/compare_decode.sh: greedy and beam-search decoding with a KV cache, by
cformer's rules (docs/decoding.md), timed on a set of sources.

Run with Debian's python3 (torch 1.13):
    /usr/bin/python3 bench/ref/torch_decode_bench.py MODEL --src-ids FILE [--beam 1,4] [--batch N]
        [--threads 2] [--reps 3] [--out-dir DIR] [--json] [--no-compact]
    /usr/bin/python3 bench/ref/torch_decode_bench.py --config configs/bench_small.json [--n 128] ...

MODEL is a cformer model.safetensors, a checkpoint directory holding one, or a run directory
(its checkpoints/latest); the model is tests/ref/model.py's Transformer built from the config in
the file's metadata (tests/ref/load_checkpoint.py's loader, load_state_dict strict), so it has the
same weights as cformer's. --config instead builds a random model of a config's shapes (Xavier,
vocabulary data.vocab_size) with random sources of bench.src_len ids: for a standalone run; to
compare outputs with cformer, let `cformer bench decode CONFIG --out-dir DIR` write its random
model and sources and pass DIR/model.safetensors and DIR/src.ids here.

Sources (--src-ids: one sentence a line, space-separated ids without <eos>) are cut to
model.max_len - 1 tokens, get <eos>, are sorted by length (stable) and decoded decode.batch_size
at a time, as cformer's cf_translate_tokens does. Decoding options come from the metadata's run
config (decode.length_penalty, max_len_a, max_len_b, batch_size) unless given on the command line.

The decoder, written for this benchmark against docs/model.md and docs/decoding.md:
  - the encoder runs once per batch (model.encode); each decoder layer's cross-attention K/V are
    projected once from the encoder output and kept for the whole batch (beam search: repeated K
    times, one copy per row, as fairseq does);
  - self-attention K/V go into a preallocated cache [rows, Hkv, max positions, D], one position
    appended per step, and attention reads the filled prefix as a view;
  - log-softmax in float64 over the whole vocabulary; <pad> and <bos> are never generated; at L_i
    = min(floor(a * S_i + b + 1e-9), max_len - 1) output tokens only <eos> is allowed;
  - greedy: argmax, ties to the lower id (torch.argmax returns the first maximum);
  - beam K: candidates ranked by cumulative log-prob, ties by lower token then lower beam (a flat
    [V, K] layout plus stable sorts; exact at ties crossing the top-2K boundary); <eos> among the
    first K ranks finishes a hypothesis (while the sentence has fewer than K), the first K other
    candidates stay live; a sentence stops with K finished hypotheses or no live beam; GNMT
    length penalty ((5 + len) / 6)^alpha with len counting the <eos>; best score wins, ties to the
    one finished first;
  - finished sentences leave the batch (their rows are dropped from every cache and state, as
    fairseq does); --no-compact keeps computing them instead.
Under torch.inference_mode, torch.set_num_threads(--threads), one interop thread. Prints the
median of --reps timed passes over the whole set after one untimed pass (model loading excluded),
and the median CPU time of the process per pass (time.process_time: all threads).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "ref"))
from load_checkpoint import model_config, read_safetensors  # noqa: E402
from model import DEFAULTS, ModelConfig, Transformer, rope  # noqa: E402

PAD, BOS, EOS, SPECIALS = 0, 2, 3, 4
NEG_INF = float("-inf")
DECODE_DEFAULTS = {"length_penalty": 0.6, "max_len_a": 1.2, "max_len_b": 10, "batch_size": 64}


# ---------------------------------------------------------------------------------------------
# Model and sources

def find_weights(path):
    if os.path.isfile(path):
        return path
    for p in (os.path.join(path, "model.safetensors"), os.path.join(path, "checkpoints", "latest", "model.safetensors")):
        if os.path.isfile(p):
            return p
    sys.exit(f"{path}: no model.safetensors (give a file, a checkpoint directory or a run directory)")


def load_model(path):
    """(model, run config dict or {}) from a cformer weights file."""
    tensors, metadata = read_safetensors(find_weights(path))
    cfg = model_config(metadata, tensors)
    model = Transformer(cfg)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)
    run_cfg = json.loads(metadata.get("config", "{}"))
    return model, run_cfg if isinstance(run_cfg.get("model"), dict) else {}


def random_model(config_path, seed_override=None):
    with open(config_path) as f:
        cfg = json.load(f)
    vocab = cfg.get("data", {}).get("vocab_size", 8000)
    keys = {k: v for k, v in cfg.get("model", {}).items() if k in DEFAULTS}
    torch.manual_seed(cfg.get("seed", 1) if seed_override is None else seed_override)
    model = Transformer(ModelConfig(**dict(keys, src_vocab=vocab, tgt_vocab=vocab)))
    with torch.no_grad():  # cformer's init: Xavier-uniform matrices and tables, zero biases
        for name, p in model.named_parameters():
            if p.dim() == 2:
                torch.nn.init.xavier_uniform_(p)
            elif name.endswith("bias"):
                p.zero_()
    return model, cfg


def read_ids(path):
    with open(path) as f:
        return [[int(x) for x in line.split()] for line in f]


# ---------------------------------------------------------------------------------------------
# Incremental decoder

class IncrementalDecoder:
    """One decoder step at a time over `rows` rows, with self-attention K/V caches and the
    cross-attention K/V of the encoder output computed once."""

    def __init__(self, model):
        cfg = model.cfg
        if cfg.attention == "mla":
            raise SystemExit("torch_decode_bench: MLA is not mirrored here (MHA, GQA, MQA are)")
        self.cfg, self.model = cfg, model
        self.table = model.tgt_table()
        self.out_w = self.table if cfg.tie_output else model.output_proj.weight
        self.emb_scale = math.sqrt(cfg.d_model) if cfg.scale_embedding else 1.0
        dec = model.decoder
        if cfg.pos_encoding == "sinusoidal":
            self.pos_table = dec.sinusoid.to(torch.float32)
        elif cfg.pos_encoding == "learned":
            self.pos_table = dec.embed_positions.weight
        else:
            self.pos_table = None
        self.layers = list(dec.layers)
        self.final_norm = dec.norm if cfg.pre_norm else None
        a = self.layers[0].self_attn
        self.H, self.Hkv, self.D = a.n_heads, a.n_kv_heads, a.head_dim
        self.g = self.H // self.Hkv
        self.scale = 1.0 / math.sqrt(self.D)

    def start(self, memory, src_lens, per_sentence, cap):
        """memory [B, S, d], src_lens [B]; per_sentence rows per sentence (the beam); cap positions."""
        B, S, _ = memory.shape
        n = B * per_sentence
        self.cross = []
        for layer in self.layers:
            ca = layer.cross_attn
            k = ca.k_proj(memory).view(B, S, self.Hkv, self.D).transpose(1, 2)  # [B, Hkv, S, D]
            v = ca.v_proj(memory).view(B, S, self.Hkv, self.D).transpose(1, 2)
            if per_sentence > 1:
                k, v = k.repeat_interleave(per_sentence, 0), v.repeat_interleave(per_sentence, 0)
            self.cross.append((k.contiguous(), v.contiguous()))
        lens = src_lens.repeat_interleave(per_sentence) if per_sentence > 1 else src_lens
        pad = (torch.arange(S).view(1, S) >= lens.view(n, 1)).view(n, 1, 1, S)
        self.cross_mask = torch.zeros(n, 1, 1, S).masked_fill_(pad, NEG_INF)  # additive key-padding mask
        self.self_k = [torch.empty(n, self.Hkv, cap, self.D) for _ in self.layers]
        self.self_v = [torch.empty(n, self.Hkv, cap, self.D) for _ in self.layers]
        self.pos = 0

    def reorder(self, rows):
        """Row i becomes old row rows[i] (beam parents and/or dropping finished rows)."""
        for i in range(len(self.layers)):
            k = self.self_k[i].index_select(0, rows)
            v = self.self_v[i].index_select(0, rows)
            self.self_k[i], self.self_v[i] = k, v
            ck, cv = self.cross[i]
            self.cross[i] = (ck.index_select(0, rows), cv.index_select(0, rows))
        self.cross_mask = self.cross_mask.index_select(0, rows)

    def reorder_self(self, rows):
        """Beam reorder within sentences only: the cross K/V rows of a sentence are all equal."""
        for i in range(len(self.layers)):
            self.self_k[i] = self.self_k[i].index_select(0, rows)
            self.self_v[i] = self.self_v[i].index_select(0, rows)

    def _self_attn(self, i, a, h):
        n, t = h.shape[0], self.pos
        q = a.q_proj(h).view(n, self.Hkv, self.g, self.D)
        k = a.k_proj(h).view(n, self.Hkv, 1, self.D)
        v = a.v_proj(h).view(n, self.Hkv, 1, self.D)
        if a.use_rope:
            q, k = rope(q.view(n, self.H, 1, self.D), t, a.rope_base).view(n, self.Hkv, self.g, self.D), rope(k, t, a.rope_base)
        self.self_k[i][:, :, t:t + 1] = k
        self.self_v[i][:, :, t:t + 1] = v
        lo = max(0, t - a.window + 1) if a.window > 0 else 0
        keys, vals = self.self_k[i][:, :, lo:t + 1], self.self_v[i][:, :, lo:t + 1]
        p = torch.softmax(torch.matmul(q, keys.transpose(-1, -2)) * self.scale, dim=-1)  # [n, Hkv, g, t]
        return a.out_proj(torch.matmul(p, vals).reshape(n, self.H * self.D))

    def _cross_attn(self, i, a, h):
        n = h.shape[0]
        k, v = self.cross[i]
        q = a.q_proj(h).view(n, self.Hkv, self.g, self.D)
        s = torch.matmul(q, k.transpose(-1, -2)) * self.scale + self.cross_mask  # [n, Hkv, g, S]
        return a.out_proj(torch.matmul(torch.softmax(s, dim=-1), v).reshape(n, self.H * self.D))

    def step(self, ids):
        """ids [n] at position self.pos -> logits [n, V]."""
        cfg = self.cfg
        x = F.embedding(ids, self.table)
        if self.emb_scale != 1.0:
            x = x * self.emb_scale
        if self.pos_table is not None:
            x = x + self.pos_table[self.pos]
        for i, layer in enumerate(self.layers):
            if cfg.pre_norm:
                x = x + self._self_attn(i, layer.self_attn, layer.self_attn_norm(x))
                x = x + self._cross_attn(i, layer.cross_attn, layer.cross_attn_norm(x))
                x = x + layer.ffn(layer.ffn_norm(x))
            else:
                x = layer.self_attn_norm(x + self._self_attn(i, layer.self_attn, x))
                x = layer.cross_attn_norm(x + self._cross_attn(i, layer.cross_attn, x))
                x = layer.ffn_norm(x + layer.ffn(x))
        if self.final_norm is not None:
            x = self.final_norm(x)
        self.pos += 1
        return torch.matmul(x, self.out_w.t())


def max_outputs(src_lens, opts, max_len):
    out = []
    for s in src_lens:
        f = math.floor(opts["max_len_a"] * s + opts["max_len_b"] + 1e-9)
        out.append(0 if not f > 0 else min(int(f), max_len - 1))
    return out


def log_probs(logits, only_eos):
    """float64 log-softmax over the vocabulary, <pad>/<bos> -inf, rows at their limit: <eos> only."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    logp = torch.nan_to_num(logp, nan=NEG_INF)
    logp[..., PAD] = NEG_INF
    logp[..., BOS] = NEG_INF
    if only_eos is not None and bool(only_eos.any()):
        eos = logp[only_eos, ..., EOS].clone()
        logp[only_eos] = NEG_INF
        logp[only_eos, ..., EOS] = eos
    return logp


def greedy(dec, memory, src_lens, max_out, compact):
    B = memory.shape[0]
    L = max(max_out)
    dec.start(memory, src_lens, 1, L + 1)
    limit = torch.tensor(max_out)
    active = torch.arange(B)                            # sentence of each row
    ids = torch.full((B,), BOS, dtype=torch.long)
    hist = torch.zeros(B, max(L, 1), dtype=torch.long)  # [rows, L] outputs so far
    outs = [None] * B
    done = torch.zeros(B, dtype=torch.bool)
    for t in range(L + 1):
        logp = log_probs(dec.step(ids), limit[active] <= t)
        val, best = logp.max(dim=-1)  # the first maximum: ties to the lower id
        best = torch.where(val == NEG_INF, torch.full_like(best, EOS), best)
        fin = best == EOS
        if not compact:
            fin &= ~done
        if t < L:
            hist[:, t] = best
        for r in fin.nonzero().view(-1).tolist():
            outs[int(active[r])] = hist[r, :t].tolist()
        if compact:
            keep = ~fin
            if not bool(keep.any()):
                break
            if not bool(keep.all()):
                rows = keep.nonzero().view(-1)
                dec.reorder(rows)
                active, hist, best = active[rows], hist[rows], best[rows]
        else:
            done |= fin
            if bool(done.all()):
                break
            best = torch.where(done, torch.full_like(best, EOS), best)
        ids = best
    return outs


def beam_search(dec, memory, src_lens, max_out, K, alpha, compact):
    B = memory.shape[0]
    L = max(max_out)
    dec.start(memory, src_lens, K, L + 1)
    limit = torch.tensor(max_out)
    act = torch.arange(B)                                     # sentence of each active group of K rows
    beam_lp = torch.full((B, K), NEG_INF, dtype=torch.float64)
    beam_lp[:, 0] = 0.0                                       # only beam 0 at the first step
    hist = torch.zeros(B, K, max(L, 1), dtype=torch.long)
    ids = torch.full((B * K,), BOS, dtype=torch.long)
    finished = [[] for _ in range(B)]                         # (score, logprob, tokens) in finishing order
    done = torch.zeros(B, dtype=torch.bool)
    kk = torch.arange(K)
    for t in range(L + 1):
        n = act.shape[0]
        logp = log_probs(dec.step(ids).view(n, K, -1), limit[act] <= t)
        V = logp.shape[-1]
        # flat [V, K] layout: a lower flat index is a lower token, then a lower beam
        flat = (beam_lp.unsqueeze(-1) + logp).transpose(1, 2).reshape(n, V * K)
        top_v, top_i = flat.topk(2 * K, dim=1)
        thr = top_v[:, -1]
        ties = (thr > NEG_INF) & ((flat >= thr.unsqueeze(1)).sum(1) > 2 * K)
        order = top_i.argsort(dim=1)  # stable by value below: equal values stay in index order
        top_v, top_i = top_v.gather(1, order), top_i.gather(1, order)
        top_v, o2 = torch.sort(top_v, dim=1, descending=True, stable=True)
        top_i = top_i.gather(1, o2)
        for r in ties.nonzero().view(-1).tolist():  # equal values across the top-2K boundary
            idx = (flat[r] >= thr[r]).nonzero().view(-1)
            v, o = torch.sort(flat[r, idx], descending=True, stable=True)
            top_v[r], top_i[r] = v[:2 * K], idx[o[:2 * K]]
        tok, beam = top_i // K, top_i % K
        finite = top_v > NEG_INF
        is_eos = finite & (tok == EOS)
        for r, i in is_eos[:, :K].nonzero().tolist():  # rank order within a sentence
            s = int(act[r])
            if len(finished[s]) < K:
                lp = float(top_v[r, i])
                finished[s].append((lp / (math.pow((5.0 + (t + 1)) / 6.0, alpha) if alpha != 0 else 1.0), lp,
                                    hist[r, int(beam[r, i]), :t].tolist()))
        live = finite & (tok != EOS)
        sel = live & (live.cumsum(1) <= K)
        pos = torch.sort((~sel).to(torch.uint8), dim=1, stable=True).indices[:, :K]
        n_live = sel.sum(1)
        valid = kk.unsqueeze(0) < n_live.unsqueeze(1)
        new_tok = torch.where(valid, tok.gather(1, pos), torch.full_like(pos, EOS))
        new_beam = torch.where(valid, beam.gather(1, pos), kk.expand(n, K))
        beam_lp = torch.where(valid, top_v.gather(1, pos), torch.full((n, K), NEG_INF, dtype=torch.float64))
        hist = hist.gather(1, new_beam.unsqueeze(-1).expand(n, K, hist.shape[2]))
        if t < L:
            hist[:, :, t] = new_tok
        fin_n = torch.tensor([len(finished[int(s)]) for s in act])
        stop = (fin_n >= K) | (n_live == 0) | done[act]
        rows = (torch.arange(n).unsqueeze(1) * K + new_beam).view(-1)
        if compact:
            keep = ~stop
            if not bool(keep.any()):
                break
            if not bool(keep.all()):
                kept = keep.nonzero().view(-1)
                rows = rows.view(n, K)[kept].view(-1)
                dec.reorder(rows)
                act, beam_lp, hist, new_tok = act[kept], beam_lp[kept], hist[kept], new_tok[kept]
            else:
                dec.reorder_self(rows)
        else:
            done[act[stop]] = True
            if bool(done.all()):
                break
            dec.reorder_self(rows)
            new_tok = torch.where(stop.unsqueeze(1), torch.full_like(new_tok, EOS), new_tok)
            beam_lp = torch.where(stop.unsqueeze(1), torch.full_like(beam_lp, NEG_INF), beam_lp)
        ids = new_tok.reshape(-1)
    outs = []
    for s in range(B):
        if not finished[s]:
            outs.append([])
            continue
        best = max(finished[s], key=lambda h: h[0])  # the first of equal scores
        outs.append(best[2])
    return outs


def translate(model, dec, sources, beam, opts, batch, compact):
    """Outputs (lists of ids, input order) of every source, cf_translate_tokens' batching."""
    max_len = model.cfg.max_len
    order = sorted(range(len(sources)), key=lambda i: (len(sources[i]), i))
    outs = [None] * len(sources)
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        cut = [sources[i][:max_len - 1] + [EOS] for i in idx]
        lens = [len(c) for c in cut]
        S = max(lens)
        src = torch.tensor([c + [PAD] * (S - len(c)) for c in cut], dtype=torch.long)
        src_lens = torch.tensor(lens, dtype=torch.long)
        memory = model.encode(src, src_lens)
        m_out = max_outputs(lens, opts, max_len)
        if beam <= 1:
            res = greedy(dec, memory, src_lens, m_out, compact)
        else:
            res = beam_search(dec, memory, src_lens, m_out, beam, opts["length_penalty"], compact)
        for i, r in zip(idx, res):
            outs[i] = r
    return outs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", help="cformer model.safetensors, checkpoint or run directory")
    ap.add_argument("--config", help="random model of this config's shapes instead")
    ap.add_argument("--src-ids", help="source ids, one sentence a line")
    ap.add_argument("--n", type=int, default=0, help="first N sources (0: all); random sources: N (default 128)")
    ap.add_argument("--beam", default="1,4")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--length-penalty", type=float)
    ap.add_argument("--max-len-a", type=float)
    ap.add_argument("--max-len-b", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out-dir", help="write DIR/torch.beamK.ids")
    ap.add_argument("--no-compact", action="store_true", help="keep computing finished rows")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if bool(args.model) == bool(args.config):
        sys.exit("give MODEL or --config")

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.model:
        model, run_cfg = load_model(args.model)
        set_name = args.src_ids
    else:
        model, run_cfg = random_model(args.config)
        set_name = "random"
    model.eval()
    dec_cfg = dict(DECODE_DEFAULTS, **run_cfg.get("decode", {}))
    opts = {k: dec_cfg[k] for k in ("length_penalty", "max_len_a", "max_len_b")}
    for k in opts:
        if getattr(args, k) is not None:
            opts[k] = getattr(args, k)
    batch = args.batch or dec_cfg["batch_size"]
    if args.src_ids:
        sources = read_ids(args.src_ids)
        if args.n > 0:
            sources = sources[:args.n]
    else:
        if args.model:
            sys.exit("give --src-ids with a model")
        gen = torch.Generator().manual_seed(run_cfg.get("seed", 1))
        s_len = min(run_cfg.get("bench", {}).get("src_len", 32), model.cfg.max_len - 1)
        sources = torch.randint(SPECIALS, model.cfg.src_vocab, (args.n or 128, s_len), generator=gen).tolist()
    n_src_tokens = sum(len(s) for s in sources)
    beams = [int(b) for b in args.beam.split(",")]
    dec = IncrementalDecoder(model)
    if not args.json:
        print(f"torch {torch.__version__} decode: {set_name}, {len(sources)} sentences, batch {batch}, "
              f"{torch.get_num_threads()} threads, compact {not args.no_compact}, "
              f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    with torch.inference_mode():
        for beam in beams:
            secs, cpus, outs = [], [], None
            for rep in range(-1, args.reps):
                t0, c0 = time.perf_counter(), time.process_time()
                outs = translate(model, dec, sources, beam, opts, batch, not args.no_compact)
                if rep >= 0:
                    secs.append(time.perf_counter() - t0)
                    cpus.append(time.process_time() - c0)
            tokens = sum(len(o) + 1 for o in outs)
            t = statistics.median(secs)
            res = {"impl": "torch", "torch": torch.__version__, "set": set_name, "beam": beam, "batch": batch,
                   "threads": torch.get_num_threads(), "sentences": len(sources), "src_tokens": n_src_tokens,
                   "tgt_tokens": tokens, "reps": args.reps, "seconds": t, "seconds_min": min(secs),
                   "seconds_max": max(secs), "sent_s": len(sources) / t, "tgt_tok_s": tokens / t,
                   "compact": not args.no_compact, "cpu_seconds": statistics.median(cpus),
                   "sent_per_cpu_s": len(sources) / statistics.median(cpus), **opts}
            if args.out_dir:
                os.makedirs(args.out_dir, exist_ok=True)
                with open(os.path.join(args.out_dir, f"torch.beam{beam}.ids"), "w") as f:
                    for o in outs:
                        f.write(" ".join(str(x) for x in o) + "\n")
            if args.json:
                print(json.dumps(res), flush=True)
            else:
                print(f"{'greedy' if beam == 1 else f'beam {beam}':7s} {t * 1e3:9.1f} ms ({min(secs) * 1e3:.1f}-"
                      f"{max(secs) * 1e3:.1f})  {res['sent_s']:8.1f} sentences/s  {res['tgt_tok_s']:9.0f} target "
                      f"tokens/s  ({tokens / len(sources):.1f} tokens/sentence)", flush=True)


if __name__ == "__main__":
    main()
