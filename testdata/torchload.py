"""torch.load for the files these scripts are given: their own fixtures and the published VGGish files."""

import inspect

import torch


def load(path, **kwargs):
    """torch.load(path) of a trusted file, unpickling whatever it holds.

    Since torch 2.6, torch.load defaults to weights_only=True, which refuses the numpy arrays that
    torchvggish's PCA parameters (and the fixtures made like them) are saved as. torch before 1.13 has
    no weights_only argument and always unpickles everything.
    """
    if "weights_only" in inspect.signature(torch.load).parameters:
        kwargs["weights_only"] = False
    return torch.load(path, **kwargs)
