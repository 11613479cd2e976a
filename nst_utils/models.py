"""VGG feature extractor: activations of named layers (``conv1_1``, ``relu4_2``, ...).

Weights come from one of three places (see :func:`load_vgg_state`):

* ``"imagenet"``: torchvision's official ImageNet weights, downloaded once and cached;
* a file path: a torchvision-layout state dict (``features.N.weight`` / ``.bias`` keys);
* ``"random"``: seeded random weights, rescaled layer by layer so that activations keep
  their scale on natural-looking images. For tests and offline runs; it always warns.

The network takes RGB images in [0, 1] and applies ImageNet's normalisation itself: that
convention belongs to the weights, not to image files.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from .config import WEIGHTS_ENV, default_arch, weights_setting
from .errors import BadInputError, WeightsError
from .files import load_problem

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Channels per conv layer, "M" for a 2x2 max pool: torchvision's configurations D and E.
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
              512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}  # fmt: skip


class RandomWeightsWarning(UserWarning):
    """Warned whenever VGG weights are asked for with ``weights="random"``."""


def check_arch(arch: str | None) -> str:
    """``arch`` itself, or ``NST_ARCH`` (default 'vgg19') when None; unknown names fail."""
    arch = arch or default_arch()
    if arch not in VGG_CONFIGS:
        raise BadInputError(f"arch={arch!r} is not supported; use one of {sorted(VGG_CONFIGS)}.")
    return arch


def layer_names(arch: str | None = None) -> list[str]:
    """All layer names of ``vgg.features`` in order: conv1_1, relu1_1, ..., pool5."""
    names, block, conv = [], 1, 1
    for item in VGG_CONFIGS[check_arch(arch)]:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def _conv_shapes(arch: str) -> dict[int, tuple[int, int]]:
    """torchvision index of each conv in ``features`` -> (in_channels, out_channels)."""
    shapes, index, channels = {}, 0, 3
    for item in VGG_CONFIGS[arch]:
        if item == "M":
            index += 1
        else:
            shapes[index] = (channels, int(item))
            channels, index = int(item), index + 2
    return shapes


def _download_imagenet(arch: str) -> dict[str, torch.Tensor]:
    from torchvision.models import VGG16_Weights, VGG19_Weights

    weights = {"vgg16": VGG16_Weights.IMAGENET1K_V1, "vgg19": VGG19_Weights.IMAGENET1K_V1}[arch]
    try:  # the file name carries a SHA-256 prefix: check_hash verifies the download
        return weights.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except Exception as err:  # no network, proxy, full disk, corrupt cache, bad hash ...
        raise WeightsError(
            f"could not download torchvision's ImageNet {arch.upper()} weights ({err}).\n"
            "Three ways out:\n"
            "  1. connect to the internet once; the file is then cached "
            "(torch.hub.get_dir()/checkpoints) and later runs work offline;\n"
            f"  2. download the weights elsewhere and set {WEIGHTS_ENV}=/path/to/file.pth "
            "(a torchvision-layout state dict);\n"
            f"  3. set {WEIGHTS_ENV}=random to run with seeded random weights (pictures will "
            "not look like style transfer; for tests and offline practice only).\n"
            "A corrupt cached file (hash mismatch) can be deleted from that folder."
        ) from err


def _read_file(path: Path, arch: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(
            f"VGG weights file {path} does not exist. Set {WEIGHTS_ENV} (or weights=) to an "
            "existing .pth file, 'imagenet' or 'random'."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as err:
        raise WeightsError(f"VGG weights file {path}: permission denied ({err.strerror}).") from err
    except Exception as err:
        raise WeightsError(
            f"VGG weights file {path} could not be read as a PyTorch state dict "
            f"({load_problem(path, err)})."
        ) from err
    if not isinstance(state, dict):
        raise WeightsError(
            f"VGG weights file {path} holds a {type(state).__name__}, not a state dict."
        )
    return check_state(state, arch, str(path))


def check_state(state: Mapping, arch: str, source: str) -> dict[str, torch.Tensor]:
    """The ``features.N.*`` float tensors of ``state`` if they fit ``arch``; else WeightsError.

    Refuses wrong shapes, NaN or infinite values and all-zero layers (such a network
    returns the input photo unchanged, which would look like a style transfer that did
    nothing).
    """
    features = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith("features.")}
    expected = _conv_shapes(arch)
    found = sorted({int(k.split(".")[1]) for k in features if k.split(".")[1].isdigit()})
    guess = {13: "VGG16", 16: "VGG19"}.get(len(found), f"a network with {len(found)} conv layers")
    problem = None
    if not features:
        problem = "it has no 'features.N.weight' keys (torchvision's VGG layout)"
    elif set(found) != set(expected):
        problem = f"its conv layers look like {guess}"
    else:
        for index, (c_in, c_out) in expected.items():
            w = features.get(f"features.{index}.weight")
            b = features.get(f"features.{index}.bias")
            if not isinstance(w, torch.Tensor) or not isinstance(b, torch.Tensor):
                problem = f"features.{index} is missing"
            elif w.shape != (c_out, c_in, 3, 3) or b.shape != (c_out,):
                problem = f"features.{index} has the wrong shape"
            elif not (torch.isfinite(w).all() and torch.isfinite(b).all()):
                problem = f"features.{index} holds NaN or infinite values (a damaged file)"
            elif not w.any():
                problem = f"features.{index}.weight is all zeros (not a trained network)"
            if problem:
                break
    if problem:
        raise WeightsError(
            f"VGG weights {source} do not fit {arch.upper()}: {problem}. Choose the "
            "matching network (arch='vgg16' or 'vgg19') or another file."
        )
    return {k: v.detach().float() for k, v in features.items()}


def _pink_noise(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Images with a 1/f amplitude spectrum, like natural photographs; (n, 3, s, s) in [0, 1]."""
    freq_y = torch.fft.fftfreq(size).view(-1, 1)
    freq_x = torch.fft.rfftfreq(size).view(1, -1)
    amplitude = 1.0 / torch.sqrt(freq_y**2 + freq_x**2).clamp(min=1.0 / size)
    phase = torch.rand(n, 3, size, size // 2 + 1, generator=generator) * 2 * math.pi
    img = torch.fft.irfft2(amplitude * torch.exp(1j * phase), s=(size, size))
    img = (img - img.mean(dim=(2, 3), keepdim=True)) / img.std(dim=(2, 3), keepdim=True)
    return (0.5 + 0.2 * img).clamp(0, 1)


def _random_state(arch: str, seed: int) -> dict[str, torch.Tensor]:
    """Kaiming-normal conv weights and zero biases, seeded, then :func:`rescale_layers`.

    Left as they are, the activations of such a network shrink layer after layer and style
    losses vanish (~1e-7 at style weight 1e4: the picture does not change at all).
    """
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for index, (c_in, c_out) in _conv_shapes(arch).items():
        std = math.sqrt(2.0 / (9 * c_out))
        state[f"features.{index}.weight"] = (
            torch.randn(c_out, c_in, 3, 3, generator=generator) * std
        )
        state[f"features.{index}.bias"] = torch.zeros(c_out)
    return rescale_layers(arch, state)


def rescale_layers(arch: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Scale every conv layer so its mean ReLU activation on natural-looking images is 1.

    A ReLU network is positively homogeneous: multiplying layer k's weights and bias by
    ``c_k`` and dividing the next layer's weights by ``c_k`` multiplies that layer's feature
    maps by ``c_k`` and changes nothing else (max pooling commutes with it). So one pass of
    the unscaled network gives every mean activation ``m_k``, and ``c_k = 1 / m_k``. Used
    for random weights, whose activations would otherwise fade with depth; Gatys et al.
    (2015) normalised VGG19 in the same spirit (per filter, on ImageNet images).
    Calibration images: pink noise, seed 0.
    """
    relus = [n for n in layer_names(arch) if n.startswith("relu")]
    net = VGGFeatures(relus, arch=arch, weights=state)
    with torch.no_grad():
        feats = net(_pink_noise(4, 128, torch.Generator().manual_seed(0)))
    out, previous = {}, 1.0
    for index, relu in zip(sorted(_conv_shapes(arch)), relus, strict=True):
        scale = 1.0 / feats[relu].mean().clamp(min=1e-20).item()
        out[f"features.{index}.weight"] = state[f"features.{index}.weight"] * scale / previous
        out[f"features.{index}.bias"] = state[f"features.{index}.bias"] * scale
        previous = scale
    return out


@functools.lru_cache(maxsize=8)
def _cached_state(arch: str, weights: str, seed: int) -> dict[str, torch.Tensor]:
    if weights == "imagenet":
        return {k: v for k, v in _download_imagenet(arch).items() if k.startswith("features.")}
    if weights == "random":
        return _random_state(arch, seed)
    return _read_file(Path(weights), arch)


def load_vgg_state(
    arch: str | None = None, weights: str | os.PathLike | None = None, seed: int = 0
) -> dict[str, torch.Tensor]:
    """The ``features.N.*`` tensors of a VGG, from ``weights`` (default: ``NST_WEIGHTS``).

    ``weights`` is ``"imagenet"``, ``"random"`` or a path to a torchvision-layout file.
    Files are read once per process; every call gets its own copy of the tensors, so
    changing them cannot leak into the next network built.
    """
    arch = check_arch(arch)
    spec = str(weights) if weights is not None else weights_setting()
    if spec == "random":
        warnings.warn(
            f"{arch.upper()} is using seeded RANDOM weights (seed {seed}), not ImageNet "
            f"weights ({WEIGHTS_ENV}=random). Everything runs, but pictures will not look "
            f"like real style transfer. Unset {WEIGHTS_ENV} for the real network.",
            RandomWeightsWarning,
            stacklevel=3,
        )
    elif spec != "imagenet":
        spec = str(Path(spec).expanduser().resolve())
    return {k: v.clone() for k, v in _cached_state(arch, spec, seed).items()}


class VGGFeatures(nn.Module):
    """A frozen VGG that returns the activations of named layers: the one way through VGG.

    Input: (N, 3, H, W) float RGB in [0, 1]; ImageNet normalisation happens inside.
    Output: ``{layer_name: tensor}`` for every name in ``layers`` (or in the ``layers``
    given to :meth:`forward`: any layer up to the deepest one built). The network is cut
    after the deepest requested layer and each pass stops at the deepest layer asked for,
    so no time is spent on layers nobody reads.
    ``pooling="avg"`` swaps max pooling for average pooling, as Gatys et al. did.
    ``arch`` is 'vgg19' or 'vgg16' (default: ``NST_ARCH``, else 'vgg19'); ``weights`` is
    'imagenet', 'random', a file path (default: ``NST_WEIGHTS``, else 'imagenet') or a
    state dict with torchvision's ``features.N.*`` keys.
    """

    def __init__(
        self,
        layers: Iterable[str],
        arch: str | None = None,
        weights: str | os.PathLike | Mapping[str, torch.Tensor] | None = None,
        pooling: str = "max",
        seed: int = 0,
    ) -> None:
        super().__init__()
        arch = self.arch = check_arch(arch)
        self.layers = list(dict.fromkeys(layers))
        names = layer_names(arch)
        unknown = [n for n in self.layers if n not in names]
        if unknown or not self.layers:
            raise BadInputError(
                f"unknown {arch.upper()} layer(s) {unknown or '(none given)'}; valid names: "
                f"{', '.join(names)}."
            )
        if pooling not in {"max", "avg"}:
            raise BadInputError(f"pooling={pooling!r}: use 'max' or 'avg'.")
        if isinstance(weights, Mapping):
            state = check_state(weights, arch, "given as a state dict")
        else:
            state = load_vgg_state(arch, weights, seed)
        last = max(names.index(n) for n in self.layers)
        self.available = names[: last + 1]
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        for index, name in enumerate(self.available):
            if name.startswith("conv"):
                c_out, c_in = state[f"features.{index}.weight"].shape[:2]
                # skip_init: no random initialisation, which would draw from the global RNG
                conv = nn.utils.skip_init(nn.Conv2d, c_in, c_out, kernel_size=3, padding=1)
                conv.weight.data.copy_(state[f"features.{index}.weight"])
                conv.bias.data.copy_(state[f"features.{index}.bias"])
                modules[name] = conv
            elif name.startswith("relu"):
                modules[name] = nn.ReLU(inplace=False)
            else:
                pool = nn.AvgPool2d if pooling == "avg" else nn.MaxPool2d
                modules[name] = pool(kernel_size=2, stride=2)
        self.net = nn.Sequential(modules)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(
        self, x: torch.Tensor, layers: Iterable[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """``{name: activation}`` for ``layers`` (default: the layers given at construction)."""
        wanted = self.layers if layers is None else list(layers)
        unknown = [n for n in wanted if n not in self.available]
        if unknown or not wanted:
            raise BadInputError(
                f"layer(s) {unknown or '(none given)'} are not computed by this network; it "
                f"stops at {self.available[-1]}. Build VGGFeatures with the deepest layer needed."
            )
        last = max(self.available.index(n) for n in wanted)
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        if self.net[0].weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        out = {}
        for index, (name, module) in enumerate(self.net.named_children()):
            x = module(x)
            if name in wanted:
                out[name] = x
            if index == last:
                break
        return out

    def train(self, mode: bool = True) -> VGGFeatures:
        """Always stays in eval mode: the extractor is frozen."""
        return super().train(False)


def min_side(layers: Iterable[str], arch: str | None = None) -> int:
    """The shortest image side (pixels) that still gives every layer in ``layers`` a
    1x1 feature map or more: 2 to the number of poolings in front of the deepest layer."""
    names = layer_names(arch)
    deepest = max(names.index(n) for n in layers)
    return 2 ** sum(n.startswith("pool") for n in names[:deepest])


def describe_layers(arch: str | None = None, size: int = 224) -> list[dict]:
    """One row per layer: name, output shape (C, H, W) for a size x size input, receptive field.

    The receptive field is how many input pixels (per side) one output unit can see.
    """
    arch = check_arch(arch)
    shapes = _conv_shapes(arch)
    rows, field, jump, channels, side = [], 1, 1, 3, size
    for index, name in enumerate(layer_names(arch)):
        if name.startswith("conv"):
            field += 2 * jump  # a 3x3 conv widens the view by one step on each side
            channels = shapes[index][1]
        elif name.startswith("pool"):
            field += jump  # a 2x2 pool with stride 2 adds one step, then doubles the step
            jump *= 2
            side //= 2
        rows.append({"layer": name, "shape": (channels, side, side), "receptive_field": field})
    return rows
