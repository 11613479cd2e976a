"""Image quality scores, computed the way super-resolution papers report them.

:func:`psnr` and :func:`ssim` (from ``torchmetrics``, data range 1) score an image against
its target, by default on the luma channel Y of ITU-R BT.601 YCbCr (:func:`rgb_to_y`; the
eye is most sensitive to luminance detail) after cutting ``border`` pixels off every side
(customarily the scale factor: there no method has full context). ``channel="rgb"``
scores all three channels, as notebook 06 does for document pages.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from .errors import BadInputError
from .networks import check_images

CHANNELS = ("y", "rgb")


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """Luma Y of ITU-R BT.601 YCbCr, as MATLAB's ``rgb2ycbcr`` (the super-resolution
    literature's convention): (N, 3, H, W) RGB in [0, 1] -> (N, 1, H, W) in [16/255,
    235/255]: ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255``."""
    check_images(image, "rgb_to_y", min_side=1)
    weights = image.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return (16.0 + (image * weights).sum(1, keepdim=True)) / 255.0


def _prepare(
    output: torch.Tensor, target: torch.Tensor, border: int, channel: str, who: str
) -> tuple[torch.Tensor, torch.Tensor]:
    check_images(output, f"{who}'s output", min_side=1)
    check_images(target, f"{who}'s target", min_side=1)
    if output.shape != target.shape:
        raise BadInputError(
            f"output {tuple(output.shape)} and target {tuple(target.shape)} must have the "
            "same shape; crop the target to the output's size first."
        )
    if channel not in CHANNELS:
        raise BadInputError(f"channel={channel!r}: use one of {CHANNELS}.")
    if isinstance(border, bool) or not isinstance(border, int) or border < 0:
        raise BadInputError(f"border={border!r}: give a whole number of pixels >= 0.")
    if min(output.shape[-2:]) <= 2 * border:
        raise BadInputError(
            f"border={border} leaves nothing of a {tuple(output.shape[-2:])} image; use a "
            "smaller border or a larger image."
        )
    height, width = output.shape[-2:]
    window = (..., slice(border, height - border), slice(border, width - border))
    output, target = output.detach()[window].double(), target.detach()[window].double()
    if channel == "y":
        return rgb_to_y(output), rgb_to_y(target)
    return output, target


def psnr(
    output: torch.Tensor, target: torch.Tensor, *, border: int = 0, channel: str = "y"
) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, dB: (N,) = 10 log10(1 / MSE) for images in
    [0, 1] (``torchmetrics``' ``peak_signal_noise_ratio``, data range 1).

    ``channel="y"``: on BT.601 luma (:func:`rgb_to_y`), as super-resolution papers report
    it; ``"rgb"``: over all three channels. ``border``: pixels cut off every side first
    (customarily the scale factor). Identical images give ``inf`` (no cap); an error of
    0.1 everywhere gives 20 dB in RGB.
    """
    output, target = _prepare(output, target, border, channel, "psnr")
    return peak_signal_noise_ratio(
        output, target, data_range=1.0, reduction="none", dim=(1, 2, 3)
    ).float()


def ssim(
    output: torch.Tensor, target: torch.Tensor, *, border: int = 0, channel: str = "y"
) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004): (N,), 1 for identical images.

    ``torchmetrics``' ``structural_similarity_index_measure`` with the paper's constants:
    Gaussian window 11 px, sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1. ``channel`` and
    ``border`` as in :func:`psnr`; images need at least 11 px per side after the border.
    """
    output, target = _prepare(output, target, border, channel, "ssim")
    if min(output.shape[-2:]) < 11:
        raise BadInputError(
            f"SSIM needs at least 11x11 px (its window); got {tuple(output.shape[-2:])} "
            "after the border."
        )
    return structural_similarity_index_measure(
        output, target, data_range=1.0, reduction="none"
    ).float()
