"""Reference for preprocess decoding tests: files written and read back with soundfile (libsndfile).

  decode_ref.py make DIR   write test audio files into DIR and, for each, the samples the reference
                           pipeline feeds to resampy (DIR/<name>.f64, float64 LE): soundfile's samples,
                           integers mapped by Towhee's int2float ((x - offset) / 2^(bits-1) with numpy's
                           iinfo), floats widened, then np.mean over channels; and each channel K alone,
                           before the mean (DIR/<name>.chK.f64). Prints a JSON list of
                           {"file", "expected", "channel_files", "rate", "channels"}.
"""
import json
import os
import sys

import numpy as np
import soundfile as sf

# subtype -> dtype soundfile reads it as (what PyAV would hand over: s16, s32, flt, dbl)
READ_DTYPE = {"PCM_U8": "int16", "PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32",
              "FLOAT": "float32", "DOUBLE": "float64"}


def int2float(x):
    if x.dtype.kind in "iu":
        ii = np.iinfo(x.dtype)
        abs_max = 2 ** (ii.bits - 1)
        offset = ii.min + abs_max
        return (x.astype(np.float64) - offset) / abs_max
    return x.astype(np.float64)


def signal(rng, subtype, frames, channels):
    if subtype in ("FLOAT", "DOUBLE"):
        x = rng.uniform(-1.2, 1.2, size=(frames, channels))
        x[0, :] = 1e-30  # a subnormal in float32
        return x.astype(np.float32 if subtype == "FLOAT" else np.float64)
    dtype = READ_DTYPE[subtype]
    ii = np.iinfo(dtype)
    x = rng.integers(ii.min, ii.max, size=(frames, channels), endpoint=True, dtype=dtype)
    x[0, :], x[1, :] = ii.min, ii.max
    return x


def main():
    if sys.argv[1] != "make":
        sys.exit("unknown command " + sys.argv[1])
    out = sys.argv[2]
    rng = np.random.default_rng(2024)
    cases = []
    for i, subtype in enumerate(READ_DTYPE):
        for channels in (1, 2, 3, 9):
            cases.append(("WAV", "wav", subtype, channels, (8000, 22050, 44100, 48000)[(i + channels) % 4]))
    cases += [("WAVEX", "wav", "PCM_24", 2, 44100), ("WAVEX", "wav", "FLOAT", 1, 16000),
              ("FLAC", "flac", "PCM_16", 2, 44100), ("FLAC", "flac", "PCM_24", 1, 48000)]
    manifest = []
    for fmt, ext, subtype, channels, rate in cases:
        name = os.path.join(out, f"{fmt}_{subtype}_{channels}ch.{ext}")
        sf.write(name, signal(rng, subtype, 3001, channels), rate, subtype=subtype, format=fmt)
        x, sr = sf.read(name, dtype=READ_DTYPE[subtype], always_2d=True)
        assert sr == rate and x.shape == (3001, channels), (name, sr, x.shape)
        np.mean(int2float(x), axis=1).astype("<f8").tofile(name + ".f64")
        for k in range(channels):
            int2float(x)[:, k].astype("<f8").tofile(f"{name}.ch{k}.f64")
        manifest.append({"file": name, "expected": name + ".f64", "channel_files": [f"{name}.ch{k}.f64" for k in range(channels)], "rate": rate, "channels": channels})
    json.dump(manifest, sys.stdout)


if __name__ == "__main__":
    main()
