#!/usr/bin/python3
"""Reads a safetensors file with json + numpy only and prints what it holds.

    /usr/bin/python3 tests/ref/check_safetensors.py runs/x/checkpoints/latest/model.safetensors

Prints one line per tensor, "name DTYPE [d0, d1, ...]", in file order, then one line per
__metadata__ key ("key value", the config shortened). Exits non-zero if the layout is
inconsistent (offsets outside the data, overlapping or gapped tensors, sizes not matching
dtype x shape, non-finite float values). tests/test_checkpoint.c runs it when numpy is
available; it does not need the safetensors package or PyTorch.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8}


def main(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        sys.exit(f"{path}: {len(blob)} bytes, too short")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if hlen > len(blob) - 8:
        sys.exit(f"{path}: header length {hlen} exceeds the file")
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    data = memoryview(blob)[8 + hlen:]
    meta = header.pop("__metadata__", {})
    spans = []
    for name, entry in header.items():
        dtype = np.dtype(DTYPES[entry["dtype"]]).newbyteorder("<")
        shape = [int(d) for d in entry["shape"]]
        begin, end = (int(x) for x in entry["data_offsets"])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not 0 <= begin <= end <= len(data) or end - begin != count * dtype.itemsize:
            sys.exit(f"{path}: tensor {name}: offsets [{begin}, {end}] do not fit {entry['dtype']} {shape}")
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=begin).reshape(shape)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            sys.exit(f"{path}: tensor {name}: non-finite values")
        spans.append((begin, end, name))
        print(f"{name} {entry['dtype']} {shape}")
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            sys.exit(f"{path}: tensor {name} starts at {begin}, expected {pos} (gap or overlap)")
        pos = end
    if pos != len(data):
        sys.exit(f"{path}: {len(data) - pos} bytes after the last tensor")
    for key, value in meta.items():
        text = str(value)
        print(f"{key} {text if len(text) <= 60 else text[:57] + '...'}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_safetensors.py FILE.safetensors")
    main(sys.argv[1])
