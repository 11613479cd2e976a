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
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from .color import luminance_only, match_histogram, preserve_luminance
from .device import pick_device, seed_everything
from .errors import NSTError
from .images import image_to_tensor, load_image, resize_longest
from .losses import (
    GRAM_NORMALIZATIONS,
    content_loss,
    gram_matrix,
    relative_weights,
    total_variation,
)
from .models import VGGFeatures, _check_arch, layer_names
from .optimize import optimize_image

ImageLike = str | os.PathLike | Image.Image | torch.Tensor

PAPER_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
INITS = ("content", "noise", "style")
PRESERVE_COLOR = ("luminance", "histogram")
OPTIMIZERS = ("lbfgs", "adam")
MIN_SIDE = 16  # pixels: relu5_1 sits behind four 2x2 poolings


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

    arch: str | None = None  # None -> NST_ARCH, else "vgg19"
    weights: str | None = None  # None -> NST_WEIGHTS, else "imagenet"
    pooling: str = "max"  # "avg" as Gatys et al. used
    content_layers: dict[str, float] = field(default_factory=_paper_content_layers)
    style_layers: dict[str, float] = field(default_factory=_paper_style_layers)
    content_weight: float = 1.0
    style_weight: float = 10.0  # with relative_losses (see the class docstring)
    tv_weight: float = 0.0  # see the class docstring
    gram_normalize: str = "hw"  # "hw" | "chw" | "none", see nst_utils.losses.gram_matrix
    relative_losses: bool = True  # divide each layer's loss by its target's mean square
    optimizer: str = "lbfgs"  # or "adam"
    lr: float | None = None  # None -> optimizer's default (LBFGS 1, Adam 0.02)
    steps: int = 300  # total function evaluations, split across scales
    size: int = 512  # longest side of the output, pixels
    style_scale: float = 1.0  # style image resized to style_scale * size (longest side)
    init: str = "content"  # "content" | "noise" | "style"
    preserve_color: str | None = None  # None | "luminance" | "histogram"
    scales: int = 1  # coarse-to-fine levels, each twice the size of the one before
    seed: int = 0
    device: str | None = None  # None -> pick_device()

    def check(self) -> str:
        """Raise :class:`NSTError` naming the first bad setting; returns the resolved arch."""
        arch = _check_arch(self.arch)
        valid = layer_names(arch)
        for kind in ("content_layers", "style_layers"):
            layers = getattr(self, kind)
            if not isinstance(layers, Mapping):
                raise NSTError(f"{kind} must map layer names to weights, got {layers!r}.")
            unknown = [name for name in layers if name not in valid]
            if unknown:
                raise NSTError(
                    f"{kind}: unknown {arch.upper()} layer(s) {unknown}; valid names: "
                    f"{', '.join(valid)}."
                )
            bad = {name: w for name, w in layers.items() if not _nonneg(w)}
            if bad:
                raise NSTError(f"{kind}: layer weights must be finite and >= 0, got {bad}.")
        if not self.style_layers:
            raise NSTError("style_layers is empty: give at least one layer, e.g. relu1_1.")
        for name in ("content_weight", "style_weight", "tv_weight"):
            if not _nonneg(getattr(self, name)):
                raise NSTError(f"{name} must be finite and >= 0, got {getattr(self, name)!r}.")
        if self.content_weight > 0 and not self.content_layers:
            raise NSTError("content_layers is empty but content_weight > 0; add a layer.")
        if self.gram_normalize not in GRAM_NORMALIZATIONS:
            raise NSTError(
                f"gram_normalize={self.gram_normalize!r}: use one of {GRAM_NORMALIZATIONS}."
            )
        if self.optimizer not in OPTIMIZERS:
            raise NSTError(f"optimizer={self.optimizer!r}: use one of {OPTIMIZERS}.")
        if self.lr is not None and not (_nonneg(self.lr) and self.lr > 0):
            raise NSTError(f"lr must be a positive number or None, got {self.lr!r}.")
        if self.pooling not in ("max", "avg"):
            raise NSTError(f"pooling={self.pooling!r}: use 'max' or 'avg'.")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise NSTError(f"steps must be a whole number >= 1, got {self.steps!r}.")
        if not isinstance(self.scales, int) or self.scales < 1:
            raise NSTError(f"scales must be a whole number >= 1, got {self.scales!r}.")
        if self.steps < self.scales:
            raise NSTError(f"steps={self.steps} cannot be split over scales={self.scales}.")
        if not isinstance(self.size, int) or self.size < MIN_SIDE:
            raise NSTError(f"size must be a whole number of pixels >= {MIN_SIDE}, got {self.size}.")
        if self.size / 2 ** (self.scales - 1) < MIN_SIDE:
            raise NSTError(
                f"scales={self.scales} makes the coarsest level smaller than {MIN_SIDE} px "
                f"for size={self.size}; use fewer scales or a larger size."
            )
        if not (_nonneg(self.style_scale) and self.style_scale > 0):
            raise NSTError(f"style_scale must be > 0, got {self.style_scale!r}.")
        if self.init not in INITS:
            raise NSTError(f"init={self.init!r}: use one of {INITS} (or pass init_image).")
        if self.preserve_color not in (None, *PRESERVE_COLOR):
            raise NSTError(
                f"preserve_color={self.preserve_color!r}: use None or one of {PRESERVE_COLOR}."
            )
        return arch

    def replace(self, **changes) -> StyleTransferConfig:
        """A copy with some fields changed: ``config.replace(steps=100)``."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise NSTError(
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
    return isinstance(value, (int, float)) and math.isfinite(value) and value >= 0


def _load(source: ImageLike, longest: int, name: str) -> torch.Tensor:
    """A path, PIL image or tensor -> (1, 3, H, W) float in [0, 1], longest side ``longest``."""
    if isinstance(source, (str, os.PathLike)):
        source = load_image(Path(source))
    if isinstance(source, Image.Image):
        return image_to_tensor(resize_longest(source.convert("RGB"), longest))
    if not isinstance(source, torch.Tensor):
        raise NSTError(
            f"{name}: expected a path, a PIL image or a tensor, got a {type(source).__name__}."
        )
    t = source.detach().float().cpu()
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[:2] != (1, 3):
        raise NSTError(f"{name}: a tensor must have shape (1, 3, H, W), got {tuple(source.shape)}.")
    if not torch.isfinite(t).all() or t.min() < -1e-3 or t.max() > 1 + 1e-3:
        raise NSTError(f"{name}: tensor values must be finite and in [0, 1] (RGB).")
    h, w = t.shape[-2:]
    scale = longest / max(h, w)
    return _resize(t.clamp(0, 1), (max(1, round(h * scale)), max(1, round(w * scale))))


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", antialias=True).clamp(0, 1)


def _blend_weights(blend: Sequence[float] | None, n_styles: int) -> list[float]:
    if blend is None:
        return [1.0 / n_styles] * n_styles
    blend = list(blend)
    if len(blend) != n_styles:
        raise NSTError(
            f"style_blend has {len(blend)} weight(s) for {n_styles} style image(s); give one "
            "weight per style."
        )
    if not all(_nonneg(w) for w in blend) or sum(blend) <= 0:
        raise NSTError(f"style_blend weights must be >= 0 with a positive sum, got {blend}.")
    return [w / sum(blend) for w in blend]


def _level_sizes(height: int, width: int, scales: int) -> list[tuple[int, int]]:
    return [
        (max(1, round(height / 2**k)), max(1, round(width / 2**k))) for k in reversed(range(scales))
    ]


def _split_steps(steps: int, scales: int) -> list[int]:
    base, extra = divmod(steps, scales)
    return [base + (1 if k < extra else 0) for k in range(scales)]


def style_targets(
    net: VGGFeatures,
    styles: Sequence[torch.Tensor],
    blend: Sequence[float],
    layers: Sequence[str],
    normalize: str = "hw",
) -> dict[str, torch.Tensor]:
    """Blended target Grams: ``sum_k blend[k] * Gram(style_k)`` per layer, without gradients."""
    targets: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for style, weight in zip(styles, blend, strict=True):
            if weight == 0:
                continue
            feats = net(style.contiguous(memory_format=torch.channels_last))
            for name in layers:
                gram = weight * gram_matrix(feats[name], normalize)
                targets[name] = targets[name] + gram if name in targets else gram
    return targets


def make_loss(
    net: VGGFeatures,
    config: StyleTransferConfig,
    content_targets: Mapping[str, torch.Tensor],
    gram_targets: Mapping[str, torch.Tensor],
) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """The loss of :func:`stylize`: image -> {"content", "style", "tv"} weighted terms.

    With ``config.relative_losses`` each layer's weight is divided by the mean square of
    its target (features for content, Gram matrix for style), computed once here.
    """

    def scaled(layers: Mapping[str, float], targets: Mapping[str, torch.Tensor]):
        layers = {n: w for n, w in layers.items() if w > 0}
        return relative_weights(layers, targets) if config.relative_losses else layers

    content_layers = scaled(config.content_layers, content_targets)
    style_layers = scaled(config.style_layers, gram_targets)
    use_content = config.content_weight > 0 and bool(content_layers)

    def loss_fn(image: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = net(image.contiguous(memory_format=torch.channels_last))
        zero = image.new_zeros(())
        content = zero
        if use_content:
            for name, weight in content_layers.items():
                content = content + weight * content_loss(feats[name], content_targets[name])
        style = zero
        for name, weight in style_layers.items():
            gram = gram_matrix(feats[name], config.gram_normalize)
            style = style + weight * F.mse_loss(gram, gram_targets[name])
        tv = total_variation(image) if config.tv_weight > 0 else zero
        return {
            "content": config.content_weight * content,
            "style": config.style_weight * style,
            "tv": config.tv_weight * tv,
        }

    return loss_fn


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

    ``content``, each style and ``init_image`` are a path, a PIL image or a (1, 3, H, W)
    tensor in [0, 1]. Several styles are mixed by ``style_blend`` (one weight each,
    normalised to sum 1): the target Gram of each layer is the weighted sum of the styles'
    Grams. ``init_image`` (resized to the output) replaces ``config.init``.
    ``callback(step, image)`` sees the current image every ``callback_every`` steps (with
    ``scales > 1``, at the current scale's size). Errors in the arguments raise
    :class:`NSTError` before any work is done.
    """
    config = config or StyleTransferConfig()
    arch = config.check()
    if isinstance(styles, (str, os.PathLike, Image.Image, torch.Tensor)):
        styles = [styles]
    styles = list(styles)
    if not styles:
        raise NSTError("styles is empty: give at least one style image.")
    blend = _blend_weights(style_blend, len(styles))
    device = pick_device(config.device)
    seed_everything(config.seed)

    content_full = _load(content, config.size, "content")
    style_side = max(MIN_SIDE, round(config.style_scale * config.size))
    style_full = [_load(s, style_side, f"style {i + 1}") for i, s in enumerate(styles)]
    init_full = None if init_image is None else _load(init_image, config.size, "init_image")
    height, width = content_full.shape[-2:]
    names = layer_names(arch)
    deepest = max(names.index(n) for n in [*config.content_layers, *config.style_layers])
    need = 2 ** sum(n.startswith("pool") for n in names[:deepest])
    coarsest = min(height, width) / 2 ** (config.scales - 1)
    if coarsest < need:
        raise NSTError(
            f"content is {width}x{height} px at size={config.size}: its shorter side is "
            f"{coarsest:.0f} px at the coarsest scale but layer {names[deepest]} needs at least "
            f"{need} px. Use a larger size, fewer scales or a less elongated image."
        )

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

    sizes = _level_sizes(height, width, config.scales)
    steps_per_level = _split_steps(config.steps, config.scales)
    history: dict[str, list[float]] = {}
    image: torch.Tensor | None = None
    done = 0
    start = time.perf_counter()
    for level, ((h, w), steps) in enumerate(zip(sizes, steps_per_level, strict=True)):
        factor = h / height
        content_level = _resize(content_work, (h, w)).to(device)
        style_level = []
        for s in style_full:
            sh, sw = s.shape[-2:]
            size = (max(MIN_SIDE, round(sh * factor)), max(MIN_SIDE, round(sw * factor)))
            style_level.append(_resize(s, size).to(device))
        with torch.no_grad():
            feats = net(content_level.contiguous(memory_format=torch.channels_last))
            content_targets = {n: feats[n] for n in config.content_layers}
        gram_targets = style_targets(
            net, style_level, blend, list(config.style_layers), config.gram_normalize
        )
        if image is None:
            image = _initial_image(config, init_full, content_level, style_level, blend, (h, w))
        else:
            image = _resize(image, (h, w))
        image = image.to(device)

        level_callback = None
        if callback is not None:

            def level_callback(step: int, img: torch.Tensor, _offset: int = done) -> None:
                img = img.detach().cpu()
                if luminance:
                    img = preserve_luminance(img, _resize(content_full, tuple(img.shape[-2:])))
                callback(_offset + step, img)

        result = optimize_image(
            image,
            make_loss(net, config, content_targets, gram_targets),
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
        image = _resize(init_full, size)
        return luminance_only(image) if config.preserve_color == "luminance" else image
    if config.init == "content":
        return content.clone()
    if config.init == "style":
        best = max(range(len(styles)), key=lambda k: blend[k])
        return _resize(styles[best].cpu(), size)
    generator = torch.Generator().manual_seed(config.seed)
    return torch.rand(1, 3, *size, generator=generator)
