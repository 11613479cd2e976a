"""Pick the compute device (CUDA, then MPS, then CPU), seed everything, report versions."""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch

from .config import DEVICE_ENV, quick_mode, weights_setting
from .errors import BadInputError
from .options import check_whole
from .settings import MAX_SEED


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU.

    ``prefer`` (or the ``NST_DEVICE`` environment variable) forces a choice: ``cpu``,
    ``cuda``, ``cuda:1`` or ``mps``.
    """
    prefer = prefer or os.environ.get(DEVICE_ENV) or None
    if prefer:
        name = str(prefer).strip().lower()
        kind, _, index = name.partition(":")
        available = {
            "cpu": True,
            "cuda": torch.cuda.is_available(),
            "mps": torch.backends.mps.is_available(),
        }
        if kind not in available or (index and not (kind == "cuda" and index.isdigit())):
            raise BadInputError(
                f"device {prefer!r} is unknown: use 'cuda', 'cuda:N', 'mps' or 'cpu'."
            )
        if not available[kind] or (index and int(index) >= torch.cuda.device_count()):
            raise BadInputError(
                f"device {prefer!r} was asked for (argument or {DEVICE_ENV}) but is not "
                "available on this machine; unset it to choose automatically."
            )
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_seed(seed: object, name: str = "seed") -> int:
    """``seed`` if it is a whole number in 0 .. 2**32 - 1, else a one-line error."""
    return check_whole(name, seed, 0, MAX_SEED)


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch's global generators so a notebook's runs repeat.

    Only notebooks call this (through :func:`setup`); the package's own functions use
    their own seeded generators and never touch the global ones.
    """
    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def describe(device: torch.device) -> str:
    """One readable paragraph: versions, device, threads, quick mode and weights policy."""
    import torchvision

    if device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    elif device.type == "mps":
        where = "mps (Apple GPU)"
    else:
        where = f"cpu ({torch.get_num_threads()} threads)"
    return (
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}\n"
        f"device: {where}\n"
        f"quick mode: {'on' if quick_mode() else 'off'}; VGG weights: {weights_setting()}"
    )


def setup(seed: int = 0, verbose: bool = True) -> torch.device:
    """Pick the device, seed everything and (by default) print what was chosen."""
    device = pick_device()
    seed_everything(seed)
    if verbose:
        print(describe(device))
    return device
