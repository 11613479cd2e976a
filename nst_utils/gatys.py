"""Gatys et al. style transfer (arXiv 1508.06576): optimise the pixels of an image so that
its VGG features match a content photo and its Gram matrices match one or more paintings.

One config dataclass, :class:`StyleTransferConfig`, holds every knob; :func:`stylize` runs
it. The notebooks and the command line (``python -m nst_utils stylize``) build the same
config. The loop itself is :func:`nst_utils.optimize.optimize_image`.

The paper's settings, for VGG19 with average pooling: content layer conv4_2 (here relu4_2,
the same features after the ReLU), style layers relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
with equal weights 1/5, a content/style ratio alpha/beta of 1e-3 or 1e-4 with their loss
normalisation, initialisation from white noise and L-BFGS.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
from PIL import Image

from .color import luminance_only, match_histogram, preserve_luminance
from .device import check_seed, pick_device
from .errors import BadInputError
from .images import ImageLike, as_tensor, resize_tensor
from .losses import GRAM_NORMALIZATIONS, PerceptualLoss
from .models import VGGFeatures, _check_arch, layer_names, min_side
from .optimize import optimize_image
from .options import option

PAPER_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
INITS = ("content", "noise", "style")
PRESERVE_COLOR = ("luminance", "histogram")
OPTIMIZERS = ("lbfgs", "adam")
MIN_SIDE = 16  # pixels: relu5_1 sits behind four 2x2 poolings
MAX_SIZE = 4096  # pixels: a longer output side needs tens of GB; lower --size


def _paper_content_layers() -> dict[str, float]:
    return {"relu4_2": 1.0}


def _paper_style_layers() -> dict[str, float]:
    return {name: 1.0 / len(PAPER_STYLE_LAYERS) for name in PAPER_STYLE_LAYERS}


@dataclass
class StyleTransferConfig:
    """Every setting of a Gatys et al. style transfer; defaults make a good 512 px picture.

    Layers map a name (``relu4_2``) to its weight inside the content or style loss. The
    loss is ``content_weight * content + style_weight * style + tv_weight * tv`` with
    ``content`` the mean squared feature difference, ``style`` the weighted sum over layers
    of the mean squared Gram difference (Grams normalised by ``gram_normalize``, see
    :func:`nst_utils.losses.gram_matrix`) and ``tv`` the total variation of the pixels.

    Paper (Gatys et al. 2015, VGG19, average pooling): content conv4_2, style conv1_1 ..
    conv5_1 with weights 1/5, alpha/beta = 1e-3 or 1e-4, white-noise start, L-BFGS. Here
    the same layers after their ReLU (``relu4_2``; ``relu1_1`` .. ``relu5_1``), max pooling
    and a start from the content photo, which keeps the layout with fewer steps.

    ``relative_losses=True`` divides each layer's term by the mean square of its target
    (the content features, the style Gram), so every term starts near 1 whatever the
    network: torchvision's ImageNet VGG19, a Caffe-converted VGG16 whose activations are
    ~50x larger, or random weights. That is what lets one default fit every network.
    ``style_weight=10`` was chosen by eye with a trained VGG16 (astronaut and chelsea with
    Starry Night and The Great Wave at 192-512 px: 1 keeps the photo with a light texture,
    30 paints strongly while faces stay recognisable). With ``relative_losses=False`` the
    losses are the paper's and PyTorch tutorial's and the weights must be re-chosen per
    network (e.g. 1e6 with ``gram_normalize="chw"`` for torchvision's VGG19). No total
    variation is needed at 512 px (``tv_weight=0``); raise it if a result looks grainy.

    ``steps`` counts function evaluations (one forward and backward pass each) over all
    ``scales``; ``scales=2`` first optimises at half size, upsamples and continues, which
    is cheaper for large outputs. ``preserve_color="luminance"`` transfers the style to
    the luminance only and keeps the content's colours (YIQ); ``"histogram"`` recolours
    the painting with the photo's colour statistics first.
    """

    arch: str | None = option(
        None, "VGG variant: vgg19 | vgg16", choices=("vgg19", "vgg16"), default_help="NST_ARCH"
    )
    weights: str | None = option(
        None, "VGG weights: imagenet | random | FILE.pth", default_help="NST_WEIGHTS"
    )
    pooling: str = option("max", "VGG pooling (paper: avg)", choices=("max", "avg"))
    content_layers: dict[str, float] = option(
        help="content layers, NAME[:WEIGHT],...", factory=_paper_content_layers
    )
    style_layers: dict[str, float] = option(
        help="style layers, NAME[:WEIGHT],...", factory=_paper_style_layers
    )
    content_weight: float = option(1.0, "weight of the content loss")
    style_weight: float = option(10.0, "weight of the style loss (higher = more painterly)")
    tv_weight: float = option(0.0, "total variation weight (raise it if a result looks grainy)")
    gram_normalize: str = option(
        "hw",
        "Gram matrix normalisation (nst_utils.losses.gram_matrix)",
        choices=("hw", "chw", "none"),
    )
    relative_losses: bool = option(
        True, "divide each layer's loss by its target's mean square (off: the paper's raw losses)"
    )
    optimizer: str = option("lbfgs", "optimiser", choices=OPTIMIZERS)
    lr: float | None = option(None, "learning rate", default_help="LBFGS 1, Adam 0.02")
    steps: int = option(300, "optimisation steps (forward+backward passes), over all scales")
    size: int = option(512, "longest side of the output, px")
    style_scale: float = option(1.0, "style image size relative to --size; smaller = finer strokes")
    init: str = option("content", "starting image", choices=INITS)
    preserve_color: str | None = option(
        None, "keep the content's colours: luminance | histogram", choices=PRESERVE_COLOR
    )
    scales: int = option(1, "coarse-to-fine levels, each twice the size of the one before")
    seed: int = option(0, "random seed (noise start)")
    device: str | None = option(None, "cpu | cuda | mps", default_help="automatic")

    def check(self) -> str:
        """Raise :class:`BadInputError` naming the first bad setting; returns the resolved arch."""
        arch = _check_arch(self.arch)
        valid = layer_names(arch)
        for kind in ("content_layers", "style_layers"):
            layers = getattr(self, kind)
            if not isinstance(layers, Mapping):
                raise BadInputError(f"{kind} must map layer names to weights, got {layers!r}.")
            unknown = [name for name in layers if name not in valid]
            if unknown:
                raise BadInputError(
                    f"{kind}: unknown {arch.upper()} layer(s) {unknown}; valid names: "
                    f"{', '.join(valid)}."
                )
            bad = {name: w for name, w in layers.items() if not _nonneg(w)}
            if bad:
                raise BadInputError(f"{kind}: layer weights must be finite and >= 0, got {bad}.")
        if not any(w > 0 for w in self.style_layers.values()):
            raise BadInputError("style_layers is empty: give at least one layer, e.g. relu1_1.")
        for name in ("content_weight", "style_weight", "tv_weight"):
            if not _nonneg(getattr(self, name)):
                raise BadInputError(f"{name} must be finite and >= 0, got {getattr(self, name)!r}.")
        if self.content_weight > 0 and not any(w > 0 for w in self.content_layers.values()):
            raise BadInputError("content_layers is empty but content_weight > 0; add a layer.")
        if self.gram_normalize not in GRAM_NORMALIZATIONS:
            raise BadInputError(
                f"gram_normalize={self.gram_normalize!r}: use one of {GRAM_NORMALIZATIONS}."
            )
        if self.optimizer not in OPTIMIZERS:
            raise BadInputError(f"optimizer={self.optimizer!r}: use one of {OPTIMIZERS}.")
        if self.lr is not None and not (_nonneg(self.lr) and self.lr > 0):
            raise BadInputError(f"lr must be a positive number or None, got {self.lr!r}.")
        if self.pooling not in ("max", "avg"):
            raise BadInputError(f"pooling={self.pooling!r}: use 'max' or 'avg'.")
        if not _whole(self.steps, 1):
            raise BadInputError(f"steps must be a whole number >= 1, got {self.steps!r}.")
        if not _whole(self.scales, 1):
            raise BadInputError(f"scales must be a whole number >= 1, got {self.scales!r}.")
        if self.steps < self.scales:
            raise BadInputError(f"steps={self.steps} cannot be split over scales={self.scales}.")
        if not _whole(self.size, MIN_SIDE) or self.size > MAX_SIZE:
            raise BadInputError(
                f"size must be a whole number of pixels from {MIN_SIDE} to {MAX_SIZE}, got "
                f"{self.size!r}."
            )
        if self.size / 2 ** (self.scales - 1) < MIN_SIDE:
            raise BadInputError(
                f"scales={self.scales} makes the coarsest level smaller than {MIN_SIDE} px "
                f"for size={self.size}; use fewer scales or a larger size."
            )
        if not (_nonneg(self.style_scale) and self.style_scale > 0):
            raise BadInputError(f"style_scale must be > 0, got {self.style_scale!r}.")
        if self.style_scale * self.size > MAX_SIZE:
            raise BadInputError(
                f"style_scale={self.style_scale} makes the style image "
                f"{self.style_scale * self.size:.0f} px at size={self.size}; the limit is "
                f"{MAX_SIZE}. Lower style_scale."
            )
        if self.init not in INITS:
            raise BadInputError(f"init={self.init!r}: use one of {INITS} (or pass init_image).")
        if self.preserve_color not in (None, *PRESERVE_COLOR):
            raise BadInputError(
                f"preserve_color={self.preserve_color!r}: use None or one of {PRESERVE_COLOR}."
            )
        check_seed(self.seed)
        return arch

    def replace(self, **changes) -> StyleTransferConfig:
        """A copy with some fields changed: ``config.replace(steps=100)``."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise BadInputError(
                f"StyleTransferConfig has no field(s) {unknown}; fields: {sorted(names)}."
            )
        return replace(self, **changes)


@dataclass
class StyleTransferResult:
    """The stylised image, the loss history (one value per step) and the time it took."""

    image: torch.Tensor  # (1, 3, H, W) float in [0, 1], on the CPU
    history: dict[str, list[float]]  # "content", "style", "tv", "total"
    seconds: float  # wall time of the optimisation (targets included, model loading not)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (H, W) of each scale


def _nonneg(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _whole(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _blend_weights(blend: Sequence[float] | None, n_styles: int) -> list[float]:
    if blend is None:
        return [1.0 / n_styles] * n_styles
    if isinstance(blend, (torch.Tensor, np.ndarray)):  # numbers in a tensor or an array
        blend = blend.tolist() if blend.ndim == 1 else [blend.tolist()]
    if isinstance(blend, (str, bytes)) or not isinstance(blend, Sequence):
        raise BadInputError(f"style_blend must be a list of numbers, got {blend!r}.")
    blend = [w.item() if isinstance(w, torch.Tensor) and w.numel() == 1 else w for w in blend]
    odd = [w for w in blend if isinstance(w, bool) or not isinstance(w, numbers.Real)]
    if odd:
        raise BadInputError(
            f"style_blend must hold numbers, one per style; {odd[0]!r} is a "
            f"{type(odd[0]).__name__}."
        )
    blend = [float(w) for w in blend]
    if len(blend) != n_styles:
        raise BadInputError(
            f"style_blend has {len(blend)} weight(s) for {n_styles} style image(s); give one "
            "weight per style."
        )
    total = sum(blend) if all(_nonneg(w) for w in blend) else math.nan
    if not (math.isfinite(total) and total > 0):
        raise BadInputError(
            f"style_blend weights must be finite, >= 0, with a positive finite sum; got {blend}."
        )
    return [w / total for w in blend]


def _level_sizes(height: int, width: int, scales: int) -> list[tuple[int, int]]:
    return [
        (max(1, round(height / 2**k)), max(1, round(width / 2**k))) for k in reversed(range(scales))
    ]


def _split_steps(steps: int, scales: int) -> list[int]:
    base, extra = divmod(steps, scales)
    return [base + (1 if k < extra else 0) for k in range(scales)]


def make_loss(net: VGGFeatures, config: StyleTransferConfig) -> PerceptualLoss:
    """The :class:`PerceptualLoss` that :func:`stylize` minimises, built from ``config``."""
    return PerceptualLoss(
        net,
        config.content_layers,
        config.style_layers,
        content_weight=config.content_weight,
        style_weight=config.style_weight,
        tv_weight=config.tv_weight,
        gram_normalize=config.gram_normalize,
        relative=config.relative_losses,
    )


def layers_min_side(layers: Sequence[str], arch: str) -> tuple[int, str]:
    """``(side, deepest)``: the shortest image side (px) that gives every layer in ``layers``
    a feature map of 1x1 or more, and the deepest of them. Unlike ``models.min_side`` it
    counts a pooling layer's own halving (pool5 needs 32 px, relu5_3 16)."""
    deepest = max(layers, key=layer_names(arch).index)
    return min_side(layers, arch) * (2 if deepest.startswith("pool") else 1), deepest


def _check_side(image: torch.Tensor, layers: Sequence[str], arch: str, what: str, scales: int):
    """Refuse an image too small for the deepest layer, before any work."""
    need, deepest = layers_min_side(layers, arch)
    height, width = image.shape[-2:]
    coarsest = min(height, width) / 2 ** (scales - 1)
    if coarsest < need:
        raise BadInputError(
            f"{what} is {width}x{height} px: its shorter side is {coarsest:.0f} px at the "
            f"coarsest scale but layer {deepest} needs at least {need} px. Use a larger size "
            "(or style_scale), fewer scales or a less elongated image."
        )


def stylize(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    config: StyleTransferConfig | None = None,
    *,
    style_blend: Sequence[float] | None = None,
    init_image: ImageLike | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    callback_every: int = 10,
    progress: bool = True,
) -> StyleTransferResult:
    """Paint ``content`` in the style of ``styles`` (Gatys et al.); returns the image and losses.

    ``content``, each style and ``init_image`` are anything :func:`nst_utils.images.as_tensor`
    reads: a path, bytes, an array, a PIL image or a (1, 3, H, W) tensor in [0, 1]. Several
    styles are mixed by ``style_blend`` (one weight each, normalised to sum 1): the target
    Gram of each layer is the weighted sum of the styles' Grams. ``init_image`` (resized to
    the output) replaces ``config.init``. ``callback(step, image)`` sees the current image
    every ``callback_every`` steps (with ``scales > 1``, at the current scale's size).
    Errors in the arguments raise :class:`BadInputError` before any work is done. Global
    random generators are left alone (the noise start uses its own, seeded by ``seed``).
    """
    config = config or StyleTransferConfig()
    arch = config.check()
    if isinstance(styles, (str, os.PathLike, bytes, Image.Image, torch.Tensor, np.ndarray)):
        styles = [styles]
    styles = list(styles)
    if not styles:
        raise BadInputError("styles is empty: give at least one style image.")
    blend = _blend_weights(style_blend, len(styles))
    device = pick_device(config.device)

    content_full = as_tensor(content, config.size, name="content")
    style_side = max(MIN_SIDE, round(config.style_scale * config.size))
    style_full = [as_tensor(s, style_side, name=f"style {i + 1}") for i, s in enumerate(styles)]
    init_full = None if init_image is None else as_tensor(init_image, config.size, name="init")
    _check_side(content_full, [*config.content_layers, *config.style_layers], arch, "content",
                config.scales)  # fmt: skip
    for i, style in enumerate(style_full):
        _check_side(style, list(config.style_layers), arch, f"style {i + 1}", config.scales)
    height, width = content_full.shape[-2:]

    if config.preserve_color == "histogram":
        style_full = [match_histogram(s, content_full) for s in style_full]
    luminance = config.preserve_color == "luminance"
    if luminance:
        style_full = [luminance_only(s, content_full) for s in style_full]
        content_work = luminance_only(content_full)
    else:
        content_work = content_full

    net = VGGFeatures(
        [*config.content_layers, *config.style_layers],
        arch=arch,
        weights=config.weights,
        pooling=config.pooling,
        seed=config.seed,
    ).to(device, memory_format=torch.channels_last)
    loss = make_loss(net, config)

    sizes = _level_sizes(height, width, config.scales)
    steps_per_level = _split_steps(config.steps, config.scales)
    history: dict[str, list[float]] = {}
    image: torch.Tensor | None = None
    done = 0
    start = time.perf_counter()
    for level, ((h, w), steps) in enumerate(zip(sizes, steps_per_level, strict=True)):
        factor = h / height
        content_level = resize_tensor(content_work, (h, w)).to(device)
        style_level = []
        for s in style_full:
            sh, sw = s.shape[-2:]
            size = (max(MIN_SIDE, round(sh * factor)), max(MIN_SIDE, round(sw * factor)))
            style_level.append(resize_tensor(s, size).to(device))
        loss.set_content(content_level)
        loss.set_style(style_level, blend)
        if image is None:
            image = _initial_image(config, init_full, content_level, style_level, blend, (h, w))
        else:
            image = resize_tensor(image, (h, w))
        image = image.to(device)

        level_callback = None
        if callback is not None:

            def level_callback(step: int, img: torch.Tensor, _offset: int = done) -> None:
                img = img.detach().cpu()
                if luminance:
                    img = preserve_luminance(img, resize_tensor(content_full, img.shape[-2:]))
                callback(_offset + step, img)

        result = optimize_image(
            image,
            loss,
            steps,
            optimizer=config.optimizer,
            lr=config.lr,
            callback=level_callback,
            callback_every=callback_every,
            progress=progress,
            desc=f"stylizing {w}x{h}" + (f" ({level + 1}/{len(sizes)})" if len(sizes) > 1 else ""),
        )
        image = result.image
        for key in ("content", "style", "tv", "total"):
            history.setdefault(key, []).extend(result.history[key])
        done += steps
    seconds = time.perf_counter() - start

    output = image.detach().cpu()
    if luminance:
        output = preserve_luminance(output, content_full)
    return StyleTransferResult(output.clamp(0, 1), history, seconds, sizes)


def _initial_image(
    config: StyleTransferConfig,
    init_full: torch.Tensor | None,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    blend: Sequence[float],
    size: tuple[int, int],
) -> torch.Tensor:
    if init_full is not None:
        image = resize_tensor(init_full, size)
        return luminance_only(image) if config.preserve_color == "luminance" else image
    if config.init == "content":
        return content.clone()
    if config.init == "style":
        best = max(range(len(styles)), key=lambda k: blend[k])
        return resize_tensor(styles[best].cpu(), size)
    generator = torch.Generator().manual_seed(config.seed)
    return torch.rand(1, 3, *size, generator=generator)
