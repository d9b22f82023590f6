"""fixture_io.py — the safetensors writer the fixture scripts share.

write_safetensors(path, tensors, metadata): tensors maps a name to an array
(stored as F32) or to a (dtype, array) pair, dtype one of F32, F16, U8;
metadata is the header's __metadata__ (string values). The header is padded
with spaces to a multiple of 8 bytes, as the safetensors format allows.
"""
import json
import os
import struct

import numpy as np

NUMPY_TYPES = {"F32": "<f4", "F16": "<f2", "U8": "u1"}


def write_safetensors(path, tensors, metadata):
    header, blobs, off = {}, [], 0
    for name, value in tensors.items():
        dtype, arr = value if isinstance(value, tuple) else ("F32", value)
        a = np.array(arr).astype(NUMPY_TYPES[dtype], order="C")  # (ascontiguousarray would make a scalar 1-d)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    print(f"{path}: {os.path.getsize(path)} bytes")
