"""ONNX export of the course's networks, and a runner for exported files (optional extra).

An exported ``.onnx`` file runs without PyTorch (ONNX Runtime, in a browser, on a phone),
and on a CPU ONNX Runtime is also the fastest way to apply a network: see
:mod:`nst_utils.networks`. Needs ``pip install "nst-course[onnx]"`` (onnx, onnxscript,
onnxruntime).

The exporter is ``torch.onnx.export(..., dynamo=True)``: the ``torch.export``-based one,
PyTorch's default since 2.9 (it needs onnxscript). The older TorchScript exporter
(``dynamo=False``) also works but warns that it is deprecated. Batch, height and width are
dynamic: one file serves every image size.

Two kinds take a second input, ``style``, beside ``images``: a multi-style network
(:mod:`nst_utils.multistyle`) its (1, K) style weights, an AdaIN network
(:mod:`nst_utils.adain`) a (1, 3, h, w) style image of any size (its VGG encoder travels in
the file, float32).

What a file is travels with it, as ONNX metadata (``metadata_props``, keys ``nst_course.*``):
the model kind (``fast_style``, ``super_resolution``, ``document``, ``multistyle``,
``adain``), the network spec, the scale factor (output side / input side), the inputs
(float32 RGB in [0, 1]), a multi-style model's style names and the course version.
:class:`OnnxNetwork` reads them back and, asked for a kind, refuses another kind as a
``.pth`` model file is refused. A file without them (exported elsewhere, or before the
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
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

from . import __version__
from .checkpoints import KIND_NAMES, kind_phrase
from .errors import BadInputError, CheckpointError, NSTError
from .files import atomic_write
from .images import check_images
from .networks import MIN_SIDE, prepare_for_inference

DEFAULT_OPSET = 18  # the dynamo exporter's own default, supported by ONNX Runtime >= 1.14
TOLERANCE = 1e-3  # largest allowed |ONNX Runtime - PyTorch| difference, in [0, 1] pixel units
META = "nst_course."  # prefix of the metadata keys the course writes
INPUT = "images: float32 (N, 3, H, W), RGB in [0, 1], H and W >= 5"
STYLE_INPUTS = {  # kind -> what its second input, "style", holds
    "multistyle": "style: float32 (1, K) weights of the K styles, >= 0, summing to 1",
    "adain": "style: float32 (1, 3, h, w) style image, RGB in [0, 1], h and w >= 16",
}


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


def _run(
    session, images: torch.Tensor, what: str = "OnnxNetwork", style: torch.Tensor | None = None
) -> torch.Tensor:
    """The session's raw (unclamped) output for (N, 3, H, W) ``images`` (and the second
    input ``style``, for the graphs that take one), on the CPU. ONNX Runtime running out of
    memory raises MemoryError; its other failures CheckpointError naming ``what``."""
    x = check_images(images, "OnnxNetwork", MIN_SIDE, values=True).detach().to("cpu", torch.float32)
    names = [i.name for i in session.get_inputs()]
    feed = {names[0]: x.contiguous().numpy()}
    if style is not None:
        feed[names[1]] = style.detach().to("cpu", torch.float32).contiguous().numpy()
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
    styles: Sequence[str] | None = None,
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

    Two networks take a second input, named ``style``. A
    :class:`~nst_utils.multistyle.MultiStyleNet` takes its style weights, (1, K) floats
    (a one-hot row is one style, other convex rows are blends): one file holds every style
    and blend, as the ``.pth`` model does; the other way, baking one choice in with
    :class:`~nst_utils.multistyle.FixedStyle`, would need a file per choice (a
    ``FixedStyle`` exports as a one-input network, for whoever wants that). ``styles``
    (the style names, in index order) is recorded with it. An
    :class:`~nst_utils.adain.AdaINNet` takes a (1, 3, h, w) style image of any size and
    runs the paper's plain pass (alpha 1, one style); its encoder goes into the file.
    The check uses a second input of another size too; ``kind`` defaults to
    ``"multistyle"`` and ``"adain"`` for these networks.
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
    second = _style_input(getattr(net, "module", net), example_size)
    kind = kind or (second[0] if second else None)
    check_style = None if second is None else second[2]
    with torch.no_grad():
        expected = model(check) if second is None else model(check, check_style)
    if not torch.isfinite(expected).all():
        raise NSTError(
            f"ONNX export of {type(net).__name__}: its output holds NaN or infinite values "
            f"(damaged weights); nothing was written to {path}."
        )
    dynamic = torch.export.Dim.DYNAMIC
    images = {0: dynamic, 2: dynamic, 3: dynamic}
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            (torch.rand(2, 3, height, width), *([] if second is None else [second[1]])),
            dynamo=True,  # batch 2 above: a batch of 1 would be fixed
            input_names=["images", *([] if second is None else ["style"])],
            output_names=["output"],
            dynamic_shapes=(images,) if second is None else (images, second[3]),
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
        **({"style_input": STYLE_INPUTS[second[0]]} if second else {}),
        **({"styles": json.dumps(list(styles))} if styles is not None else {}),
        **({"network": json.dumps(spec)} if isinstance(spec, dict) else {}),
    }
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = META + key, value
    data = proto.SerializeToString()

    actual = _run(_session(data, "the exported model"), check, style=check_style)
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


def _style_input(net: nn.Module, example_size: tuple[int, int]) -> tuple | None:
    """``(kind, example, check, dynamic shape)`` of the second input ``style`` that a
    multi-style or AdaIN network takes; None for a network of one input."""
    from .adain import AdaINNet
    from .multistyle import MultiStyleNet

    if isinstance(net, MultiStyleNet):
        example = torch.full((1, net.styles), 1 / net.styles)
        mix = torch.rand(1, net.styles) + 0.1
        return "multistyle", example, mix / mix.sum(), None
    if isinstance(net, AdaINNet):
        height, width = example_size
        example, check = torch.rand(1, 3, height, width), torch.rand(1, 3, height + 5, width + 9)
        return "adain", example, check, {2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    return None


class OnnxNetwork:
    """An exported network run by ONNX Runtime on the CPU: (N, 3, H, W) [0, 1] -> tensor.

    ``OnnxNetwork(path)(images)`` returns the output clamped to [0, 1], like
    :func:`nst_utils.networks.infer`, on the input's device (computing happens on the CPU
    with ``torch.get_num_threads()`` threads, read when the file is opened).

    ``kind`` (one kind or a tuple, as for :func:`nst_utils.checkpoints.read_file`): the
    file's recorded kind must be one of them, else :class:`CheckpointError`; a file
    without the course's metadata is accepted with a warning that says what is assumed.
    Opening refuses a graph that does not take one (N, 3, H, W) float image input (plus,
    for a multi-style or AdaIN model and only for them, a second one, ``style``) and
    weights that hold NaN or infinite values; every call checks the images (as
    :func:`~nst_utils.networks.infer` does) and the output: finite, (N, 3, H', W') with
    the recorded scale (or, for a file without metadata, an integer one).
    ``.metadata`` holds the ``nst_course.*`` entries (without the prefix), ``.kind`` and
    ``.scale`` (None where unknown); a multi-style model's ``.styles`` (K) and
    ``.style_names`` (None where unknown) say what its ``style`` weights choose from.
    ``runner(images, style)``: ``style`` is (1, K) weights
    (:func:`nst_utils.multistyle.style_weights`) or a (1, 3, h, w) style image in [0, 1].
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
        self._check_style_input()
        kinds = (kind,) if isinstance(kind, str) else kind
        if kinds is not None and self.kind is not None and self.kind not in kinds:
            found, needed = kind_phrase(self.kind), kind_phrase(kinds)
            raise CheckpointError(
                f"{path} is the ONNX export of {found}, but {needed} is needed here."
            )
        if kinds is not None and self.kind is None:
            if self.scale is None and "super_resolution" not in kinds:
                self.scale = 1  # the kinds asked for keep the image size
            needed = kind_phrase(kinds)
            keeps = " and keeps its size" if self.scale == 1 else ""
            warnings.warn(
                f"{path} carries no nst-course metadata (exported elsewhere or by an older "
                f"version): assuming {needed} that takes one (N, 3, H, W) RGB image in "
                f"[0, 1]{keeps}. Export it again with nst export to record what it is.",
                stacklevel=2,
            )
        self._check_weights()

    def _check_graph(self) -> None:
        inputs = self.session.get_inputs()
        shape = inputs[0].shape if len(inputs) in (1, 2) else []
        channels_ok = len(shape) == 4 and (shape[1] in (3, None) or isinstance(shape[1], str))
        style_ok = len(inputs) == 1 or (inputs[1].name == "style"
                                        and inputs[1].type == "tensor(float)")  # fmt: skip
        if (not channels_ok or not style_ok or inputs[0].type != "tensor(float)"
                or not self.session.get_outputs()):  # fmt: skip
            found = ", ".join(f"{i.name} {i.type} {list(i.shape)}" for i in inputs) or "none"
            raise CheckpointError(
                f"{self.path}: the ONNX graph's inputs are {found}; the course runs graphs "
                "with one input, float (N, 3, H, W) images, and for multi-style and AdaIN "
                "models a second one, 'style' (as nst export writes them)."
            )

    def _check_style_input(self) -> None:
        """A second input ``style`` exactly where the recorded kind takes one; a
        multi-style model's style count and names."""
        inputs = self.session.get_inputs()
        takes_style = len(inputs) == 2
        if takes_style != (self.kind in STYLE_INPUTS):
            what = "a second input, 'style'," if takes_style else "no 'style' input,"
            kind = kind_phrase(self.kind) if self.kind else "no kind"
            raise CheckpointError(
                f"{self.path}: the ONNX graph takes {what} but its metadata records {kind}; "
                "export it again with nst export."
            )
        self.styles = self.style_names = None
        if self.kind == "multistyle":
            count = inputs[1].shape[-1] if len(inputs[1].shape) == 2 else None
            self.styles = count if isinstance(count, int) and count >= 1 else None
            try:
                names = json.loads(self.metadata.get("styles", "null"))
            except ValueError:
                names = None
            if isinstance(names, list) and len(names) == self.styles:
                self.style_names = [str(n) for n in names]
            if self.styles is None:
                raise CheckpointError(
                    f"{self.path}: the ONNX graph's 'style' input has shape "
                    f"{list(inputs[1].shape)}, not (1, K) weights; export it again with nst export."
                )

    def _check_style(self, style: torch.Tensor | None) -> None:
        """Refuse a ``style`` the graph does not take, or lacks, or of the wrong shape."""
        if (style is None) != (self.kind not in STYLE_INPUTS):
            need = "needs style=" if style is None else "takes no style="
            what = STYLE_INPUTS.get(self.kind, "it takes images only")
            raise BadInputError(f"{self.path}: this ONNX graph {need} ({what}).")
        if self.kind == "multistyle":
            ok = isinstance(style, torch.Tensor) and tuple(style.shape) == (1, self.styles)
            if not ok or not (torch.isfinite(style).all() and (style >= 0).all()):
                raise BadInputError(
                    f"{self.path}: style must be (1, {self.styles}) finite weights >= 0 "
                    "(see nst_utils.multistyle.style_weights)."
                )
        elif self.kind == "adain":
            check_images(style, f"{self.path} (style)", 16, values=True)

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

    def __call__(self, images: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        self._check_style(style)
        out = _run(self.session, images, str(self.path), style)
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
