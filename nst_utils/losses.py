"""Perceptual losses: content, Gram matrix, style and total variation.

Feature tensors are (N, C, H, W). All losses return a scalar tensor (mean over the batch).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from .errors import NSTError

GRAM_NORMALIZATIONS = ("hw", "chw", "none")


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between two feature maps of the same shape."""
    return F.mse_loss(features, target)


def gram_matrix(features: torch.Tensor, normalize: str = "hw") -> torch.Tensor:
    """Channel correlations of (N, C, H, W) features -> (N, C, C).

    ``G[n, i, j] = sum_p F[n, i, p] * F[n, j, p] / Z`` over positions p, with Z:

    * ``"hw"`` (default): H*W, the average product over positions. Size-independent;
      Gatys et al.'s per-layer loss E_l is exactly 1/4 of the MSE between such Grams.
    * ``"chw"``: C*H*W, as in Johnson et al. and PyTorch's tutorial.
    * ``"none"``: the raw sum; grows with image size.
    """
    if features.dim() != 4:
        raise NSTError(f"gram_matrix expects (N, C, H, W) features, got {tuple(features.shape)}.")
    if normalize not in GRAM_NORMALIZATIONS:
        raise NSTError(f"normalize={normalize!r}: use one of {GRAM_NORMALIZATIONS}.")
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    gram = torch.bmm(flat, flat.transpose(1, 2))
    if normalize == "hw":
        gram = gram / (h * w)
    elif normalize == "chw":
        gram = gram / (c * h * w)
    return gram


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float] | None = None,
    normalize: str = "hw",
) -> torch.Tensor:
    """Weighted sum over layers of the MSE between Gram matrices of features and targets.

    ``layer_weights`` maps layer name -> weight (default: equal weights summing to 1,
    as in Gatys et al.). Target Grams may have batch size 1 and broadcast over the batch.
    """
    if layer_weights is None:
        layer_weights = {name: 1.0 / len(target_grams) for name in target_grams}
    missing = [n for n in layer_weights if n not in features or n not in target_grams]
    if missing:
        raise NSTError(f"style layers {missing} have no features or no target Gram matrix.")
    total = features[next(iter(layer_weights))].new_zeros(())
    for name, weight in layer_weights.items():
        gram = gram_matrix(features[name], normalize)
        total = total + weight * F.mse_loss(gram, target_grams[name].expand_as(gram))
    return total


def relative_weights(
    weights: Mapping[str, float], targets: Mapping[str, torch.Tensor]
) -> dict[str, float]:
    """Each layer's weight divided by the mean square of its target (features or Gram).

    Every weighted MSE term then starts near 1 whatever the network's activation scale,
    so weights chosen with one network (or at one layer) mean the same elsewhere.
    """
    return {n: w / targets[n].pow(2).mean().clamp(min=1e-12).item() for n, w in weights.items()}


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of (N, C, H, W) images.

    Small for smooth images; used as a weak regulariser against high-frequency noise.
    """
    dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean()
    dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean()
    return dx + dy
