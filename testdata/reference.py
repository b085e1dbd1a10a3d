#!/usr/bin/python3
"""Python reference for vggish-go: the algorithm of Towhee's `audio_embedding.vggish` operator.

Run it with /usr/bin/python3 (torch, numpy, scipy, resampy, soundfile). The Go parity tests run it live;
testdata/README.md documents every subcommand, option and output precisely.

The pipeline follows torchvggish (harritaylor/torchvggish: vggish_input.py, mel_features.py,
vggish_params.py, vggish.py), which Towhee's operator wraps:
  samples -> float (Towhee's int2float) -> mean over channels -> resampy to 16 kHz (kaiser_best)
  -> log-mel (25 ms periodic-Hann frames, 10 ms hop, |rfft 512|, 64 HTK mel bands 125-7500 Hz,
  log(x + 0.01)) -> 96-frame examples, hop 96 -> float32 (N, 96, 64)
  -> VGG (4 conv blocks, NHWC flatten, Linear-ReLU-Linear-ReLU-Linear[-ReLU]) -> (N, 128)
  -> optional torchvggish Postprocessor (PCA, clip to [-2, 2], 8-bit quantise).

The code is written for this project; it reproduces the published algorithm, not its source text.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
import zlib

import numpy as np
import soundfile as sf

# vggish_params.py
SAMPLE_RATE = 16000
STFT_WINDOW_SECONDS = 0.025
STFT_HOP_SECONDS = 0.010
NUM_MEL_BINS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_WINDOW_SECONDS = 0.96
EXAMPLE_HOP_SECONDS = 0.96
EMBEDDING_SIZE = 128
QUANTIZE_MIN_VAL = -2.0
QUANTIZE_MAX_VAL = 2.0

# Derived exactly as mel_features.log_mel_spectrogram / vggish_input.waveform_to_examples derive them.
WINDOW_SAMPLES = int(round(SAMPLE_RATE * STFT_WINDOW_SECONDS))  # 400
HOP_SAMPLES = int(round(SAMPLE_RATE * STFT_HOP_SECONDS))  # 160
FFT_LENGTH = 2 ** int(np.ceil(np.log(WINDOW_SAMPLES) / np.log(2.0)))  # 512
FEATURES_RATE = 1.0 / STFT_HOP_SECONDS  # 100 log-mel frames per second
EXAMPLE_FRAMES = int(round(EXAMPLE_WINDOW_SECONDS * FEATURES_RATE))  # 96
DEFAULT_HOP_FRAMES = int(round(EXAMPLE_HOP_SECONDS * FEATURES_RATE))  # 96
# Samples one example spans: 96 STFT frames of 400 samples, 160 apart.
EXAMPLE_SPAN_SAMPLES = (EXAMPLE_FRAMES - 1) * HOP_SAMPLES + WINDOW_SAMPLES  # 15600

# The integer dtype Towhee's decoder would hand the operator for each WAV subtype (soundfile returns
# integers left-justified in that dtype, as ffmpeg's s16/s32 sample formats are).
READ_DTYPES = {
    "PCM_U8": "int16",
    "PCM_S8": "int16",
    "PCM_16": "int16",
    "PCM_24": "int32",
    "PCM_32": "int32",
    "FLOAT": "float64",
    "DOUBLE": "float64",
}

# Set when VGGISH_REFERENCE=torchvggish asks for the real package's code and it imports.
USE_TORCHVGGISH = os.environ.get("VGGISH_REFERENCE") == "torchvggish"


class ReferenceError(Exception):
    """A user-facing failure: printed on stderr, exit status 1."""


# ---------------------------------------------------------------------------------------------------
# Output helpers


def save_npy(path, array):
    """Write array to path atomically (temp file in the same directory, then rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_json(path, obj):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def output_path(out_dir, input_path, suffix=".npy"):
    stem = os.path.splitext(os.path.basename(input_path))[0]
    return os.path.join(out_dir, stem + suffix)


def check_unique_stems(paths):
    seen = {}
    for p in paths:
        stem = os.path.splitext(os.path.basename(p))[0]
        if stem in seen:
            raise ReferenceError(f"inputs {seen[stem]} and {p} would both write {stem}.npy")
        seen[stem] = p


# ---------------------------------------------------------------------------------------------------
# Audio -> 16 kHz mono waveform


def read_audio(path):
    """Samples of path as (frames, channels), in the dtype Towhee's decoder would produce, and the rate."""
    try:
        info = sf.info(path)
    except Exception as e:  # soundfile raises RuntimeError/LibsndfileError with libsndfile's message
        raise ReferenceError(f"read {path}: {e}") from e
    dtype = READ_DTYPES.get(info.subtype, "float64")
    try:
        data, rate = sf.read(path, dtype=dtype, always_2d=True)
    except Exception as e:
        raise ReferenceError(f"read {path}: {e}") from e
    return data, rate, info.subtype


def int2float(samples):
    """Towhee's int2float: (x - offset) / 2**(bits-1), offset = iinfo.min + 2**(bits-1), in float64.

    Signed types have offset 0 (x / 2**(bits-1)); unsigned 8-bit has offset 128. Float input passes
    through unchanged (as float64).
    """
    if samples.dtype.kind not in "iu":
        return samples.astype(np.float64)
    info = np.iinfo(samples.dtype)
    half = 2 ** (info.bits - 1)
    offset = info.min + half
    return (samples.astype(np.float64) - offset) / half


def waveform_16k(path, channel=None):
    """The mono 16 kHz float64 waveform the log-mel stage sees, and the file's original rate.

    With channel=None the channels are averaged (the reference); with channel=K only channel K is kept
    (the --channel extension: what vggish-go's per-channel mode must give for that channel).
    """
    data, rate, _ = read_audio(path)
    if channel is None:
        mono = int2float(data).mean(axis=1)
    elif 0 <= channel < data.shape[1]:
        mono = int2float(data)[:, channel]
    else:
        raise ReferenceError(f"--channel {channel}: {path} has {data.shape[1]} channel(s)")
    return resample_to_16k(mono, rate, path), rate


def resample_to_16k(mono, rate, path):
    if rate == SAMPLE_RATE or mono.shape[0] == 0:
        return mono
    import resampy  # imported here: its numba start-up costs ~0.5 s

    try:
        return resampy.resample(mono, rate, SAMPLE_RATE)  # filter='kaiser_best'
    except Exception as e:
        raise ReferenceError(f"resample {path} from {rate} Hz: {e}") from e


TAIL_POLICIES = ("drop", "pad", "repeat")


def fill_tail(wave, hop_frames, policy):
    """Extend wave so the last, partial example becomes a full one (the --tail extension).

    With S = hop_frames * 160 and W = 15600 (samples one example spans), N examples cover samples
    [0, (N-1)*S + W). N is the smallest count >= 1 that covers every sample, N = 1 if n <= W else
    1 + ceil((n - W) / S), but no example may start at or after the end: N <= ceil(n / S) (which only
    binds when S > W). The wave is extended to L = (N-1)*S + W samples (never shortened): 'pad' with
    zeros, 'repeat' with the last example's own samples wave[(N-1)*S:] over and over (np.resize tiles
    them), so a sound shorter than one example is looped. 'drop' and empty input change nothing.
    """
    n = wave.shape[0]
    if policy == "drop" or n == 0:
        return wave
    stride = hop_frames * HOP_SAMPLES
    count = 1 if n <= EXAMPLE_SPAN_SAMPLES else 1 + -(-(n - EXAMPLE_SPAN_SAMPLES) // stride)
    count = min(count, -(-n // stride))
    start = (count - 1) * stride
    length = start + EXAMPLE_SPAN_SAMPLES
    if length <= n:
        return wave
    if policy == "pad":
        return np.concatenate([wave, np.zeros(length - n, dtype=wave.dtype)])
    return np.concatenate([wave[:start], np.resize(wave[start:], EXAMPLE_SPAN_SAMPLES)])


# ---------------------------------------------------------------------------------------------------
# mel_features


def frame(data, window, hop):
    """mel_features.frame: successive frames of data[0], no padding; callers ensure len >= window."""
    count = 1 + (data.shape[0] - window) // hop
    shape = (count, window) + data.shape[1:]
    strides = (data.strides[0] * hop,) + data.strides
    return np.lib.stride_tricks.as_strided(data, shape=shape, strides=strides, writeable=False)


def periodic_hann(length):
    return 0.5 - 0.5 * np.cos(2 * np.pi / length * np.arange(length))


def hertz_to_mel(hz):
    """HTK mel scale."""
    return 1127.0 * np.log(1.0 + hz / 700.0)


def mel_matrix(num_spectrogram_bins=FFT_LENGTH // 2 + 1):
    """mel_features.spectrogram_to_mel_matrix at 16 kHz: (257, 64) triangles linear in mel, DC row 0."""
    bins_mel = hertz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2.0, num_spectrogram_bins))
    edges = np.linspace(hertz_to_mel(MEL_MIN_HZ), hertz_to_mel(MEL_MAX_HZ), NUM_MEL_BINS + 2)
    weights = np.empty((num_spectrogram_bins, NUM_MEL_BINS))
    for i in range(NUM_MEL_BINS):
        lower, center, upper = edges[i : i + 3]
        rising = (bins_mel - lower) / (center - lower)
        falling = (upper - bins_mel) / (upper - center)
        weights[:, i] = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def log_mel(wave):
    """mel_features.log_mel_spectrogram at 16 kHz: (F, 64) float64, F = 1 + (n - 400) // 160.

    Audio shorter than one 400-sample window gives F = 0 (the original raises inside as_strided when
    n < 240 and returns F = 0 for 240 <= n < 400).
    """
    if wave.shape[0] < WINDOW_SAMPLES:
        return np.zeros((0, NUM_MEL_BINS))
    frames = frame(wave, WINDOW_SAMPLES, HOP_SAMPLES)
    spectrogram = np.abs(np.fft.rfft(frames * periodic_hann(WINDOW_SAMPLES), FFT_LENGTH))
    return np.log(np.dot(spectrogram, mel_matrix(spectrogram.shape[1])) + LOG_OFFSET)


def examples_from_log_mel(mel, hop_frames):
    """vggish_input's framing into 96-frame examples, as float32 (N, 96, 64); N = 0 if F < 96."""
    if mel.shape[0] < EXAMPLE_FRAMES:
        return np.zeros((0, EXAMPLE_FRAMES, NUM_MEL_BINS), dtype=np.float32)
    return frame(mel, EXAMPLE_FRAMES, hop_frames).astype(np.float32)


def hop_frames_from(args):
    if args.hop is None:
        return DEFAULT_HOP_FRAMES
    frames = int(round(args.hop * FEATURES_RATE))
    if frames < 1:
        raise ReferenceError(f"--hop {args.hop}: rounds to {frames} log-mel frames; need at least one (10 ms)")
    return frames


class Preprocessed:
    """One file's preprocessing result and its intermediate stages."""

    def __init__(self, path, args):
        hop = hop_frames_from(args)
        if USE_TORCHVGGISH:
            self._torchvggish(path, args)
            return
        self.wave, self.rate = waveform_16k(path, args.channel)
        self.wave = fill_tail(self.wave, hop, args.tail)
        self.mel = log_mel(self.wave)
        self.examples = examples_from_log_mel(self.mel, hop)

    def _torchvggish(self, path, args):
        # UNTESTED HERE: the torchvggish package is not installed on the project's machines.
        if args.hop is not None or args.tail != "drop" or args.channel is not None:
            raise ReferenceError("--hop, --tail and --channel are vggish-go extensions: not available with VGGISH_REFERENCE=torchvggish")
        from torchvggish import vggish_input

        data, self.rate, _ = read_audio(path)
        self.wave, self.mel = None, None
        self.examples = np.asarray(vggish_input.waveform_to_examples(int2float(data), self.rate, return_tensor=False), dtype=np.float32)

    def summary(self):
        out = {"rate": self.rate, "examples": int(self.examples.shape[0])}
        if self.wave is not None:
            out["samples_16k"] = int(self.wave.shape[0])
            out["log_mel_frames"] = int(self.mel.shape[0])
        if self.examples.shape[0] == 0:
            out["empty"] = True
            out["note"] = "audio too short for one 96-frame example (0.975 s at 16 kHz): wrote an empty array"
            if self.wave is not None and self.wave.shape[0] < WINDOW_SAMPLES - HOP_SAMPLES:
                # as_strided gets a negative frame count below 240 samples.
                out["original_raises"] = True
        return out


# ---------------------------------------------------------------------------------------------------
# The network


def build_model(variant):
    """VGGish in torch; variant 'towhee' has no ReLU after the last Linear, 'torchvggish' has one."""
    import torch.nn as nn

    if USE_TORCHVGGISH:
        # UNTESTED HERE: the torchvggish package is not installed on the project's machines.
        from torchvggish.vggish import VGG, make_layers

        model = VGG(make_layers())
        if variant == "towhee":
            model.embeddings[-1] = nn.Identity()
        return model

    class VGGish(nn.Module):
        def __init__(self):
            super().__init__()
            layers, channels = [], 1
            for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
                if v == "M":
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                else:
                    layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                    channels = v
            self.features = nn.Sequential(*layers)  # conv layers at indices 0, 3, 6, 8, 11, 13
            head = [nn.Linear(512 * 4 * 6, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, EMBEDDING_SIZE)]
            if variant == "torchvggish":
                head.append(nn.ReLU(inplace=True))
            self.embeddings = nn.Sequential(*head)

        def forward(self, x):
            # NCHW -> NHWC before flattening: the TensorFlow checkpoint's order.
            x = self.features(x).permute(0, 2, 3, 1).contiguous()
            return self.embeddings(x.view(x.size(0), -1))

    return VGGish()


def load_model(weights, variant):
    import torch
    import torchload

    model = build_model(variant)
    try:
        state = torchload.load(weights, map_location="cpu")
    except Exception as e:
        raise ReferenceError(f"load weights {weights}: {e}") from e
    if not isinstance(state, dict):
        raise ReferenceError(f"load weights {weights}: expected a state dict, got {type(state).__name__}")
    state = {k: torch.as_tensor(v) for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ReferenceError(f"load weights {weights}: {e}") from e
    return model.float().eval()


def run_model(model, examples):
    import torch

    if examples.shape[0] == 0:
        return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(examples))[:, None, :, :]).numpy()


class Postprocessor:
    """torchvggish's Postprocessor: PCA (with whitening) then clip to [-2, 2] and quantise to 0..255."""

    def __init__(self, path):
        import torch
        import torchload

        try:
            if path.endswith(".npz"):
                with np.load(path) as params:
                    vectors, means = params["pca_eigen_vectors"], params["pca_means"]
            else:
                params = torchload.load(path, map_location="cpu")
                vectors, means = params["pca_eigen_vectors"], params["pca_means"]
        except Exception as e:
            raise ReferenceError(f"load PCA parameters {path}: {e!r}") from e
        self.matrix = torch.as_tensor(np.asarray(vectors), dtype=torch.float)
        self.means = torch.as_tensor(np.asarray(means).reshape(-1, 1), dtype=torch.float)
        if tuple(self.matrix.shape) != (EMBEDDING_SIZE, EMBEDDING_SIZE) or tuple(self.means.shape) != (EMBEDDING_SIZE, 1):
            raise ReferenceError(f"load PCA parameters {path}: shapes {tuple(self.matrix.shape)} and {tuple(self.means.shape)}, want (128, 128) and (128,)")

    def __call__(self, embeddings, quantize):
        import torch

        if embeddings.shape[0] == 0:
            return embeddings
        with torch.no_grad():
            pca = torch.mm(self.matrix, torch.from_numpy(embeddings).T - self.means).T
            if not quantize:
                return pca.numpy()
            clipped = torch.clamp(pca, QUANTIZE_MIN_VAL, QUANTIZE_MAX_VAL)
            # torch.round rounds half to even, like numpy.
            return torch.round((clipped - QUANTIZE_MIN_VAL) * (255.0 / (QUANTIZE_MAX_VAL - QUANTIZE_MIN_VAL))).numpy()


# ---------------------------------------------------------------------------------------------------
# Test signals for `synth`

# name, signal, rate, channels, subtype, seconds. Covers every rate, subtype, channel count and length
# class: 10 ms (shorter than one 25 ms window), 25 ms (exactly one window), 0.5 s, exactly 0.96 s,
# 1-3 s, 10 s.
FIXTURES = [
    ("tone_16k_mono_pcm16_10s", "tone", 16000, 1, "PCM_16", 10.0),
    ("tone_16k_mono_pcm16_960ms", "tone", 16000, 1, "PCM_16", 0.96),
    ("tone_16k_mono_pcm16_10ms", "tone", 16000, 1, "PCM_16", 0.01),
    ("noise_16k_mono_pcm16_25ms", "noise", 16000, 1, "PCM_16", 0.025),
    ("noise_16k_mono_pcm16_500ms", "noise", 16000, 1, "PCM_16", 0.5),
    ("silence_16k_mono_pcm16_2s", "silence", 16000, 1, "PCM_16", 2.0),
    ("speech_16k_mono_pcm16_3s", "speech", 16000, 1, "PCM_16", 3.0),
    ("speech_16k_mono_pcm32_10s", "speech", 16000, 1, "PCM_32", 10.0),
    ("chirp_16k_mono_pcm24_1500ms", "chirp", 16000, 1, "PCM_24", 1.5),
    ("clip_16k_mono_u8_1s", "clip", 16000, 1, "PCM_U8", 1.0),
    ("clip_16k_mono_float_1s", "clip", 16000, 1, "FLOAT", 1.0),
    ("antiphase_16k_stereo_pcm16_1s", "antiphase", 16000, 2, "PCM_16", 1.0),
    ("tone_16k_stereo_pcm16_2s", "tone", 16000, 2, "PCM_16", 2.0),
    ("chirp_8k_mono_pcm16_2s", "chirp", 8000, 1, "PCM_16", 2.0),
    ("speech_8k_mono_u8_2s", "speech", 8000, 1, "PCM_U8", 2.0),
    ("noise_8k_stereo_pcm24_1s", "noise", 8000, 2, "PCM_24", 1.0),
    ("tone_8k_mono_double_960ms", "tone", 8000, 1, "DOUBLE", 0.96),
    ("chirp_22k_mono_pcm16_2500ms", "chirp", 22050, 1, "PCM_16", 2.5),
    ("speech_22k_stereo_float_2s", "speech", 22050, 2, "FLOAT", 2.0),
    ("tone_22k_mono_double_500ms", "tone", 22050, 1, "DOUBLE", 0.5),
    ("speech_22k_mono_u8_1s", "speech", 22050, 1, "PCM_U8", 1.0),
    ("speech_44k_stereo_pcm16_10s", "speech", 44100, 2, "PCM_16", 10.0),
    ("chirp_44k_mono_pcm24_2s", "chirp", 44100, 1, "PCM_24", 2.0),
    ("noise_44k_mono_pcm32_1500ms", "noise", 44100, 1, "PCM_32", 1.5),
    ("clip_44k_stereo_pcm16_1s", "clip", 44100, 2, "PCM_16", 1.0),
    ("tone_44k_mono_pcm16_10ms", "tone", 44100, 1, "PCM_16", 0.01),
    ("speech_48k_mono_pcm16_3s", "speech", 48000, 1, "PCM_16", 3.0),
    ("tone_48k_stereo_pcm32_2s", "tone", 48000, 2, "PCM_32", 2.0),
    ("chirp_48k_mono_float_2s", "chirp", 48000, 1, "FLOAT", 2.0),
    ("noise_48k_stereo_double_1s", "noise", 48000, 2, "DOUBLE", 1.0),
    ("clip_48k_mono_pcm24_1s", "clip", 48000, 1, "PCM_24", 1.0),
    ("silence_48k_stereo_float_500ms", "silence", 48000, 2, "FLOAT", 0.5),
]


def tone(t, freq):
    return 0.5 * np.sin(2 * np.pi * freq * t)


def square(t, freq):
    """Full-scale square wave: exactly +1.0 and -1.0 (integer extremes after quantisation)."""
    return np.where(np.sin(2 * np.pi * freq * t) >= 0, 1.0, -1.0)


def chirp(t, rate, rising):
    from scipy.signal import chirp as scipy_chirp

    top = min(7800.0, 0.45 * rate)
    duration = max(t[-1], 1e-3) if t.size else 1.0
    f0, f1 = (50.0, top) if rising else (top, 50.0)
    return 0.6 * scipy_chirp(t, f0=f0, t1=duration, f1=f1, method="logarithmic")


def speech_like(t, rate):
    """Voiced-speech caricature: a vibrato'd 120 Hz harmonic series through moving formants, with a
    syllable-rate amplitude envelope."""
    f0 = 120.0 + 20.0 * np.sin(2 * np.pi * 0.5 * t) + 5.0 * np.sin(2 * np.pi * 5.0 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    formants = [
        (500.0 + 200.0 * np.sin(2 * np.pi * 0.7 * t), 80.0),
        (1500.0 + 400.0 * np.sin(2 * np.pi * 0.9 * t + 1.0), 120.0),
        (2500.0 + 150.0 * np.sin(2 * np.pi * 0.3 * t), 160.0),
    ]
    top = min(7000.0, 0.45 * rate)
    out = np.zeros_like(t)
    for k in range(1, int(top // 145.0) + 1):
        freq = k * f0
        gain = sum(np.exp(-0.5 * ((freq - centre) / width) ** 2) for centre, width in formants) + 0.02
        out += gain * np.sin(k * phase) * (freq < top)
    envelope = (0.55 + 0.45 * np.sin(2 * np.pi * 3.7 * t)) ** 2
    out *= envelope
    peak = np.max(np.abs(out)) if out.size else 0.0
    return 0.7 * out / peak if peak > 0 else out


def synth_signal(kind, rate, channels, frames, seed):
    """(frames, channels) float64 in [-1, 1]; channel 2 differs from channel 1 so the mean matters."""
    t = np.arange(frames) / rate
    rng = np.random.default_rng(seed)
    if kind == "tone":
        chans = [tone(t, 440.0), tone(t, 660.0)] if frames >= rate else [tone(t, 1000.0), tone(t, 1500.0)]
    elif kind == "antiphase":
        chans = [tone(t, 440.0), -tone(t, 440.0)]
    elif kind == "noise":
        chans = [rng.uniform(-0.5, 0.5, frames) for _ in range(2)]
    elif kind == "chirp":
        chans = [chirp(t, rate, True), chirp(t, rate, False)]
    elif kind == "speech":
        voice = speech_like(t, rate)
        chans = [voice, 0.6 * np.concatenate([np.zeros(37), voice[:-37]])[:frames]]
    elif kind == "silence":
        chans = [np.zeros(frames), np.zeros(frames)]
    elif kind == "clip":
        chans = [square(t, 100.0), square(t, 250.0)]
    else:
        raise ValueError(kind)
    return np.stack(chans[:channels], axis=1)


def quantize_for(signal, subtype):
    """Samples to hand libsndfile so the file holds exactly round(x * full scale), clipped.

    Integers are written left-justified (low bits zero), which libsndfile stores by plain shifts, so the
    file content does not depend on libsndfile's float scaling.
    """
    def q(bits):
        scale = 2.0 ** (bits - 1)
        return np.clip(np.round(signal * scale), -scale, scale - 1)

    if subtype == "PCM_U8":
        return (q(8) * 256).astype(np.int16)
    if subtype == "PCM_16":
        return q(16).astype(np.int16)
    if subtype == "PCM_24":
        return (q(24) * 256).astype(np.int32)
    if subtype == "PCM_32":
        return q(32).astype(np.int32)
    if subtype == "FLOAT":
        return signal.astype(np.float32)
    if subtype == "DOUBLE":
        return signal
    raise ValueError(subtype)


# ---------------------------------------------------------------------------------------------------
# Subcommands


def clear_peak_timestamp(path):
    """Zero the write time libsndfile stamps into float WAVs' PEAK chunk, so files are byte-identical."""
    with open(path, "r+b") as f:
        header = f.read(512)
        at = header.find(b"PEAK")
        if at >= 0:
            f.seek(at + 12)  # "PEAK", chunk size, version, then the timestamp
            f.write(bytes(4))


def input_files(args):
    if args.manifest and args.files:
        raise ReferenceError("give FILE... or --manifest, not both")
    if args.manifest:
        with open(args.manifest) as f:
            entries = json.load(f)
        base = os.path.dirname(os.path.abspath(args.manifest))
        files = [os.path.join(base, e["file"]) for e in entries]
    else:
        files = list(args.files)
    if not files:
        raise ReferenceError("no input files (give FILE... or --manifest)")
    check_unique_stems(files)
    return files


def cmd_synth(args):
    os.makedirs(args.out, exist_ok=True)
    manifest = []
    for name, kind, rate, channels, subtype, seconds in FIXTURES:
        frames = int(round(seconds * rate))
        signal = synth_signal(kind, rate, channels, frames, zlib.crc32(name.encode()))
        data = quantize_for(signal, subtype)
        path = os.path.join(args.out, name + ".wav")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".wav", dir=args.out)
        os.close(fd)
        try:
            sf.write(tmp, data[:, 0] if channels == 1 else data, rate, subtype=subtype, format="WAV")
            clear_peak_timestamp(tmp)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        manifest.append({"name": name, "file": name + ".wav", "path": os.path.abspath(path), "signal": kind, "rate": rate, "channels": channels, "subtype": subtype, "seconds": seconds, "frames": frames})
    manifest_path = os.path.join(args.out, "manifest.json")
    save_json(manifest_path, manifest)
    total = sum(os.path.getsize(e["path"]) for e in manifest)
    return {"command": "synth", "manifest": os.path.abspath(manifest_path), "files": len(manifest), "bytes": total}


def cmd_logmel(args):
    os.makedirs(args.out, exist_ok=True)
    outputs = []
    for path in input_files(args):
        pre = Preprocessed(path, args)
        out = output_path(args.out, path)
        save_npy(out, pre.examples)
        entry = {"input": path, "output": os.path.abspath(out), "shape": list(pre.examples.shape), **pre.summary()}
        if args.stages and pre.wave is not None:
            entry["waveform"] = os.path.abspath(output_path(args.out, path, ".wave.npy"))
            entry["log_mel"] = os.path.abspath(output_path(args.out, path, ".logmel.npy"))
            save_npy(entry["waveform"], pre.wave)
            save_npy(entry["log_mel"], pre.mel)
        outputs.append(entry)
    return {"command": "logmel", "reference": reference_name(), "outputs": outputs}


def cmd_melmatrix(args):
    matrix = mel_matrix()
    save_npy(args.out, matrix)
    return {"command": "melmatrix", "output": os.path.abspath(args.out), "shape": list(matrix.shape)}


def cmd_embed(args):
    if args.quantize is not None and not args.pca:
        raise ReferenceError("--quantize/--no-quantize need --pca")
    os.makedirs(args.out, exist_ok=True)
    files = input_files(args)
    model = load_model(args.weights, args.variant)
    post = Postprocessor(args.pca) if args.pca else None
    quantize = args.quantize is not False
    outputs = []
    for path in files:
        pre = Preprocessed(path, args)
        emb = run_model(model, pre.examples)
        if post:
            emb = post(emb, quantize)
        emb = emb.astype(np.float32)
        out = output_path(args.out, path)
        save_npy(out, emb)
        outputs.append({"input": path, "output": os.path.abspath(out), "shape": list(emb.shape), **pre.summary()})
    return {
        "command": "embed",
        "reference": reference_name(),
        "variant": args.variant,
        "postprocess": ("pca+quantize" if quantize else "pca") if post else None,
        "outputs": outputs,
    }


def warm_up():
    """Trigger resampy's numba compilation so it is not billed to the first file."""
    resample_to_16k(np.zeros(4410), 44100, "warm-up")


def cmd_time_embed(args):
    import torch

    start = time.perf_counter()
    model = load_model(args.weights, args.variant)
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    warm_up()
    run_model(model, np.zeros((1, EXAMPLE_FRAMES, NUM_MEL_BINS), dtype=np.float32))
    warmup_seconds = time.perf_counter() - start
    files, total_pre, total_model = [], 0.0, 0.0
    for path in input_files(args):
        start = time.perf_counter()
        pre = Preprocessed(path, args)
        mid = time.perf_counter()
        run_model(model, pre.examples)
        end = time.perf_counter()
        total_pre += mid - start
        total_model += end - mid
        files.append({"input": path, "examples": int(pre.examples.shape[0]), "preprocess_seconds": mid - start, "model_seconds": end - mid})
    return {
        "command": "time-embed",
        "threads": torch.get_num_threads(),
        "load_seconds": load_seconds,
        "warmup_seconds": warmup_seconds,
        "files": files,
        "preprocess_seconds": total_pre,
        "model_seconds": total_model,
        "total_seconds": total_pre + total_model,
    }


def cmd_time_model(args):
    import torch

    if args.batch < 1 or args.iters < 1:
        raise ReferenceError("--batch and --iters must be at least 1")
    model = load_model(args.weights, args.variant)
    batch = np.random.default_rng(0).standard_normal((args.batch, EXAMPLE_FRAMES, NUM_MEL_BINS)).astype(np.float32)
    run_model(model, batch)  # warm-up
    start = time.perf_counter()
    for _ in range(args.iters):
        run_model(model, batch)
    elapsed = time.perf_counter() - start
    return {"command": "time-model", "batch": args.batch, "iters": args.iters, "threads": torch.get_num_threads(), "seconds_per_iter": elapsed / args.iters}


# ---------------------------------------------------------------------------------------------------
# Fréchet Audio Distance


# The distorted sine sets, after Google's frechet_audio_distance/gen_test_files.py: each file a sine
# that glides up 10% over its length (so its clips differ), at frequencies evenly spaced over
# 100-1000 Hz, 16 kHz PCM_16; the other sets distort the same sines.
FAD_SETS = ("background", "noisy", "clipped", "detuned")


def fad_signal(kind, freq, frames, rng):
    t = np.arange(frames) / SAMPLE_RATE
    if kind == "detuned":
        freq *= 1.03
    glide = freq * (1.0 + 0.1 * t / max(t[-1], 1e-9) / 2.0)  # instantaneous frequency rises 10%
    x = 0.8 * np.sin(2 * np.pi * glide * t)
    if kind == "noisy":
        x = x + rng.normal(0.0, 0.01, frames) * np.max(np.abs(x))  # gen_test_files' add_noise
    elif kind == "clipped":
        x = np.clip(x, -0.3, 0.3)
    return x


def cmd_fadsets(args):
    """Write the FAD test sets: OUT/<set>/sin_<i>.wav for each set (--sets), --files files each."""
    frames = int(round(args.seconds * SAMPLE_RATE))
    out = {}
    for kind in args.sets:
        directory = os.path.join(args.out, kind)
        os.makedirs(directory, exist_ok=True)
        rng = np.random.default_rng(zlib.crc32(kind.encode()))
        paths = []
        for i, freq in enumerate(np.linspace(100.0, 1000.0, args.files)):
            x = fad_signal(kind, freq, frames, rng)
            path = os.path.join(directory, f"sin_{i:03d}.wav")
            sf.write(path, quantize_for(x[:, None], "PCM_16")[:, 0], SAMPLE_RATE, subtype="PCM_16", format="WAV")
            paths.append(os.path.abspath(path))
        out[kind] = {"dir": os.path.abspath(directory), "files": paths}
    return {"command": "fadsets", "sets": out}


def set_embeddings(model, source, args):
    """The (N, 128) float32 embeddings of a set: a folder of .wav files (sorted), or an .npy of them."""
    if source.endswith(".npy"):
        return np.load(source)
    files = sorted(os.path.join(source, f) for f in os.listdir(source) if f.lower().endswith(".wav"))
    if not files:
        raise ReferenceError(f"no .wav files in {source}")
    return np.concatenate([run_model(model, Preprocessed(f, args).examples) for f in files]).astype(np.float32)


def set_stats(model, source, args):
    """mu and sigma of a set (np.mean, np.cov with rowvar=False), its clip count and embeddings.

    Both in float64: np.mean of the float32 embeddings themselves (as most FAD code calls it) would sum
    in float32.
    """
    if source.endswith(".npz"):
        with np.load(source) as z:
            return z["mu"], z["sigma"], None, None
    emb = set_embeddings(model, source, args)
    wide = emb.astype(np.float64)
    return np.mean(wide, axis=0), np.cov(wide, rowvar=False), emb.shape[0], emb


def trace_sqrt_product(sigma_a, sigma_b, eps=1e-7):
    """Tr(sqrtm(sigma_a . sigma_b)) as Google's fad_utils._stable_trace_sqrt_product computes it: scipy's
    sqrtm of the product, with eps added to the diagonals if that is not finite; the real part kept."""
    from scipy import linalg

    product, _ = linalg.sqrtm(sigma_a.dot(sigma_b), disp=False)
    offset = False
    if not np.isfinite(product).all():
        offset = True
        eye = np.eye(sigma_a.shape[0]) * eps
        product = linalg.sqrtm((sigma_a + eye).dot(sigma_b + eye))
    imag = float(np.max(np.abs(np.diagonal(product).imag))) if np.iscomplexobj(product) else 0.0
    return float(np.trace(product.real)), imag, offset


def fad_from_vectors(emb_a, emb_b):
    """The FAD from the sets' vectors rather than their covariances: Tr((S_a S_b)^(1/2)) is the sum of the
    singular values of F_a^T F_b, F the centred vectors over sqrt(n - 1) as columns (S = F F^T). No
    square root of a rounded eigenvalue is taken, so it holds where sqrtm of a singular product errs."""
    a, b = emb_a.astype(np.float64), emb_b.astype(np.float64)
    fa = (a - a.mean(axis=0)).T / np.sqrt(a.shape[0] - 1)
    fb = (b - b.mean(axis=0)).T / np.sqrt(b.shape[0] - 1)
    diff = a.mean(axis=0) - b.mean(axis=0)
    trace = np.linalg.svd(fa.T @ fb, compute_uv=False).sum()
    return float(diff.dot(diff) + (fa * fa).sum() + (fb * fb).sum() - 2 * trace)


def cmd_fad(args):
    start = time.perf_counter()
    model = None
    if any(not s.endswith((".npy", ".npz")) for s in [args.background] + args.eval):
        if not args.weights:
            raise ReferenceError("--weights is needed to embed audio")
        model = load_model(args.weights, args.variant)
    mu_a, sigma_a, n_a, emb_a = set_stats(model, args.background, args)
    saved = {}

    def save(name, emb):
        if args.save_embeddings and emb is not None:
            os.makedirs(args.save_embeddings, exist_ok=True)
            path = os.path.abspath(os.path.join(args.save_embeddings, name + ".npy"))
            save_npy(path, emb)
            saved[name] = path

    save(os.path.basename(os.path.normpath(args.background)), emb_a)
    results = []
    for source in args.eval:
        mu_b, sigma_b, n_b, emb_b = set_stats(model, source, args)
        save(os.path.basename(os.path.normpath(source)), emb_b)
        diff = mu_a - mu_b
        tr, imag, offset = trace_sqrt_product(sigma_a, sigma_b)
        fad = float(diff.dot(diff) + np.trace(sigma_a) + np.trace(sigma_b) - 2 * tr)
        result = {"eval": source, "fad": fad, "n": [n_a, n_b], "trace_sqrt": tr, "max_imag": imag, "eps_offset": offset}
        if emb_a is not None and emb_b is not None:
            result["fad_from_vectors"] = fad_from_vectors(emb_a, emb_b)
        results.append(result)
    return {"command": "fad", "background": args.background, "results": results, "embeddings": saved, "seconds": time.perf_counter() - start}


def reference_name():
    return "torchvggish" if USE_TORCHVGGISH else "builtin"


# ---------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv):
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's --threads only overrides the global one when given.
    common.add_argument("--threads", type=int, default=argparse.SUPPRESS, help="torch.set_num_threads(N)")

    inputs = argparse.ArgumentParser(add_help=False)
    inputs.add_argument("files", nargs="*", metavar="FILE", help="audio files")
    inputs.add_argument("--manifest", help="take the inputs from a synth manifest.json instead")
    inputs.add_argument("--hop", type=float, help="example hop in seconds (frames = int(round(hop * 100))); default 0.96")
    inputs.add_argument("--tail", choices=TAIL_POLICIES, default="drop", help="last partial example: drop (default), pad with zeros, or repeat its audio")
    inputs.add_argument("--pad-tail", dest="tail", action="store_const", const="pad", help="the same as --tail pad")
    inputs.add_argument("--channel", type=int, help="embed channel K alone instead of the mean of the channels")

    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--weights", required=True, help="state dict saved by torch.save")
    model.add_argument("--variant", choices=("towhee", "torchvggish"), default="towhee", help="towhee: no ReLU after the last Linear (default)")

    parser = argparse.ArgumentParser(prog="reference.py", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="torch.set_num_threads(N)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", parents=[common], help="write the test WAVs and manifest.json")
    p.add_argument("--out", required=True)
    p.set_defaults(run=cmd_synth)

    p = sub.add_parser("logmel", parents=[common, inputs], help="write float32 (N, 96, 64) examples per file")
    p.add_argument("--out", required=True)
    p.add_argument("--stages", action="store_true", help="also write <stem>.wave.npy (16 kHz float64) and <stem>.logmel.npy (F, 64) float64")
    p.set_defaults(run=cmd_logmel)

    p = sub.add_parser("melmatrix", parents=[common], help="write the (257, 64) float64 mel matrix")
    p.add_argument("--out", required=True, help="output .npy file")
    p.set_defaults(run=cmd_melmatrix)

    p = sub.add_parser("embed", parents=[common, inputs, model], help="write float32 (N, 128) embeddings per file")
    p.add_argument("--out", required=True)
    p.add_argument("--pca", help="PCA parameters (torch.save'd dict or .npz with pca_eigen_vectors, pca_means)")
    p.add_argument("--quantize", action=argparse.BooleanOptionalAction, default=None, help="with --pca: clip and quantise (default) or stop after the PCA")
    p.set_defaults(run=cmd_embed)

    p = sub.add_parser("time-embed", parents=[common, inputs, model], help="time preprocessing and model per file (JSON)")
    p.set_defaults(run=cmd_time_embed)

    p = sub.add_parser("fadsets", parents=[common], help="write the FAD test sets (distorted sines)")
    p.add_argument("--out", required=True)
    p.add_argument("--files", type=int, default=100)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--sets", nargs="+", choices=FAD_SETS, default=list(FAD_SETS))
    p.set_defaults(run=cmd_fadsets)

    p = sub.add_parser("fad", parents=[common], help="Fréchet Audio Distance of eval sets against a background set (JSON)")
    p.add_argument("background", help="folder of .wav files, .npy embeddings or .npz statistics (mu, sigma)")
    p.add_argument("eval", nargs="+", help="as background; each is compared with it")
    p.add_argument("--weights", help="state dict saved by torch.save (needed to embed audio)")
    p.add_argument("--variant", choices=("towhee", "torchvggish"), default="towhee")
    p.add_argument("--hop", type=float, help=argparse.SUPPRESS)
    p.add_argument("--tail", choices=TAIL_POLICIES, default="drop")
    p.add_argument("--save-embeddings", metavar="DIR", help="write each embedded set's (N, 128) float32 embeddings to DIR/<set>.npy")
    p.set_defaults(run=cmd_fad, channel=None)

    p = sub.add_parser("time-model", parents=[common, model], help="time the model alone on random (B, 1, 96, 64) input")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=10)
    p.set_defaults(run=cmd_time_model)
    return parser.parse_args(argv)


def main(argv):
    global USE_TORCHVGGISH
    args = parse_args(argv)
    if USE_TORCHVGGISH:
        try:
            import torchvggish  # noqa: F401
        except ImportError:
            USE_TORCHVGGISH = False
            print("reference.py: VGGISH_REFERENCE=torchvggish, but torchvggish does not import: using the built-in code", file=sys.stderr)
    if args.threads is not None:
        if args.threads < 1:
            raise ReferenceError("--threads must be at least 1")
        import torch

        torch.set_num_threads(args.threads)
    print(json.dumps(args.run(args)))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ReferenceError as e:
        print(f"reference.py: error: {e}", file=sys.stderr)
        sys.exit(1)
