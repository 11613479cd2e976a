"""Model and checkpoint files: what a trained network is, written atomically, read safely.

A file is a plain dict that ``torch.load(..., weights_only=True)`` can read (tensors,
numbers, strings, lists, dicts: no pickled code):

* ``format``: ``"nst-course"``; ``file``: ``"model"`` (what ``--model`` options take) or
  ``"checkpoint"`` (a training run's state, to resume);
* ``kind``: the method, e.g. ``"fast_style"``, ``"super_resolution"``, ``"document"``;
* ``version``: the course version that wrote it; ``network``: the spec that rebuilds the
  network (:func:`nst_utils.networks.build_network`); ``config``: the settings it was
  trained with; ``state_dict``: the weights; ``extra``: anything else the method keeps
  (a thumbnail of the style, training time, data description);
* checkpoints add ``step``, ``optimizer`` and ``history`` (the loss terms of every step).

Loading refuses, with one line naming the file: a missing, truncated or corrupt file, a
file that is not the course's (a bare state dict, VGG weights), and a model of another
kind than the caller needs.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .errors import BadInputError, CheckpointError
from .files import atomic_write, load_problem
from .networks import build_network

FORMAT = "nst-course"
KIND_NAMES = {
    "fast_style": "fast style transfer model (nst train / nst transform)",
    "super_resolution": "super-resolution model (nst train-sr / nst enhance)",
    "document": "document enhancement model (nst train-document / nst enhance)",
    "multistyle": "multi-style model (nst train-multistyle / nst transform)",
    "adain": "AdaIN any-style model (nst train-adain / nst transform)",
}


def kind_phrase(kinds: str | tuple[str, ...] | None) -> str:
    """``"a fast style transfer model (...)"``, ``"an AdaIN ..."``; several kinds joined
    by "or": how messages name what a file is and what is needed."""
    kinds = (kinds,) if isinstance(kinds, str) or kinds is None else kinds
    names = [KIND_NAMES.get(k, repr(k)) for k in kinds]
    return " or ".join(("an " if n[:1].lower() in "aeiou" else "a ") + n for n in names)


def _save(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    path = Path(path).expanduser()
    buffer = io.BytesIO()
    torch.save(record, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
    return path


def _cpu_state(net: nn.Module) -> dict[str, torch.Tensor]:
    net = getattr(net, "module", net)  # DistributedDataParallel wraps the network
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def save_model(
    path: str | os.PathLike,
    net: nn.Module,
    *,
    kind: str,
    config: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a trained network, with the settings it was trained with, atomically."""
    record = {
        "format": FORMAT,
        "file": "model",
        "kind": kind,
        "version": __version__,
        "network": getattr(net, "module", net).spec,
        "config": config,
        "state_dict": _cpu_state(net),
        "extra": extra or {},
    }
    return _save(path, record)


def save_checkpoint(
    path: str | os.PathLike,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    kind: str,
    step: int,
    config: dict[str, Any],
    history: list[dict[str, float]],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write everything needed to resume training at ``step`` (steps done so far)."""
    record = {
        "format": FORMAT,
        "file": "checkpoint",
        "kind": kind,
        "version": __version__,
        "network": getattr(net, "module", net).spec,
        "config": config,
        "state_dict": _cpu_state(net),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "history": history,
        "extra": extra or {},
    }
    return _save(path, record)


def read_file(path: str | os.PathLike, kind: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """The record stored in a course model or checkpoint file, checked; ``kind`` (one kind
    or a tuple of accepted kinds) if given must match. Raises :class:`CheckpointError` (or
    :class:`BadInputError` for a missing file) with one line saying what is wrong and what
    to do."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BadInputError(f"{path}: no such model file. Check the path.")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise CheckpointError(f"{path}: permission denied; make the file readable.") from None
    except Exception as err:
        raise CheckpointError(
            f"{path}: not a readable model file ({load_problem(path, err)}); it may be "
            "truncated or corrupt: copy or train it again."
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        what = (
            "a bare state dict or another program's file"
            if isinstance(record, dict)
            else (f"a {type(record).__name__}")
        )
        raise CheckpointError(
            f"{path}: not a model file of this course ({what}); give a file written by "
            "nst train (or its notebook)."
        )
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and record.get("kind") not in kinds:
        found, needed = kind_phrase(record.get("kind")), kind_phrase(kinds)
        raise CheckpointError(f"{path} is {found}, but {needed} is needed here.")
    missing = [k for k in ("network", "state_dict", "config") if k not in record]
    if missing:
        raise CheckpointError(f"{path}: the file lacks {missing}; it is damaged.")
    return record


def load_model(
    path: str | os.PathLike,
    kind: str | tuple[str, ...] | None = None,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network stored in a model (or checkpoint) file: ``(net, record)``.

    The network is in eval mode on ``device``; ``record`` holds the config and extras.
    """
    record = read_file(path, kind)
    state = record["state_dict"]
    try:
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise TypeError("state_dict is not a dict of tensors")
        with torch.device("meta"):  # the described network's shapes, without memory
            shell = build_network(record["network"])
        _check_shapes(shell.state_dict(), state)
        net = build_network(record["network"])
        net.load_state_dict(state)
    except (BadInputError, RuntimeError, TypeError, KeyError) as err:
        first = (str(err).strip() or type(err).__name__).splitlines()[0][:200].rstrip(".")
        raise CheckpointError(
            f"{path}: its weights do not fit the network it describes ({first}); "
            "the file is damaged or from an incompatible version."
        ) from None
    bad = [name for name, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise CheckpointError(
            f"{path}: {len(bad)} weight tensor(s) hold NaN or infinite values (first: "
            f"{bad[0]}); the training diverged or the file is damaged: use an earlier "
            "checkpoint or train again."
        )
    return net.to(device).eval(), record


def _check_shapes(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> None:
    """Raise RuntimeError unless ``found`` has exactly the tensors (names, shapes) of
    ``expected``: checked before the network is built for real, so a file cannot make
    it allocate more than the weights it holds."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise RuntimeError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    for name, tensor in expected.items():
        if tuple(found[name].shape) != tuple(tensor.shape):
            raise RuntimeError(
                f"{name} is {tuple(found[name].shape)}, the network has {tuple(tensor.shape)}"
            )
