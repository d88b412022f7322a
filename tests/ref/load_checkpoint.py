"""Load a cformer model.safetensors into the PyTorch model of tests/ref/model.py and run a forward.

    /usr/bin/python3 tests/ref/load_checkpoint.py RUN/checkpoints/latest/model.safetensors [--expect-loss X]

The file is parsed by hand (8-byte little-endian header length, JSON header, raw little-endian
data; numpy.frombuffer for the tensors), the model is built from __metadata__["config"] (the model
config JSON with nn/config.h's field names, or a run config with those fields under "model"), the
weights go in with load_state_dict(strict=True) - so every name and shape must match exactly - and
the fixed batch of model.py is scored (label smoothing 0.1, pad id 0, eval mode). With
--expect-loss the loss must match the value cformer printed for the same batch (rtol 1e-5), which is
how tests/ref/write_checkpoint.c checks the round trip. Not run by CI (no torch there).

Without a path (as `make fixtures` runs it) it loads each golden fixture tests/fixtures/model_*.safetensors
instead: the parameters only (gradients and batch dropped), checked against the fixture's loss.
"""
import argparse
import glob
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import DEFAULTS, LABEL_SMOOTHING, PAD_ID, SRC, SRC_LENS, TGT_IN, TGT_OUT, ModelConfig, Transformer  # noqa: E402

NUMPY_DTYPES = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "u1"}


def read_safetensors(path):
    """(tensors as numpy arrays by name, metadata dict)"""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    metadata = header.pop("__metadata__", {})
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(data, dtype=NUMPY_DTYPES[info["dtype"]], count=(end - begin) // np.dtype(
            NUMPY_DTYPES[info["dtype"]]).itemsize, offset=base + begin)
        tensors[name] = array.reshape(info["shape"])
    return tensors, metadata


def model_config(metadata, tensors):
    if "config" not in metadata:
        raise SystemExit("no 'config' in __metadata__")
    cfg = json.loads(metadata["config"])
    if isinstance(cfg.get("model"), dict):  # a whole run config
        cfg = cfg["model"]
    ignored = sorted(set(cfg) - set(DEFAULTS))
    if ignored:
        print(f"note: ignoring config keys that are not model fields: {ignored}")
    cfg = {k: v for k, v in cfg.items() if k in DEFAULTS}
    # Vocabulary sizes come from the tokenizer; read them off the embeddings if the config lacks them.
    if not cfg.get("src_vocab"):
        cfg["src_vocab"] = tensors["encoder.embed_tokens.weight"].shape[0]
    if not cfg.get("tgt_vocab"):
        table = tensors.get("decoder.embed_tokens.weight", tensors["encoder.embed_tokens.weight"])
        cfg["tgt_vocab"] = table.shape[0]
    return ModelConfig(**cfg)


def check(path, expect_loss=None, fixture=False):
    tensors, metadata = read_safetensors(path)
    if fixture:  # a golden fixture: keep the parameters, take the expected loss from the file
        expect_loss = float(tensors["loss"][0])
        tensors = {k: v for k, v in tensors.items()
                   if not k.startswith("grad.") and k not in ("src", "src_lens", "tgt_in", "tgt_out", "loss")}
    cfg = model_config(metadata, tensors)
    model = Transformer(cfg)
    state = {name: torch.from_numpy(array.copy()) for name, array in tensors.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{path}: loaded {len(state)} tensors ({n_params} parameters): attention {cfg.attention}, "
          f"d_model {cfg.d_model}, {cfg.enc_layers}+{cfg.dec_layers} layers, vocab {cfg.src_vocab}/{cfg.tgt_vocab}")

    # The fixed batch of model.py; ids wrap into small vocabularies (pad 0, <bos> 2 and <eos> 3 stay).
    src = torch.tensor(SRC) % cfg.src_vocab
    tgt_in, tgt_out = torch.tensor(TGT_IN) % cfg.tgt_vocab, torch.tensor(TGT_OUT) % cfg.tgt_vocab
    src_lens = torch.tensor(SRC_LENS)
    with torch.no_grad():
        logits = model.decode(model.encode(src, src_lens), src_lens, tgt_in)
        loss = model.loss(src, src_lens, tgt_in, tgt_out, LABEL_SMOOTHING, PAD_ID).item()
    print(f"  logits {tuple(logits.shape)}, loss {loss:.6f}")
    if expect_loss is not None:
        if abs(loss - expect_loss) > 1e-5 * abs(expect_loss):
            raise SystemExit(f"FAIL: loss {loss:.7f}, expected {expect_loss:.7f}")
        print(f"  ok: matches the expected loss {expect_loss:.7f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="model.safetensors written by cformer")
    parser.add_argument("--expect-loss", type=float, help="fail unless the batch's loss matches (rtol 1e-5)")
    args = parser.parse_args()
    if args.path:
        check(args.path, args.expect_loss)
        return
    fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "model_*.safetensors")
    for path in sorted(glob.glob(os.path.normpath(fixtures))):
        check(path, fixture=True)


if __name__ == "__main__":
    main()
