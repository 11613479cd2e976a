"""Feed-forward image-to-image networks for the second half of the course.

* :class:`TransformerNet`: the image transformation network of Johnson et al. 2016 (arXiv
  1603.08155, supplementary Table 1) for fast style transfer, with instance normalisation
  (Ulyanov et al. 2016) and reflection padding; ``TransformerNet.lite()`` is a CPU-sized one.
* :class:`SuperResolutionNet`: the same paper's x4 / x8 super-resolution network.
* Building blocks: :class:`ConvLayer`, :class:`ResidualBlock`, :class:`UpsampleLayer`.
* :func:`build_network` rebuilds a network from its ``.spec`` (what a saved model stores).
* :func:`count_parameters`, :func:`describe_network`: sizes for tables.
* :func:`prepare_for_inference`, :func:`infer`: the fastest pure-PyTorch way to apply one
  (optionally compiled with ``torch.compile``).

Images are (N, 3, H, W) float tensors, RGB in [0, 1]. A network's output is linear by
default (``output="tanh"`` maps it into [0, 1], as fast style transfer's do); :func:`infer`
clamps it to [0, 1].
"""

from __future__ import annotations

import copy
import importlib
import inspect
import math
import os
import shutil
import sys
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import BadInputError, NSTError
from .images import check_images
from .options import check_choice, check_whole
from .settings import LITE, MAX_BLOCKS, MAX_CHANNELS, NORMS, SCALES, UPSAMPLE_MODES

# px: the smallest image side the networks take. Reflection padding must be smaller than what
# it pads: 4 px around a 9x9 conv, 1 px around a 3x3 conv at a quarter of the (padded) size.
MIN_SIDE = 5
MAX_KERNEL = 15  # the widest outer kernel (the paper: 9); the other bounds: nst_utils.settings
OUTPUTS = ("linear", "tanh")


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.BatchNorm2d(channels)


class ConvLayer(nn.Sequential):
    """Reflection padding + conv (k x k, stride s) + optional normalisation + optional ReLU.

    (N, C_in, H, W) -> (N, C_out, ceil(H / s), ceil(W / s)) for odd k. ``separable=True``
    replaces the conv by a depthwise k x k conv and a pointwise 1 x 1 conv (MobileNet style):
    about k*k times fewer multiply-adds when the channel counts are large. The conv has a
    bias only when no normalisation follows (a norm layer would cancel it).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        *,
        norm: str = "instance",
        relu: bool = True,
        separable: bool = False,
    ) -> None:
        check_choice("norm", norm, NORMS)
        bias = norm == "none"
        layers: OrderedDict[str, nn.Module] = OrderedDict(pad=nn.ReflectionPad2d(kernel_size // 2))
        if separable:
            layers["depthwise"] = nn.Conv2d(
                in_channels, in_channels, kernel_size, stride, groups=in_channels, bias=False
            )
            layers["pointwise"] = nn.Conv2d(in_channels, out_channels, 1, bias=bias)
        else:
            layers["conv"] = nn.Conv2d(in_channels, out_channels, kernel_size, stride, bias=bias)
        if norm != "none":
            layers["norm"] = _norm_layer(norm, out_channels)
        if relu:
            layers["relu"] = nn.ReLU(inplace=True)
        super().__init__(layers)


class ResidualBlock(nn.Module):
    """x + (conv3x3 -> norm -> ReLU -> conv3x3 -> norm)(x): (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int, *, norm: str = "instance", separable: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3, norm=norm, separable=separable),
            ConvLayer(channels, channels, 3, norm=norm, relu=False, separable=separable),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleLayer(nn.Sequential):
    """x2 upsampling: (N, C_in, H, W) -> (N, C_out, 2H, 2W), then norm and ReLU.

    ``mode="nearest"`` (default): nearest-neighbour resize, then a 3x3 conv. Unlike a
    strided transposed conv, every output pixel sees the same number of input pixels, which
    avoids checkerboard artefacts (Odena et al., Distill 2016).
    ``mode="transposed"``: the paper's fractionally strided conv (ConvTranspose2d, 3x3,
    stride 2); it is always a full conv (``separable`` applies to the nearest mode only).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        mode: str = "nearest",
        norm: str = "instance",
        separable: bool = False,
    ) -> None:
        check_choice("upsample", mode, UPSAMPLE_MODES)
        if mode == "nearest":
            super().__init__(
                nn.Upsample(scale_factor=2, mode="nearest"),
                ConvLayer(in_channels, out_channels, 3, norm=norm, separable=separable),
            )
            return
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(
                in_channels, out_channels, 3, 2, padding=1, output_padding=1, bias=norm == "none"
            )
        ]
        if norm != "none":
            layers.append(_norm_layer(norm, out_channels))
        super().__init__(*layers, nn.ReLU(inplace=True))


class TransformerNet(nn.Module):
    """Johnson et al.'s image transformation network: (N, 3, H, W) -> (N, 3, H, W).

    stem 9x9 conv (c1) -> 3x3 stride-2 conv (c2) -> 3x3 stride-2 conv (c3) -> ``blocks``
    residual blocks (c3) -> two x2 upsampling stages (c2, c1) -> 9x9 conv to 3 channels.
    Paper size: ``channels=(32, 64, 128)``, 5 blocks, 1,677,635 parameters here.

    Deviations from the paper: instance instead of batch normalisation (Ulyanov et al.
    2016: much better stylisations), reflection padding in every conv instead of one large
    reflection border with unpadded convs.

    Any H, W >= 5 works: the input is reflection-padded at the bottom and right to a multiple
    of 4 (the two stride-2 convs need it) and the output is cropped back to H x W. Cropping
    rather than resizing keeps every output pixel aligned with its input pixel.

    ``upsample``: "nearest" (resize + conv, no checkerboards) or "transposed" (the paper's).
    ``separable``: depthwise-separable convs in the stride-2, residual and upsampling convs:
    ~8x fewer parameters and multiply-adds there, but no faster on a CPU (measured in
    benchmarks/README.md), so the lite variant does not use them.
    ``residual``: output = input + network output, for tasks whose output is close to the
    input (restoration); off for style transfer. ``outer_kernel``: the first and last conv's
    kernel size (paper: 9). ``output``: "tanh" squashes the output into [0, 1] as the
    paper's scaled tanh does (``0.5 + 0.5 * tanh``; it keeps a style network's colours in
    range and its training stable), "linear" leaves it as the last conv gives it (for
    ``residual`` networks, whose output is a correction of the input).
    """

    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128),
        blocks: int = 5,
        upsample: str = "nearest",
        separable: bool = False,
        residual: bool = False,
        outer_kernel: int = 9,
        output: str = "linear",
    ) -> None:
        super().__init__()
        check_choice("output", output, OUTPUTS)
        if output == "tanh" and residual:
            raise BadInputError("output='tanh' squashes a full image; use 'linear' with residual.")
        if (
            isinstance(channels, (str, bytes))
            or not isinstance(channels, Sequence)
            or len(channels) != 3
        ):
            raise BadInputError(
                f"channels={channels!r}: give three whole numbers, e.g. (32, 64, 128)."
            )
        c1, c2, c3 = (check_whole("channels", c, 1, MAX_CHANNELS) for c in channels)
        check_whole("blocks", blocks, 0, MAX_BLOCKS)
        check_choice("upsample", upsample, UPSAMPLE_MODES)
        if check_whole("outer_kernel", outer_kernel, 1, MAX_KERNEL) % 2 == 0:
            raise BadInputError(f"outer_kernel={outer_kernel}: use an odd size such as 9.")
        self._kwargs = {
            "channels": [c1, c2, c3],
            "blocks": blocks,
            "upsample": upsample,
            "separable": bool(separable),
            "residual": bool(residual),
            "outer_kernel": outer_kernel,
            "output": output,
        }
        self.residual, self.output = bool(residual), output
        self.stem = ConvLayer(3, c1, outer_kernel)
        self.down1 = ConvLayer(c1, c2, 3, 2, separable=separable)
        self.down2 = ConvLayer(c2, c3, 3, 2, separable=separable)
        self.blocks = nn.Sequential(
            *(ResidualBlock(c3, separable=separable) for _ in range(blocks))
        )
        self.up1 = UpsampleLayer(c3, c2, mode=upsample, separable=separable)
        self.up2 = UpsampleLayer(c2, c1, mode=upsample, separable=separable)
        self.head = ConvLayer(c1, 3, outer_kernel, norm="none", relu=False)

    @classmethod
    def lite(cls, **overrides) -> TransformerNet:
        """The CPU / phone-sized variant: :data:`LITE` settings, any of them overridable
        (about 7x faster than paper size on a CPU; benchmarks/README.md)."""
        return cls(**{**LITE, **overrides})

    @property
    def spec(self) -> dict:
        """{"name": "transformer", "kwargs": {...}}: what :func:`build_network` rebuilds from."""
        return {"name": "transformer", "kwargs": copy.deepcopy(self._kwargs)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "TransformerNet", MIN_SIDE)
        height, width = x.shape[-2:]
        y = F.pad(x, (0, (-width) % 4, 0, (-height) % 4), mode="reflect")
        y = self.stem(y)
        y = self.down2(self.down1(y))
        y = self.blocks(y)
        y = self.up2(self.up1(y))
        y = self.head(y)[..., :height, :width]
        if self.output == "tanh":
            return 0.5 + 0.5 * torch.tanh(y)
        return x + y if self.residual else y


class SuperResolutionNet(nn.Module):
    """Johnson et al.'s super-resolution network: (N, 3, h, w) -> (N, 3, scale*h, scale*w).

    9x9 conv (64) -> 4 residual blocks (64) -> log2(scale) x2 upsampling stages (64) -> 9x9
    conv to 3 channels. ``scale``: 2, 4 (default) or 8; any h, w >= 5.

    ``norm``: "none" (default), "batch" (the paper's) or "instance". Later super-resolution
    work (EDSR, Lim et al. 2017) found that normalisation layers hurt, and without them
    training on the tiny batches a CPU affords is stable.
    ``residual=True`` (default; a deviation from the paper): output = bicubic upsampling of
    the input + network output, so the network learns only the missing detail (global
    residual learning, as in VDSR, Kim et al. 2016); small CPU trainings converge much faster.
    ``upsample``: as in :class:`UpsampleLayer` (the paper used transposed convs).
    """

    def __init__(
        self,
        scale: int = 4,
        norm: str = "none",
        residual: bool = True,
        upsample: str = "nearest",
        channels: int = 64,
        blocks: int = 4,
    ) -> None:
        super().__init__()
        check_choice("scale", scale, SCALES)
        check_choice("norm", norm, NORMS)
        check_choice("upsample", upsample, UPSAMPLE_MODES)
        check_whole("channels", channels, 1, MAX_CHANNELS)
        check_whole("blocks", blocks, 0, MAX_BLOCKS)
        self._kwargs = {
            "scale": scale,
            "norm": norm,
            "residual": bool(residual),
            "upsample": upsample,
            "channels": channels,
            "blocks": blocks,
        }
        self.scale, self.residual = scale, bool(residual)
        self.stem = ConvLayer(3, channels, 9, norm=norm)
        self.blocks = nn.Sequential(*(ResidualBlock(channels, norm=norm) for _ in range(blocks)))
        self.upsample = nn.Sequential(
            *(
                UpsampleLayer(channels, channels, mode=upsample, norm=norm)
                for _ in range(int(math.log2(scale)))
            )
        )
        self.head = ConvLayer(channels, 3, 9, norm="none", relu=False)

    @property
    def spec(self) -> dict:
        """{"name": "super_resolution", "kwargs": {...}}: what :func:`build_network` rebuilds."""
        return {"name": "super_resolution", "kwargs": copy.deepcopy(self._kwargs)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, "SuperResolutionNet", MIN_SIDE)
        y = self.head(self.upsample(self.blocks(self.stem(x))))
        if self.residual:
            y = y + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return y


class _Registry(dict):
    """A dict of network classes whose entries may be given as ``"module:Class"`` (relative
    to this package): imported on first use, so a method module that imports this one can
    register its network here without an import cycle."""

    def __getitem__(self, name: str) -> type[nn.Module]:
        value = super().__getitem__(name)
        if isinstance(value, str):
            module, _, attribute = value.partition(":")
            value = getattr(importlib.import_module(module, __package__), attribute)
            self[name] = value
        return value

    def get(self, name: str, default: object = None) -> object:
        try:
            return self[name]
        except KeyError:
            return default

    def values(self) -> list[type[nn.Module]]:  # type: ignore[override]
        return [self[name] for name in self]

    def items(self) -> list[tuple[str, type[nn.Module]]]:  # type: ignore[override]
        return [(name, self[name]) for name in self]


# spec name -> network class: what build_network (and so every model file) can rebuild
NETWORKS: dict[str, type[nn.Module]] = _Registry(
    {
        "transformer": TransformerNet,
        "super_resolution": SuperResolutionNet,
        "multistyle_transformer": ".multistyle:MultiStyleNet",  # conditional instance norm
        "adain_decoder": ".adain:Decoder",  # AdaIN's decoder (its encoder is a VGG)
    }
)


def build_network(spec: dict) -> nn.Module:
    """A new, randomly initialised network from ``spec`` = {"name": ..., "kwargs": {...}}.

    ``spec`` is a network's ``.spec``; load the trained weights with ``load_state_dict``.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("kwargs", {}), dict):
        raise BadInputError(
            f"spec={spec!r}: give a dict like {{'name': 'transformer', 'kwargs': {{}}}}."
        )
    name, kwargs = spec.get("name"), spec.get("kwargs", {})
    if name not in NETWORKS:
        raise BadInputError(f"spec name {name!r} is unknown; use one of {sorted(NETWORKS)}.")
    allowed = _arguments(NETWORKS[name])
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise BadInputError(
            f"spec kwargs {unknown} are not arguments of {name!r}; use only {sorted(allowed)}."
        )
    return NETWORKS[name](**kwargs)


def _arguments(cls: type) -> list[str]:
    """The arguments ``cls(...)`` takes by name, those it hands on as ``**kwargs`` to its
    base class included."""
    params = inspect.signature(cls).parameters.values()
    names = [p.name for p in params if p.kind is not p.VAR_KEYWORD]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        names += _arguments(cls.__mro__[1])
    return names


def count_parameters(net: nn.Module) -> int:
    """The number of learnable numbers (weights, biases, norm scales and shifts) in ``net``."""
    return sum(p.numel() for p in net.parameters())


def _stages(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """Top-level children, with an nn.Sequential of blocks expanded one level."""
    stages = []
    for name, child in net.named_children():
        if type(child) is nn.Sequential:
            stages += [(f"{name}.{sub}", block) for sub, block in child.named_children()]
        else:
            stages.append((name, child))
    return stages


def describe_network(net: nn.Module, size: int = 256) -> list[dict]:
    """One row per stage: {"stage", "shape": (C, H, W) of its output, "parameters"}.

    Shapes are recorded by forward hooks during one pass of a (1, 3, size, size) input, in
    eval mode and without gradients; the network's mode is restored afterwards.
    """
    check_whole("size", size, MIN_SIDE)
    rows: list[dict] = []
    handles = []
    for name, module in _stages(net):

        def record(_module, _inputs, output, name=name, module=module) -> None:
            rows.append(
                {
                    "stage": name,
                    "shape": tuple(output.shape[1:]),
                    "parameters": count_parameters(module),
                }
            )

        handles.append(module.register_forward_hook(record))
    was_training = net.training
    reference = next(net.parameters(), torch.empty(0))
    try:
        net.eval()
        with torch.no_grad():
            net(torch.rand(1, 3, size, size, device=reference.device, dtype=reference.dtype))
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()
    return rows


class LowResUpsampleConv(nn.Module):
    """Nearest-neighbour x2 upsampling followed by a reflection-padded 3x3 conv, computed
    at the low resolution: the same function with 16 instead of 36 multiply-adds per output
    pixel and channel pair, and without the upsampled copy of the input.

    Output pixel (2i + a, 2j + b) sees input rows i - 1 + a .. i + a and columns
    j - 1 + b .. j + b only, so each of the four phases (a, b) is a 2x2 conv whose kernel
    sums the 3x3 taps that fall on the same input pixel; reflection padding of the
    upsampled image is replicate padding of the small one. The phases are interleaved by a
    pixel shuffle.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        w = conv.weight.detach()  # (out, in, 3, 3)
        merge = {0: lambda t, d: (t.select(d, 0), t.select(d, 1) + t.select(d, 2)),
                 1: lambda t, d: (t.select(d, 0) + t.select(d, 1), t.select(d, 2))}  # fmt: skip
        kernels = [
            torch.stack(merge[b](torch.stack(merge[a](w, 2), 2), 3), 3)
            for a in (0, 1)
            for b in (0, 1)
        ]
        self.register_buffer("weight", torch.stack(kernels))  # (4, out, in, 2, 2)
        bias = None if conv.bias is None else conv.bias.detach().clone()
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
        phases = [
            F.conv2d(padded[:, :, a : a + h + 1, b : b + w + 1], self.weight[2 * a + b], self.bias)
            for a in (0, 1)
            for b in (0, 1)
        ]
        return F.pixel_shuffle(torch.stack(phases, 2).reshape(n, -1, h, w), 2)


def prepare_for_inference(net: nn.Module, *, compile: bool = False) -> nn.Module:
    """A copy of ``net`` for inference: eval mode, no gradients, each nearest-neighbour
    upsampling + conv computed at the low resolution (:class:`LowResUpsampleConv`, the same
    function); run it with :func:`infer`.

    ``compile=True`` also compiles the copy with ``torch.compile`` (PyTorch's Inductor,
    which on a CPU needs a C++ compiler such as g++) for fixed image sizes: the first call
    at each new size compiles, later calls at that size run faster. Worth it for many
    images of one size, as video frames; not for one photo. On a CPU without a compiler,
    ONNX Runtime is the fast path: :mod:`nst_utils.export` exports this copy. What was
    measured, and what else was tried: benchmarks/README.md.
    """
    fast = copy.deepcopy(net).eval().requires_grad_(False)
    for module in fast.modules():
        if isinstance(module, UpsampleLayer) and isinstance(module[0], nn.Upsample):
            conv_layer = module[1]
            if "conv" in conv_layer._modules:  # not separable
                rest = [m for name, m in conv_layer.named_children() if name not in {"pad", "conv"}]
                module[0] = LowResUpsampleConv(conv_layer.conv)
                module[1] = nn.Sequential(*rest)
    if compile:
        on_cpu = all(p.device.type == "cpu" for p in fast.parameters())
        if on_cpu and not cxx_compiler():
            raise BadInputError(
                "compile=True needs a C++ compiler on a CPU (torch.compile builds C++ "
                "kernels) and none was found ($CXX, else g++, clang++ on macOS, cl on "
                "Windows); install one (e.g. apt install g++) or leave compiling off."
            )
        fast = torch.compile(fast, dynamic=False)
    return fast


def cxx_compiler() -> str | None:
    """The C++ compiler ``torch.compile`` uses on a CPU (``$CXX``, else ``cl`` on Windows,
    ``clang++`` on macOS, ``g++`` elsewhere) if it is on the PATH, else None."""
    default = {"win32": "cl", "darwin": "clang++"}.get(sys.platform, "g++")
    return shutil.which(os.environ.get("CXX") or default)


def infer(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Apply ``net`` to (N, 3, H, W) images in [0, 1]; returns its output clamped to [0, 1].

    Runs under ``torch.inference_mode`` on the network's device; the result is an ordinary
    tensor (it can be changed in place) on the input's device. The images are checked first
    (:func:`nst_utils.images.check_images`: float, finite, in [0, 1], N >= 1); an output that
    holds NaN or infinite values (damaged weights) raises :class:`NSTError` instead of
    clamping to black.
    """
    check_images(images, "infer", MIN_SIDE, values=True)
    reference = next(net.parameters(), images)
    with torch.inference_mode():
        y = net(images.to(reference.device, reference.dtype))
        finite = bool(torch.isfinite(y).all())
    if not finite:
        raise NSTError(
            "infer: the network's output holds NaN or infinite values for images in [0, 1]: "
            "its weights are damaged (or training diverged); train or copy it again."
        )
    return y.clamp(0, 1).to(images.device)  # outside inference mode: an ordinary tensor
