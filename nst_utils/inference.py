"""Apply any course model file: :func:`load_any_model` turns a trained ``.pth`` model or
an ONNX export into a function (N, 3, H, W) -> (N, 3, H', W'), and :func:`check_fits`
refuses, before the network runs, an image too small for it or whose output would not fit
in an image or in the free memory (its :func:`network_footprint`: scale and widest stage).
``nst transform`` and ``nst enhance`` (:mod:`nst_utils.commands`) use them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import BadInputError, CheckpointError, NSTError
from .images import MAX_PIXELS
from .networks import MIN_SIDE

Footprint = tuple[int | None, int | None]  # (scale, channels of the widest full-size stage)


def load_any_model(
    path: str | os.PathLike,
    kind: str | tuple[str, ...],
    device: torch.device | str = "cpu",
    compile: bool = False,
    runner: Callable | None = None,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], Footprint, torch.device]:
    """``(apply, footprint, device)``: a function (N, 3, H, W) -> (N, 3, H', W') from a
    course model file of ``kind`` (e.g. ``"fast_style"``, or a tuple of kinds) or an ONNX
    export (``runner``, if already open), its :func:`network_footprint` and where it runs (an ONNX
    export: the CPU). ``compile``: see :func:`nst_utils.networks.prepare_for_inference`."""
    path, device = Path(path), torch.device(device)
    if path.suffix.lower() == ".onnx":
        refuse_compile_onnx(path, compile)
        from .export import OnnxNetwork

        runner = runner or OnnxNetwork(path, kind)
        try:
            spec = json.loads(runner.metadata.get("network", "null"))
        except ValueError:
            spec = None
        return runner, network_footprint(spec, runner.scale), torch.device("cpu")
    from .checkpoints import load_model

    net, record = load_model(path, kind, device)
    return applier(net, path, device, compile), network_footprint(record["network"]), device


def refuse_compile_onnx(path: Path, compile: bool) -> None:
    """``compile`` applies to PyTorch models only: refuse it for an ONNX file."""
    if compile:
        raise BadInputError(f"--compile: {path.name} is an ONNX model, which ONNX Runtime "
                            "runs; --compile applies to .pth models.")  # fmt: skip


def applier(
    net: torch.nn.Module, path: Path, device: torch.device, compile: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """(N, 3, H, W) -> the network's output, clamped, on the CPU
    (:func:`nst_utils.networks.infer`); a damaged network's failure names ``path``."""
    from .networks import infer, prepare_for_inference

    if compile:  # PyTorch's CUDA builds log "No CUDA runtime is found" when compiling on a CPU
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    fast = prepare_for_inference(net, compile=compile)

    def apply(image: torch.Tensor) -> torch.Tensor:
        try:
            return infer(fast, image.to(device)).cpu()
        except NSTError as err:
            if isinstance(err, BadInputError):
                raise
            raise CheckpointError(f"{path}: {err}") from None

    return apply


def network_footprint(spec: object, scale: int | None = None) -> Footprint:
    """(scale, channels of the widest full-resolution stage) of a network ``spec``; what
    a spec does not say is None."""
    kwargs = spec.get("kwargs", {}) if isinstance(spec, dict) else {}
    if isinstance(spec, dict) and spec.get("name") == "super_resolution":
        return kwargs.get("scale", scale), kwargs.get("channels")
    if isinstance(spec, dict) and spec.get("name") == "adain_decoder":
        return 1, 64  # encoder and decoder: 64 channels at full resolution
    if isinstance(spec, dict) and spec.get("name") in ("transformer", "multistyle_transformer"):
        channels = kwargs.get("channels")
        return 1, channels[0] if isinstance(channels, (list, tuple)) and channels else None
    return scale, None


# Memory to apply a course network, per output pixel: float32 values of about four tensors
# as wide as the widest full-resolution stage alive at once, plus a few of 3 channels
# (above the measured peaks in benchmarks/README.md).
def needed_bytes(output_pixels: int, channels: int) -> int:
    """Bytes to apply a network whose widest full-resolution stage has ``channels``."""
    return 4 * (4 * channels + 16) * output_pixels


def free_memory(device: torch.device) -> int | None:
    """Bytes of memory free for a run on ``device`` (None where unknown): a GPU's free
    memory; on a CPU, Linux's MemAvailable, within a container's limit."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit.isdigit() and free is not None:
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return free


def check_fits(image: torch.Tensor, src: Path, footprint: Footprint, device: torch.device) -> None:
    """Refuse, before the network runs, an image too small for it or whose output would
    be larger than an image may be or than the free memory; say what would fit."""
    height, width = image.shape[-2:]
    if min(height, width) < MIN_SIDE:
        raise BadInputError(f"{src}: {width}x{height} px is smaller than the {MIN_SIDE}x"
                            f"{MIN_SIDE} px the network takes; enlarge it (--size).")  # fmt: skip
    scale, channels = footprint
    if scale is None:
        return  # an ONNX file that does not say: ONNX Runtime's own errors decide
    pixels = scale * scale * height * width
    need = needed_bytes(pixels, channels) if channels else 0
    free = free_memory(device) if need else None
    room = min(MAX_PIXELS / pixels, free / need if free else math.inf)
    if room >= 1:
        return
    times = f"x{scale} " if scale > 1 else ""
    what = f"the {times}output would be {scale * width}x{scale * height} px"
    if pixels > MAX_PIXELS:
        why = f"more than the {MAX_PIXELS / 1e6:.0f} MP an image may have"
    else:
        why = f"which needs about {need / 1e9:.1f} GB of memory; {free / 1e9:.1f} GB are free"
    fit = math.floor(max(height, width) * math.sqrt(room) * 0.95)
    way = f"--size {fit} makes it fit" if fit >= 16 else "give a much smaller image"
    raise BadInputError(f"{src}: {what}, {why}; {way} (or cut the image into parts).")
