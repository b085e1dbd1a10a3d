#!/usr/bin/python3
"""Reference for internal/pth: what torch.load (or np.load) reads from torch.save files.

  pth_reference.py fixtures DIR   writes small torch.save files covering both formats, pickle
                                  protocols, dtypes, views and numpy arrays into DIR, and prints
                                  {file name: checksums} for those that torch.load reads back
  pth_reference.py checksums FILE...
                                  prints {file: checksums} for torch.save or .npz files

checksums is a list, in the dict's order, of {"key", "dtype": name, "shape": [...], "sha256": hex of the
C-contiguous little-endian bytes, "float32_sha256": the same of the values as float32 (floating dtypes
only)}, as torch.load returns them: the round trip is checked against torch, not against what was meant
to be saved. Files that pth must reject (unknown_class_*, tensor_top_*) are written but not listed.
"""
import datetime
import hashlib
import json
import os
import sys
from collections import OrderedDict

import numpy as np
import torch

import torchload


def sha256(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def checksum(key, value):
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value.copy(order="C"))
    # flatten() makes scalars 1-D; uint8 covers dtypes numpy lacks (bfloat16).
    flat = value.detach().contiguous().flatten()
    sums = {"key": key, "dtype": str(value.dtype).removeprefix("torch."), "shape": list(value.shape),
            "sha256": sha256(flat.view(torch.uint8).numpy())}
    if value.dtype.is_floating_point:
        sums["float32_sha256"] = sha256(flat.float().numpy())
    return sums


def checksums(path):
    if path.endswith(".npz"):
        with np.load(path) as npz:
            return [checksum(k, npz[k]) for k in npz.files]
    return [checksum(k, v) for k, v in torchload.load(path).items()]


def fixtures():
    """Returns {name: (object, pickle protocols)}: each is saved in both formats with each protocol."""
    g = torch.Generator().manual_seed(3)
    rng = np.random.RandomState(3)
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(8, 3))
    base = torch.arange(60.0).reshape(6, 10)
    return {
        "single": ({"w": torch.arange(6.0).reshape(2, 3)}, [2]),
        # An OrderedDict with _metadata, a 0-d int64 num_batches_tracked, parameters' tensors.
        "state_dict": (model.state_dict(), [2]),
        "dtypes": ({
            "float32": torch.randn(2, 3, generator=g),
            "float16": torch.randn(5, generator=g).half(),
            "bfloat16": torch.randn(3, 2, generator=g).bfloat16(),
            "float64": torch.randn(4, generator=g).double(),
            "int64": torch.randint(-2**40, 2**40, (3,), generator=g),
            "int32": torch.randint(-2**20, 2**20, (2, 2), generator=g, dtype=torch.int32),
            "int16": torch.randint(-2**10, 2**10, (3,), generator=g, dtype=torch.int16),
            "int8": torch.randint(-100, 100, (4,), generator=g, dtype=torch.int8),
            "uint8": torch.randint(0, 255, (4,), generator=g, dtype=torch.uint8),
            "bool": torch.rand(5, generator=g) > 0.5,
            "empty": torch.zeros(0, 3),
            "scalar": torch.tensor(2.5),
        }, [2]),
        # Views sharing base's storage: offsets, non-contiguous strides, a broadcast (stride 0).
        "views": ({
            "base": base,
            "row": base[2],
            "block": base[1:4, 2:7],
            "column": base[:, 3],
            "transposed": base.t(),
            "expanded": torch.arange(3.0).expand(4, 3),
            "permuted_half": torch.arange(24.0).half().reshape(2, 3, 4).permute(2, 0, 1),
            "parameter": torch.nn.Parameter(torch.randn(3, 2, generator=g)),
        }, [2, 4, 5]),
        # Like torchvggish's PCA params; protocol 2 pickles bytes via _codecs.encode, 4 as BINBYTES,
        # 5 through numpy's _frombuffer.
        "numpy": ({
            "pca_eigen_vectors": rng.standard_normal((4, 4)),
            "pca_means": rng.standard_normal(4),
            "float32": rng.standard_normal((2, 3)).astype(np.float32),
            "fortran": np.asfortranarray(rng.standard_normal((3, 4)).astype(np.float32)),
            "float16": rng.standard_normal(3).astype(np.float16),
            "int64": np.arange(-2, 3, dtype=np.int64),
            "bool": np.array([True, False, True]),
            "scalar": np.array(1.5),
        }, [2, 4, 5]),
        "unknown_class": ({"w": torch.ones(2), "when": datetime.date(2020, 1, 1)}, [2]),
        "tensor_top": (torch.ones(3), [2]),
    }


def write_fixtures(out):
    os.makedirs(out, exist_ok=True)
    manifest = {}
    for name, (obj, protocols) in fixtures().items():
        for proto in protocols:
            for fmt in ("zip", "legacy"):
                file = f"{name}_{fmt}.pth" if proto == 2 else f"{name}_p{proto}_{fmt}.pth"
                path = os.path.join(out, file)
                with open(path, "wb") as f:
                    torch.save(obj, f, pickle_protocol=proto, _use_new_zipfile_serialization=(fmt == "zip"))
                if not name.startswith(("unknown_class", "tensor_top")):
                    manifest[file] = checksums(path)
    return manifest


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "fixtures":
        result = write_fixtures(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "checksums":
        result = {path: checksums(path) for path in sys.argv[2:]}
    else:
        sys.exit(__doc__)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
