"""Computes the torch smoke test's expected values with the Python reference's torch.

Reads JSON {"x": [...], "xshape": [...], "w": [...], "wshape": [...], "signal": [...], "n_fft": N}
on stdin and prints JSON {"conv": [...], "conv_shape": [...], "rfft_abs": [...]} (float64 math).
"""
import json
import sys

import torch

spec = json.load(sys.stdin)
x = torch.tensor(spec["x"], dtype=torch.float64).reshape(spec["xshape"])
w = torch.tensor(spec["w"], dtype=torch.float64).reshape(spec["wshape"])
conv = torch.nn.functional.conv2d(x, w, padding=1)
sig = torch.tensor(spec["signal"], dtype=torch.float64)
spectrum = torch.fft.rfft(sig, n=spec["n_fft"]).abs()
json.dump({"conv": conv.flatten().tolist(), "conv_shape": list(conv.shape), "rfft_abs": spectrum.tolist()}, sys.stdout)
