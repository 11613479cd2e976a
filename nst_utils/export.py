"""ONNX export of the course's networks, and a runner for exported files (optional extra).

An exported ``.onnx`` file runs without PyTorch (ONNX Runtime, in a browser, on a phone),
and on a CPU ONNX Runtime is also the fastest way to apply a network: see
:mod:`nst_utils.networks`. Needs ``pip install "nst-course[onnx]"`` (onnx, onnxscript,
onnxruntime).

The exporter is ``torch.onnx.export(..., dynamo=True)``: the ``torch.export``-based one,
PyTorch's default since 2.9 (it needs onnxscript). The older TorchScript exporter
(``dynamo=False``) also works but warns that it is deprecated. Batch, height and width are
dynamic: one file serves every image size.

What a file is travels with it, as ONNX metadata (``metadata_props``, keys ``nst_course.*``):
the model kind (``fast_style``, ``super_resolution``, ``document``), the network spec, the
scale factor (output side / input side), the input (float32 RGB in [0, 1]) and the course
version. :class:`OnnxNetwork` reads them back and, asked for a kind, refuses another kind as
a ``.pth`` model file is refused. A file without them (exported elsewhere, or before the
course wrote them) is run on an assumption that a warning states: a model of the kind asked
for, with one input (N, 3, H, W) of float32 RGB in [0, 1] and an image output (of the same
size unless a super-resolution model is accepted); the output's shape is checked at every
call, so an upsampler without metadata is still refused by ``nst transform``.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

from . import __version__
from .checkpoints import KIND_NAMES
from .errors import BadInputError, CheckpointError, NSTError
from .files import atomic_write
from .networks import MIN_SIDE, check_images, prepare_for_inference

DEFAULT_OPSET = 18  # the dynamo exporter's own default, supported by ONNX Runtime >= 1.14
TOLERANCE = 1e-3  # largest allowed |ONNX Runtime - PyTorch| difference, in [0, 1] pixel units
META = "nst_course."  # prefix of the metadata keys the course writes
INPUT = "images: float32 (N, 3, H, W), RGB in [0, 1], H and W >= 5"


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
    options.log_severity_level = 4  # fatal only: errors come back as exceptions
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's own exception types are not importable stably
        raise CheckpointError(
            f"{what} is not an ONNX model ONNX Runtime can load ({err}); export it again "
            "with nst_utils.export.export_onnx."
        ) from None


def _run(session, images: torch.Tensor, what: str = "OnnxNetwork") -> torch.Tensor:
    """The session's raw (unclamped) output for (N, 3, H, W) ``images``, on the CPU.
    ONNX Runtime running out of memory raises MemoryError; its other failures
    CheckpointError naming ``what``."""
    x = check_images(images, "OnnxNetwork", values=True).detach().to("cpu", torch.float32)
    feed = {session.get_inputs()[0].name: x.contiguous().numpy()}
    try:
        return torch.from_numpy(session.run(None, feed)[0])
    except Exception as err:  # onnxruntime's exception types are not importable stably
        text = (str(err).strip() or type(err).__name__).splitlines()[0][:300]
        if "alloc" in text.lower() or "memory" in text.lower():
            raise MemoryError(f"ONNX Runtime ran out of memory ({text})") from None
        raise CheckpointError(f"{what}: ONNX Runtime failed on the images ({text}).") from None


def export_onnx(
    net: nn.Module,
    path: str | os.PathLike,
    example_size: tuple[int, int] = (64, 64),
    opset: int = DEFAULT_OPSET,
    *,
    kind: str | None = None,
) -> Path:
    """Export ``net`` (an (N, 3, H, W) -> (N, 3, H', W') network) to an ONNX file at ``path``.

    The graph is traced on a (2, 3, *example_size) input with dynamic batch, height and
    width (so the example size hardly matters), then checked: ONNX Runtime must match
    PyTorch within 1e-3 on a random image of another, odd size. Only a checked model is
    written (atomically). Exports the CPU copy that
    :func:`~nst_utils.networks.prepare_for_inference` makes (eval mode, low-resolution
    upsampling convs); ``net`` itself is left as it was. Returns the path.

    The file's metadata records ``kind`` (the model file's kind: ``nst export`` passes it;
    a :class:`~nst_utils.networks.SuperResolutionNet` is ``"super_resolution"`` without
    it), the network's spec, the scale factor measured in the check and the input range.
    """
    if kind is not None and kind not in KIND_NAMES:
        raise BadInputError(f"kind={kind!r}: use one of {sorted(KIND_NAMES)} or None.")
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
    check = torch.rand(1, 3, height + 1 + height % 2, width + 3 + width % 2)  # odd sides
    with torch.no_grad():
        expected = model(check)
    if not torch.isfinite(expected).all():
        raise NSTError(
            f"ONNX export of {type(net).__name__}: its output holds NaN or infinite values "
            f"(damaged weights); nothing was written to {path}."
        )
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
    spec = getattr(getattr(net, "module", net), "spec", None)
    if kind is None and isinstance(spec, dict) and spec.get("name") == "super_resolution":
        kind = "super_resolution"
    metadata = {
        "format": "nst-course",
        "version": __version__,
        "input": INPUT,
        "scale": str(expected.shape[-1] // check.shape[-1]),
        **({"kind": kind} if kind else {}),
        **({"network": json.dumps(spec)} if isinstance(spec, dict) else {}),
    }
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = META + key, value
    data = proto.SerializeToString()

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

    ``kind`` (one kind or a tuple, as for :func:`nst_utils.checkpoints.read_file`): the
    file's recorded kind must be one of them, else :class:`CheckpointError`; a file
    without the course's metadata is accepted with a warning that says what is assumed.
    Opening refuses a graph that does not take one (N, 3, H, W) float image input and
    weights that hold NaN or infinite values; every call checks the images (as
    :func:`~nst_utils.networks.infer` does) and the output: finite, (N, 3, H', W') with
    the recorded scale (or, for a file without metadata, an integer one).
    ``.metadata`` holds the ``nst_course.*`` entries (without the prefix), ``.kind`` and
    ``.scale`` (None where unknown).
    """

    def __init__(self, path: str | os.PathLike, kind: str | tuple[str, ...] | None = None) -> None:
        _require("onnxruntime")
        path = Path(path).expanduser()
        if not path.is_file():
            raise BadInputError(f"ONNX file {path} does not exist; export one with export_onnx.")
        self.path = path
        self.session = _session(str(path), str(path))
        self._check_graph()
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {k[len(META) :]: v for k, v in meta.items() if k.startswith(META)}
        self.kind = self.metadata.get("kind")
        scale = self.metadata.get("scale", "")
        self.scale = int(scale) if scale.isdigit() and int(scale) >= 1 else None
        kinds = (kind,) if isinstance(kind, str) else kind
        if kinds is not None and self.kind is not None and self.kind not in kinds:
            found = KIND_NAMES.get(self.kind, repr(self.kind))
            needed = " or a ".join(KIND_NAMES.get(k, k) for k in kinds)
            raise CheckpointError(
                f"{path} is the ONNX export of a {found}, but a {needed} is needed here."
            )
        if kinds is not None and self.kind is None:
            if self.scale is None and "super_resolution" not in kinds:
                self.scale = 1  # the kinds asked for keep the image size
            needed = " or a ".join(KIND_NAMES.get(k, k) for k in kinds)
            keeps = " and keeps its size" if self.scale == 1 else ""
            warnings.warn(
                f"{path} carries no nst-course metadata (exported elsewhere or by an older "
                f"version): assuming a {needed} that takes one (N, 3, H, W) RGB image in "
                f"[0, 1]{keeps}. Export it again with nst export to record what it is.",
                stacklevel=2,
            )
        self._check_weights()

    def _check_graph(self) -> None:
        inputs = self.session.get_inputs()
        shape = inputs[0].shape if len(inputs) == 1 else []
        channels_ok = len(shape) == 4 and (shape[1] in (3, None) or isinstance(shape[1], str))
        if not channels_ok or inputs[0].type != "tensor(float)" or not self.session.get_outputs():
            found = ", ".join(f"{i.name} {i.type} {list(i.shape)}" for i in inputs) or "none"
            raise CheckpointError(
                f"{self.path}: the ONNX graph's inputs are {found}; the course runs graphs "
                "with one input, float (N, 3, H, W) images (as nst export writes them)."
            )

    def _check_weights(self) -> None:
        """Refuse float initializers that hold NaN or inf (needs the onnx package)."""
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError:  # the output is still checked at every call
            return
        try:
            model = onnx.load(str(self.path), load_external_data=False)
        except Exception:  # ONNX Runtime read it: leave the rest to the output checks
            return
        for tensor in model.graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                continue
            values = numpy_helper.to_array(tensor)
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                raise CheckpointError(
                    f"{self.path}: the weights hold NaN or infinite values ({tensor.name}); "
                    "the file is damaged: export it again from a good model."
                )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = _run(self.session, images, str(self.path))
        n, _, h, w = images.shape
        scale = self.scale or (max(1, out.shape[-1] // w) if out.dim() == 4 else 1)
        if tuple(out.shape) != (n, 3, h * scale, w * scale):
            raise CheckpointError(
                f"{self.path}: the ONNX graph gave {tuple(out.shape)} for images "
                f"{tuple(images.shape)}; the course expects (N, 3, H, W) times an integer "
                "scale (as nst export writes it)."
            )
        if not torch.isfinite(out).all():
            raise CheckpointError(
                f"{self.path}: the output holds NaN or infinite values: the weights are "
                "damaged; export it again from a good model."
            )
        return out.clamp_(0, 1).to(images.device)

    def __repr__(self) -> str:
        return f"OnnxNetwork({str(self.path)!r})"
