#!/usr/bin/python3
"""Write the golden outputs under testdata/golden/ that the Go tests check without Python.

The Python reference (reference.py) runs on inputs that Go can rebuild or read without it:

- three short WAV fixtures, synthesised as `reference.py synth` does and committed beside the goldens
  (16 kHz mono PCM_16, 22.05 kHz stereo PCM_16, 8 kHz mono PCM_U8: no resampling, resampling down
  with a channel mean, resampling up);
- VGGish weights in the published layout computed from a formula, not drawn from a random generator,
  so that Go computes the same float32 values bit for bit (the published-layout file is 288 MB: it is
  never committed, and the Go tests build it in a temporary folder);
- 64 log-mel examples computed from the same formula.

The formula (FORMULA below; internal/golden implements it in Go): the value of element i (in C order)
of stream k is u * s in float32, where u = (int(splitmix64(k << 32 | i) >> 40) - 2^23) / 2^23 lies in
[-1, 1) exactly in float32, and splitmix64 is Vigna's, in wrapping uint64 arithmetic:
    z = x + 0x9E3779B97F4A7C15
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    return z ^ (z >> 31)
Stream k of the state dict's k-th tensor (keys in the order of LAYERS, each weight then its bias); s is
float32(sqrt(6 / fan_in)) for a weight (He's uniform initialisation: the activations keep their scale
through the ReLUs) and float32(0.01) for a bias. The examples are stream 1000 with s = 3: values in
[-3, 3), inside the range of log-mel values (log(0.01) = -4.6 and up).

Outputs (float32 .npy unless said):
  <fixture>.wav                  the fixtures
  <fixture>.logmel.npy           (N, 96, 64): the reference's log-mel examples
  <fixture>.embedding.npy        (N, 128): the network's embeddings (variant towhee)
  network.embedding.npy          (64, 128): the network on the formula examples, one batch
  network.pca.npy                (64, 128): torchvggish's PCA of those, with pca.npz
  network.quantized.npy          (64, 128): PCA, clipped and quantised to 0..255 (as float32)
  pca.npz                        PCA parameters like the TF release's (float64 pca_eigen_vectors
                                 (128, 128), pca_means (128,)): a random rotation scaled so that the
                                 PCA of the formula examples' embeddings has unit variance and their
                                 mean as its centre, so that quantised values spread over 0..255
  golden.json                    the sha256 of every formula tensor (float32, little-endian) and of the
                                 examples, for the Go test that checks its formula against this one;
                                 the torch and numpy versions used

Usage: /usr/bin/python3 testdata/make_goldens.py [--out testdata/golden]
"""
import argparse
import hashlib
import json
import os
import sys
import types
import zlib

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
from make_weights import LAYERS, write_atomic  # noqa: E402

# name, signal, rate, channels, subtype, seconds: as reference.FIXTURES.
FIXTURES = [
    ("speech_16k_mono_pcm16_2100ms", "speech", 16000, 1, "PCM_16", 2.1),
    ("chirp_22k_stereo_pcm16_1200ms", "chirp", 22050, 2, "PCM_16", 1.2),
    ("noise_8k_mono_u8_1500ms", "noise", 8000, 1, "PCM_U8", 1.5),
]

EXAMPLES_STREAM, EXAMPLES_SCALE, EXAMPLES = 1000, 3.0, 64
BIAS_SCALE = 0.01
PCA_SEED = 7

FORMULA = "splitmix64 v1: u = (int(splitmix64(k << 32 | i) >> 40) - 2^23) / 2^23; value = float32(u * s)"

U64 = np.uint64


def splitmix64(x):
    z = x + U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
    return z ^ (z >> U64(31))


def formula(stream, shape, scale):
    """The float32 values of stream k for a tensor of the given shape."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64) | (U64(stream) << U64(32))
    u = ((splitmix64(i) >> U64(40)).astype(np.int64) - (1 << 23)).astype(np.float32) / np.float32(1 << 23)
    return (u * np.float32(scale)).reshape(shape)


def state_dict():
    """The formula weights in state-dict order, as float32 numpy arrays."""
    sd = {}
    for k, (name, shape) in enumerate(LAYERS):
        fan_in = int(np.prod(shape[1:]))
        sd[name + ".weight"] = formula(2 * k, shape, np.float32(np.sqrt(6.0 / fan_in)))
        sd[name + ".bias"] = formula(2 * k + 1, (shape[0],), np.float32(BIAS_SCALE))
    return sd


def sha256(a):
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f4").tobytes()).hexdigest()


def write_fixture(out, name, kind, rate, channels, subtype, seconds):
    frames = int(round(seconds * rate))
    data = reference.quantize_for(reference.synth_signal(kind, rate, channels, frames, zlib.crc32(name.encode())), subtype)
    path = os.path.join(out, name + ".wav")

    def write(tmp):
        sf.write(tmp, data[:, 0] if channels == 1 else data, rate, subtype=subtype, format="WAV")
        reference.clear_peak_timestamp(tmp)

    write_atomic(path, write)
    return path


def pca_params(embeddings):
    """A random rotation, scaled to unit variance on embeddings, centred on their mean."""
    emb = embeddings.astype(np.float64)
    means = emb.mean(axis=0)
    q, _ = np.linalg.qr(np.random.RandomState(PCA_SEED).standard_normal((128, 128)))
    spread = np.sqrt(((emb - means) ** 2).sum(axis=1).mean() / 128)  # RMS of a rotated component
    return {"pca_eigen_vectors": np.ascontiguousarray(q.T / spread), "pca_means": means}


def save(out, name, array):
    path = os.path.join(out, name)
    reference.save_npy(path, np.ascontiguousarray(array, dtype=np.float32))
    os.chmod(path, 0o644)  # mkstemp makes it private


def main():
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)

    sd = state_dict()
    model = reference.build_model("towhee")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    model = model.float().eval()
    meta = {"formula": FORMULA, "torch": torch.__version__, "numpy": np.__version__,
            "weights_sha256": {k: sha256(v) for k, v in sd.items()}}

    opts = types.SimpleNamespace(hop=None, tail="drop", channel=None)
    fixtures = []
    for name, kind, rate, channels, subtype, seconds in FIXTURES:
        path = write_fixture(args.out, name, kind, rate, channels, subtype, seconds)
        pre = reference.Preprocessed(path, opts)
        save(args.out, name + ".logmel.npy", pre.examples)
        save(args.out, name + ".embedding.npy", reference.run_model(model, pre.examples))
        fixtures.append({"file": name + ".wav", "rate": rate, "channels": channels, "subtype": subtype,
                         "examples": int(pre.examples.shape[0])})
    meta["fixtures"] = fixtures

    examples = formula(EXAMPLES_STREAM, (EXAMPLES, 96, 64), EXAMPLES_SCALE)
    meta["examples_sha256"] = sha256(examples)
    emb = reference.run_model(model, examples)
    save(args.out, "network.embedding.npy", emb)
    pca = pca_params(emb)
    pca_path = os.path.join(args.out, "pca.npz")

    def write_npz(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **pca)

    write_atomic(pca_path, write_npz)
    post = reference.Postprocessor(pca_path)
    save(args.out, "network.pca.npy", post(emb, quantize=False))
    quantized = post(emb, quantize=True)
    save(args.out, "network.quantized.npy", quantized)
    meta["quantized_saturated"] = int(((quantized == 0) | (quantized == 255)).sum())

    reference.save_json(os.path.join(args.out, "golden.json"), meta)
    os.chmod(os.path.join(args.out, "golden.json"), 0o644)
    print(json.dumps({"out": os.path.abspath(args.out), "files": sorted(os.listdir(args.out))}))


if __name__ == "__main__":
    sys.exit(main())
