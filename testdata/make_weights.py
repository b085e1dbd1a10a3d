#!/usr/bin/python3
"""Write seeded random VGGish weights in the published torchvggish layout.

The published state dict (vggish-10086976.pth) has keys features.{0,3,6,8,11,13}.{weight,bias} (3x3
convolutions 1->64->128->256->256->512->512) and embeddings.{0,2,4}.{weight,bias} (Linear 12288->4096->
4096->128). Weights are He-initialised (kaiming normal, fan_in, ReLU gain) and biases small, so that the
network's output depends on its input (PyTorch's default init makes every output nearly the same).
Shapes are the real ones: the weights file is ~288 MB in float32, so write it under testdata/gen/ (git
ignored) or a temp dir, never into the repository.

--pca writes PCA parameters like torchvggish's vggish_pca_params-970ea276.pth (a torch.save'd dict of
float64 numpy arrays), --pca-npz the same values like the TF release's vggish_pca_params.npz. The same
seed always gives the same values. Outputs are written to a temp file and renamed into place.

Usage: make_weights.py [--seed N] [--out PATH] [--format zip|legacy] [--dtype float32|float16]
                       [--pca PATH] [--pca-npz PATH]
"""
import argparse
import os
import sys
import tempfile
from collections import OrderedDict

import numpy as np
import torch

# (key prefix, weight shape) in state-dict order.
LAYERS = [
    ("features.0", (64, 1, 3, 3)),
    ("features.3", (128, 64, 3, 3)),
    ("features.6", (256, 128, 3, 3)),
    ("features.8", (256, 256, 3, 3)),
    ("features.11", (512, 256, 3, 3)),
    ("features.13", (512, 512, 3, 3)),
    ("embeddings.0", (4096, 512 * 4 * 6)),
    ("embeddings.2", (4096, 4096)),
    ("embeddings.4", (128, 4096)),
]
BIAS_STD = 0.01
PCA_DIM = 128


def state_dict(seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for name, shape in LAYERS:
        fan_in = int(np.prod(shape[1:]))
        std = (2.0 / fan_in) ** 0.5  # kaiming_normal_(mode="fan_in", nonlinearity="relu")
        sd[name + ".weight"] = (torch.randn(shape, generator=gen) * std).to(dtype)
        sd[name + ".bias"] = (torch.randn(shape[0], generator=gen) * BIAS_STD).to(dtype)
    return sd


def pca_params(seed):
    rng = np.random.RandomState(seed)
    # Orthonormal rows, like real eigenvectors, and small means.
    q, _ = np.linalg.qr(rng.standard_normal((PCA_DIM, PCA_DIM)))
    return {
        "pca_eigen_vectors": np.ascontiguousarray(q.T, dtype=np.float64),
        "pca_means": rng.standard_normal(PCA_DIM).astype(np.float64) * 0.5,
    }


def write_atomic(path, write):
    """Calls write(tmp_path) then renames tmp_path to path, so path is never half-written."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def torch_save(obj, fmt):
    # Saving to a file object (not a path) names the zip archive's top folder "archive", whatever the
    # temp file is called.
    def write(path):
        with open(path, "wb") as f:
            torch.save(obj, f, _use_new_zipfile_serialization=(fmt == "zip"))
    return write


def npz_save(arrays):
    def write(path):
        with open(path, "wb") as f:  # a file object: np.savez appends .npz to path names without it
            np.savez(f, **arrays)
    return write


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="seed of every random value (default 0)")
    ap.add_argument("--out", help="weights file to write (torch.save'd state dict)")
    ap.add_argument("--format", choices=["zip", "legacy"], default="zip",
                    help="torch.save format of --out and --pca (legacy = _use_new_zipfile_serialization=False)")
    ap.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="dtype of the weights")
    ap.add_argument("--pca", help="PCA params file to write (torch.save'd dict of float64 numpy arrays)")
    ap.add_argument("--pca-npz", help="PCA params file to write with np.savez, like the TF release")
    args = ap.parse_args()
    if not (args.out or args.pca or args.pca_npz):
        ap.error("nothing to write: give --out, --pca and/or --pca-npz")

    if args.out:
        sd = state_dict(args.seed, getattr(torch, args.dtype))
        write_atomic(args.out, torch_save(sd, args.format))
    if args.pca or args.pca_npz:
        pca = pca_params(args.seed)
        if args.pca:
            write_atomic(args.pca, torch_save(pca, args.format))
        if args.pca_npz:
            write_atomic(args.pca_npz, npz_save(pca))


if __name__ == "__main__":
    sys.exit(main())
