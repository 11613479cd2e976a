"""Gatys et al. style transfer (arXiv 1508.06576): optimise the pixels of an image so that
its VGG features match a content photo and its Gram matrices match one or more paintings.

One config dataclass, :class:`~nst_utils.settings.GatysConfig` (also named
``StyleTransferConfig``), holds every knob; :func:`stylize` runs
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .color import luminance_only, match_mean_and_covariance, preserve_luminance
from .device import pick_device
from .errors import BadInputError
from .images import ImageLike, as_tensor, resize_tensor
from .losses import PerceptualLoss
from .models import VGGFeatures, layer_names, min_side
from .optimize import optimize_image
from .settings import MIN_SIDE, GatysConfig
from .settings import StyleTransferConfig as StyleTransferConfig  # notebook 03's name


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


def make_loss(net: VGGFeatures, config: GatysConfig) -> PerceptualLoss:
    """The :class:`PerceptualLoss` that :func:`stylize` minimises, built from ``config``."""
    return PerceptualLoss.from_config(net, config, gram_normalize=config.gram_normalize,
                                      relative=config.relative_losses)  # fmt: skip


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
    config: GatysConfig | None = None,
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
        style_full = [match_mean_and_covariance(s, content_full) for s in style_full]
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
    config: GatysConfig,
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
