"""ONNX export of the course's networks, and a runner for exported files (optional extra).

An exported ``.onnx`` file runs without PyTorch (ONNX Runtime, in a browser, on a phone),
and on a CPU ONNX Runtime is also the fastest way to apply a network: see
:mod:`nst_utils.networks`. Needs ``pip install "nst-course[onnx]"`` (onnx, onnxscript,
onnxruntime).

The exporter is ``torch.onnx.export(..., dynamo=True)``: the ``torch.export``-based one,
PyTorch's default since 2.9 (it needs onnxscript). The older TorchScript exporter
(``dynamo=False``) also works but warns that it is deprecated. Batch, height and width are
dynamic: one file serves every image size.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from .errors import BadInputError, CheckpointError, NSTError
from .files import atomic_write
from .networks import MIN_SIDE, check_images, prepare_for_inference

DEFAULT_OPSET = 18  # the dynamo exporter's own default, supported by ONNX Runtime >= 1.14
TOLERANCE = 1e-3  # largest allowed |ONNX Runtime - PyTorch| difference, in [0, 1] pixel units


def _require(*modules: str) -> list[ModuleType]:
    """Import the optional ONNX packages, or say how to install them."""
    loaded = []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError:
            raise BadInputError(
                f"ONNX support needs the optional package {name!r}, which is not installed; "
                'run: pip install "nst-course[onnx]"'
            ) from None
    return loaded


def _session(model: bytes | str, what: str):
    """An ONNX Runtime CPU session using as many threads as PyTorch does."""
    (ort,) = _require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's own exception types are not importable stably
        raise CheckpointError(
            f"{what} is not an ONNX model ONNX Runtime can load ({err}); export it again "
            "with nst_utils.export.export_onnx."
        ) from None


def _run(session, images: torch.Tensor) -> torch.Tensor:
    """The session's raw (unclamped) output for (N, 3, H, W) ``images``, on the CPU."""
    x = check_images(images, "OnnxNetwork").detach().to("cpu", torch.float32).contiguous()
    feed = {session.get_inputs()[0].name: x.numpy()}
    return torch.from_numpy(session.run(None, feed)[0])


def export_onnx(
    net: nn.Module,
    path: str | os.PathLike,
    example_size: tuple[int, int] = (64, 64),
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export ``net`` (an (N, 3, H, W) -> (N, 3, H', W') network) to an ONNX file at ``path``.

    The graph is traced on a (2, 3, *example_size) input with dynamic batch, height and
    width (so the example size hardly matters), then checked: ONNX Runtime must match
    PyTorch within 1e-3 on a random image of another, odd size. Only a checked model is
    written (atomically). Exports the CPU copy that
    :func:`~nst_utils.networks.prepare_for_inference` makes (eval mode, low-resolution
    upsampling convs); ``net`` itself is left as it was. Returns the path.
    """
    _require("onnx", "onnxscript", "onnxruntime")
    if (
        not isinstance(example_size, (tuple, list))
        or len(example_size) != 2
        or not all(isinstance(s, int) and s >= MIN_SIDE for s in example_size)
    ):
        raise BadInputError(
            f"example_size={example_size!r}: give (height, width) in px, each >= {MIN_SIDE}."
        )
    model = prepare_for_inference(net).cpu().float()
    height, width = example_size
    dynamic = torch.export.Dim.DYNAMIC
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            (torch.rand(2, 3, height, width),),  # batch 2: a batch of 1 would be fixed
            dynamo=True,
            input_names=["images"],
            output_names=["output"],
            dynamic_shapes=({0: dynamic, 2: dynamic, 3: dynamic},),
            opset_version=opset,
            verbose=False,
        )
    data = program.model_proto.SerializeToString()

    check = torch.rand(1, 3, height + 1 + height % 2, width + 3 + width % 2)  # odd sides
    with torch.no_grad():
        expected = model(check)
    actual = _run(_session(data, "the exported model"), check)
    error = (actual - expected).abs().max().item()
    if not error <= TOLERANCE:
        raise NSTError(
            f"ONNX export of {type(net).__name__}: ONNX Runtime differs from PyTorch by "
            f"{error:.2g} (more than {TOLERANCE}); nothing was written to {path}. Try another "
            "opset, or report it with your torch and onnxruntime versions."
        )
    path = Path(path)
    with atomic_write(path) as handle:
        handle.write(data)
    return path


class OnnxNetwork:
    """An exported network run by ONNX Runtime on the CPU: (N, 3, H, W) [0, 1] -> tensor.

    ``OnnxNetwork(path)(images)`` returns the output clamped to [0, 1], like
    :func:`nst_utils.networks.infer`, on the input's device (computing happens on the CPU
    with ``torch.get_num_threads()`` threads, read when the file is opened).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        _require("onnxruntime")
        path = Path(path).expanduser()
        if not path.is_file():
            raise BadInputError(f"ONNX file {path} does not exist; export one with export_onnx.")
        self.path = path
        self.session = _session(str(path), str(path))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return _run(self.session, images).clamp_(0, 1).to(images.device)

    def __repr__(self) -> str:
        return f"OnnxNetwork({str(self.path)!r})"
