"""Perceptual losses: content, Gram matrix, style, feature statistics and total variation,
and :class:`PerceptualLoss`, the one loss module every method of the course uses.

Feature tensors are (N, C, H, W). All losses return a scalar tensor (mean over the batch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import BadInputError
from .settings import GRAM_NORMALIZATIONS, FastStyleConfig, GatysConfig


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between two feature maps of the same shape."""
    return F.mse_loss(features, target)


def gram_matrix(features: torch.Tensor, normalize: str = "hw") -> torch.Tensor:
    """Channel correlations of (N, C, H, W) features -> (N, C, C), always in float32.

    ``G[n, i, j] = sum_p F[n, i, p] * F[n, j, p] / Z`` over positions p, with Z:

    * ``"hw"`` (default): H*W, the average product over positions. Size-independent;
      Gatys et al.'s per-layer loss E_l is exactly 1/4 of the MSE between such Grams.
    * ``"chw"``: C*H*W, as in Johnson et al. and PyTorch's tutorial.
    * ``"none"``: the raw sum; grows with image size.

    Under mixed precision the sum over thousands of positions would overflow float16, so
    the features are cast to float32 and autocast is switched off for the product.
    """
    if features.dim() != 4:
        raise BadInputError(
            f"gram_matrix expects (N, C, H, W) features, got {tuple(features.shape)}."
        )
    if normalize not in GRAM_NORMALIZATIONS:
        raise BadInputError(f"normalize={normalize!r}: use one of {GRAM_NORMALIZATIONS}.")
    n, c, h, w = features.shape
    with torch.autocast(features.device.type, enabled=False):
        flat = features.float().reshape(n, c, h * w)
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
        raise BadInputError(f"style layers {missing} have no features or no target Gram matrix.")
    total = features[next(iter(layer_weights))].new_zeros((), dtype=torch.float32)
    for name, weight in layer_weights.items():
        gram = gram_matrix(features[name], normalize)
        total = total + weight * F.mse_loss(gram, target_grams[name].expand_as(gram))
    return total


def feature_stats(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of (N, C, H, W) features: two (N, C) tensors.

    The statistics AdaIN (Huang & Belongie 2017) matches instead of Gram matrices.
    """
    flat = features.float().flatten(2)
    return flat.mean(2), (flat.var(2, unbiased=False) + eps).sqrt()


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of (N, C, H, W) images.

    Small for smooth images; used as a weak regulariser against high-frequency noise.
    """
    dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean()
    dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean()
    return dx + dy


class PerceptualLoss(nn.Module):
    """Content, style, statistics and total-variation terms on the features of a frozen VGG.

    The loss of every method in the course (Gatys et al.; Johnson et al.'s style transfer
    and super-resolution; document enhancement)::

        content_weight * sum_l w_l * MSE(F_l(x), F_l(c))             content layers l
      + style_weight   * sum_l w_l * MSE(G(F_l(x)), G(F_l(s)))       style layers l
      + stats_weight   * sum_l w_l * (MSE(mean) + MSE(std))          stats layers l
      + tv_weight      * TV(x)

    ``net`` is a :class:`nst_utils.models.VGGFeatures` returning every layer named here.
    Style targets are fixed: :meth:`set_style` computes the (blended) Gram matrices and
    channel statistics of the style image(s) once. Content targets are either fixed
    (:meth:`set_content`, Gatys) or given with each batch (``forward(x, content=c)``,
    Johnson: ``c`` goes through the VGG only up to the deepest content layer, without
    gradients). Any batch size works; style targets broadcast over the batch.

    ``relative=True`` divides each layer's term by the mean square of its target (per
    image for content, per layer for Gram matrices and statistics), so every term starts
    near 1 whatever the network's activation scale and one set of weights fits
    torchvision's VGG19, a VGG16 or a Caffe-scale conversion alike. ``relative=False``
    gives the plain losses of the papers.

    ``forward`` returns the weighted terms ``{"content", "style", "tv"}``, plus ``"stats"``
    when stats layers are given (terms with weight 0 are zero tensors and cost nothing);
    their sum is the loss.

    Per-sample targets, for networks trained on many styles at once (conditional instance
    norm, AdaIN): ``forward(..., grams=..., stats=...)`` replaces the fixed style targets
    for one call, with one target per image of the batch; ``content`` may be target
    features instead of images (AdaIN's content target is a feature map). A per-sample
    target is made relative per sample, like content, so a batch split changes nothing.
    """

    def __init__(
        self,
        net: nn.Module,
        content_layers: Mapping[str, float],
        style_layers: Mapping[str, float] | None = None,
        *,
        content_weight: float = 1.0,
        style_weight: float = 1.0,
        stats_layers: Mapping[str, float] | None = None,
        stats_weight: float = 0.0,
        tv_weight: float = 0.0,
        gram_normalize: str = "hw",
        relative: bool = True,
    ) -> None:
        super().__init__()
        if gram_normalize not in GRAM_NORMALIZATIONS:
            raise BadInputError(
                f"gram_normalize={gram_normalize!r}: use one of {GRAM_NORMALIZATIONS}."
            )
        self.net = net
        self.content_layers = {n: float(w) for n, w in content_layers.items() if w > 0}
        self.style_layers = {n: float(w) for n, w in (style_layers or {}).items() if w > 0}
        self.stats_layers = {n: float(w) for n, w in (stats_layers or {}).items() if w > 0}
        self.content_weight = float(content_weight) if self.content_layers else 0.0
        self.style_weight = float(style_weight) if self.style_layers else 0.0
        self.stats_weight = float(stats_weight) if self.stats_layers else 0.0
        self.tv_weight = float(tv_weight)
        self.gram_normalize = gram_normalize
        self.relative = relative
        needed = [*self.content_layers, *self.style_layers, *self.stats_layers]
        available = getattr(net, "available", needed)
        missing = [n for n in needed if n not in available]
        if missing:
            raise BadInputError(
                f"the VGG stops at {available[-1]} but the loss needs layers {missing}; "
                "build VGGFeatures with the deepest content, style and stats layers."
            )
        self.grams: dict[str, torch.Tensor] = {}
        self.stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.content_targets: dict[str, torch.Tensor] = {}

    @classmethod
    def from_config(
        cls, net: nn.Module, config: GatysConfig | FastStyleConfig, **more: object
    ) -> PerceptualLoss:
        """The loss a method's config describes: its ``content_layers`` and ``style_layers``
        weighted by its ``content_weight``, ``style_weight`` and ``tv_weight``; ``more``
        gives the other arguments (``gram_normalize``, ``relative``)."""
        return cls(net, config.content_layers, config.style_layers,
                   content_weight=config.content_weight, style_weight=config.style_weight,
                   tv_weight=config.tv_weight, **more)  # fmt: skip

    @torch.no_grad()
    def set_style(
        self, styles: torch.Tensor | Sequence[torch.Tensor], blend: Sequence[float] | None = None
    ) -> None:
        """Fix the style targets: ``sum_k blend[k] * Gram(style_k)`` per layer (and stats).

        ``styles``: one (1, 3, H, W) image in [0, 1] or a list of them (any sizes);
        ``blend``: one weight per style (default: equal), normalised to sum 1.
        """
        styles = [styles] if isinstance(styles, torch.Tensor) else list(styles)
        if not styles:
            raise BadInputError("set_style needs at least one style image.")
        blend = [1.0] * len(styles) if blend is None else list(blend)
        if len(blend) != len(styles) or sum(blend) <= 0:
            raise BadInputError(f"blend {blend} must give one weight >= 0 per style image.")
        blend = [w / sum(blend) for w in blend]
        grams: dict[str, torch.Tensor] = {}
        means: dict[str, torch.Tensor] = {}
        stds: dict[str, torch.Tensor] = {}
        layers = list(dict.fromkeys([*self.style_layers, *self.stats_layers]))
        for style, weight in zip(styles, blend, strict=True):
            if weight == 0:
                continue
            feats = self.net(style, layers=layers)
            for name in self.style_layers:
                gram = weight * gram_matrix(feats[name], self.gram_normalize)
                grams[name] = grams[name] + gram if name in grams else gram
            for name in self.stats_layers:
                mean, std = feature_stats(feats[name])
                means[name] = means.get(name, 0) + weight * mean
                stds[name] = stds.get(name, 0) + weight * std
        self.grams = grams
        self.stats = {name: (means[name], stds[name]) for name in self.stats_layers}

    @torch.no_grad()
    def set_content(self, content: torch.Tensor) -> None:
        """Fix the content targets to the features of ``content`` (N, 3, H, W) in [0, 1]."""
        feats = self.net(content, layers=list(self.content_layers))
        self.content_targets = {name: feats[name].detach() for name in self.content_layers}

    def _scale(self, target: torch.Tensor, per_image: bool = False) -> torch.Tensor | float:
        if not self.relative:
            return 1.0
        if per_image:  # (N, 1, ...): one scale per image, so a batch split changes nothing
            dims = tuple(range(1, target.dim()))
            return target.pow(2).mean(dim=dims, keepdim=True).clamp(min=1e-12)
        return target.pow(2).mean().clamp(min=1e-12)

    def _target_term(self, value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """MSE(value, target), relative: a batch-1 target broadcasts and is scaled as a
        whole; a per-sample target (one per image) is scaled per sample."""
        if target.shape[0] == 1:
            return F.mse_loss(value, target.expand_as(value)) / self._scale(target)
        return ((value - target).pow(2) / self._scale(target, per_image=True)).mean()

    def forward(
        self,
        image: torch.Tensor,
        content: torch.Tensor | Mapping[str, torch.Tensor] | None = None,
        *,
        grams: Mapping[str, torch.Tensor] | None = None,
        stats: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Weighted terms for ``image`` (N, 3, H, W) in [0, 1].

        ``content``: (N, 3, H, W) images, or their target features ``{layer: (N, C, h,
        w)}`` for every content layer, or None for the targets fixed by :meth:`set_content`.
        ``grams`` (``{layer: (N, C, C)}``) and ``stats`` (``{layer: (mean, std)}``, each
        (N, C)): style targets for this call, one per image (or batch 1), in place of those
        :meth:`set_style` fixed.
        """
        grams = self.grams if grams is None else grams
        stats = self.stats if stats is None else stats
        if self.style_weight and not grams or self.stats_weight and not stats:
            raise BadInputError("call set_style(...) before using a loss with style terms.")
        for name, target in [*grams.items(), *((n, pair[0]) for n, pair in stats.items())]:
            if target.shape[0] not in (1, image.shape[0]):
                raise BadInputError(
                    f"style target of {name} has batch size {target.shape[0]}; give 1 or one "
                    f"per image ({image.shape[0]})."
                )
        layers = list(dict.fromkeys([*self.content_layers, *self.style_layers, *self.stats_layers]))
        targets = self.content_targets
        if self.content_weight and isinstance(content, Mapping):
            missing = [n for n in self.content_layers if n not in content]
            if missing:
                raise BadInputError(f"content targets lack the content layers {missing}.")
            targets = content
        elif self.content_weight and content is not None:
            if content.shape != image.shape:
                raise BadInputError(
                    f"content {tuple(content.shape)} and image {tuple(image.shape)} must have "
                    "the same shape."
                )
            with torch.no_grad():  # the targets need only the layers up to the content layer
                targets = self.net(content, layers=list(self.content_layers))
        elif self.content_weight and not targets:
            raise BadInputError("give content=... or call set_content(...) first.")
        feats = self.net(image, layers=layers)
        zero = image.new_zeros((), dtype=torch.float32)
        content_term = style_term = stats_term = zero
        if self.content_weight:
            for name, weight in self.content_layers.items():
                target = targets[name].expand_as(feats[name]).float()
                diff = (feats[name].float() - target).pow(2)
                diff = diff / self._scale(target, per_image=True)
                content_term = content_term + weight * diff.mean()
        if self.style_weight:
            for name, weight in self.style_layers.items():
                gram = gram_matrix(feats[name], self.gram_normalize)
                style_term = style_term + weight * self._target_term(gram, grams[name])
        if self.stats_weight:
            for name, weight in self.stats_layers.items():
                mean, std = feature_stats(feats[name])
                t_mean, t_std = stats[name]
                loss = self._target_term(mean, t_mean) + self._target_term(std, t_std)
                stats_term = stats_term + weight * loss
        tv = total_variation(image.float()) if self.tv_weight else zero
        terms = {
            "content": self.content_weight * content_term,
            "style": self.style_weight * style_term,
            "tv": self.tv_weight * tv,
        }
        if self.stats_layers:
            terms["stats"] = self.stats_weight * stats_term
        return terms
