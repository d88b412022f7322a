"""Write a safetensors file by hand, for the fixture scripts beside this one (no safetensors package).

    from safetensors_io import write_safetensors
    write_safetensors(path, sorted(tensors.items()), {"source": "tests/ref/ops_a.py"})

The format: an 8-byte little-endian header length, the JSON header (padded with spaces so the data
starts 8-byte aligned), then each tensor's raw little-endian bytes in the order given. Tensors are
numpy arrays or torch tensors; int32 ones are stored as I32, everything else as F32.
"""

import json
import struct

import numpy as np


def as_array(t):
    """A contiguous float32 or int32 numpy array from a numpy array or a torch tensor."""
    if hasattr(t, "detach"):  # a torch tensor; torch is only imported by the scripts that use it
        import torch

        t = t.detach()
        t = (t if t.dtype == torch.int32 else t.to(torch.float32)).contiguous().numpy()
    a = np.asarray(t)
    if a.dtype != np.int32:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def write_safetensors(path, tensors, metadata=None, metadata_first=False):
    """tensors: (name, tensor) pairs in file order. metadata (a dict of strings) becomes the
    header's __metadata__, after the tensors or, with metadata_first, before them."""
    header, blobs, offset = {}, [], 0
    if metadata is not None and metadata_first:
        header["__metadata__"] = metadata
    for name, t in tensors:
        a = as_array(t)
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        dtype = "I32" if a.dtype == np.int32 else "F32"
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None and not metadata_first:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
