"""Texture synthesis by matching Gram matrices (Gatys, Ecker & Bethge 2015, arXiv 1505.07376),
and a patch shuffle that shows what a Gram matrix ignores (notebook 02).

Shapes follow the course convention: images are (1, 3, H, W) floats in [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from .errors import BadInputError
from .losses import PerceptualLoss, gram_matrix
from .models import VGGFeatures
from .optimize import Callback, OptimizeResult, optimize_image


def shuffle_patches(image: torch.Tensor, patch: int, seed: int = 0) -> torch.Tensor:
    """Cut ``image`` into ``patch`` x ``patch`` squares and put them back in random order.

    ``image``: (N, C, H, W); every image of the batch gets the same permutation. Only the
    full squares move; a strip narrower than ``patch`` at the right or bottom edge stays
    where it is. The set of pixel values is unchanged, only their arrangement differs.
    ``seed`` fixes the permutation. Returns a new tensor of the same shape.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 4:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise BadInputError(f"shuffle_patches expects an (N, C, H, W) tensor, got {shape}.")
    height, width = image.shape[-2:]
    if not isinstance(patch, int) or not 1 <= patch <= min(height, width):
        raise BadInputError(
            f"patch={patch!r} must be a whole number of pixels between 1 and the shorter "
            f"side of the image ({min(height, width)})."
        )
    rows, cols = height // patch, width // patch
    out = image.clone()
    body = image[..., : rows * patch, : cols * patch]
    # (N, C, rows, patch, cols, patch) -> (rows*cols, N, C, patch, patch): one entry a square
    tiles = body.reshape(*image.shape[:2], rows, patch, cols, patch).permute(2, 4, 0, 1, 3, 5)
    tiles = tiles.reshape(rows * cols, *image.shape[:2], patch, patch)
    order = torch.randperm(rows * cols, generator=torch.Generator().manual_seed(seed))
    tiles = tiles[order.to(image.device)]
    tiles = tiles.reshape(rows, cols, *image.shape[:2], patch, patch).permute(2, 3, 0, 4, 1, 5)
    out[..., : rows * patch, : cols * patch] = tiles.reshape(body.shape)
    return out


def target_grams(
    net: VGGFeatures, image: torch.Tensor, normalize: str = "hw"
) -> dict[str, torch.Tensor]:
    """Gram matrices of ``image`` at every layer ``net`` returns, computed without gradients."""
    with torch.no_grad():
        return {name: gram_matrix(f, normalize) for name, f in net(image).items()}


def synthesize_texture(
    style: torch.Tensor,
    layers: Iterable[str],
    size: int | tuple[int, int] | None = None,
    steps: int = 200,
    net: VGGFeatures | None = None,
    arch: str | None = None,
    pooling: str = "max",
    layer_weights: Mapping[str, float] | None = None,
    balance: bool = True,
    normalize: str = "hw",
    optimizer: str = "lbfgs",
    lr: float | None = None,
    init: torch.Tensor | None = None,
    seed: int = 0,
    callback: Callback | None = None,
    callback_every: int = 10,
    progress: bool = True,
) -> OptimizeResult:
    """A new image with the same Gram matrices as ``style`` at ``layers``, grown from noise.

    Gatys et al. (2015): start from white noise and minimise the style term of the course's
    :class:`nst_utils.losses.PerceptualLoss` with L-BFGS via :func:`nst_utils.optimize_image`.
    ``style``: (1, 3, H, W) in [0, 1]. Layers weigh equally unless ``layer_weights``.

    ``balance`` (default) divides each layer's term by the mean square of its target Gram
    matrix, so every layer starts near the same value (a noise image scores about 0.5-1 per
    layer) whatever the network's activation scale: in trained VGGs the raw terms differ by
    orders of magnitude between layers and the small ones would be ignored. Gatys et al.
    reached the same balance by rescaling their VGG so each filter's mean activation is 1.

    ``size``: output side (int, square) or (height, width); default: the style's size.
    ``net``: a :class:`VGGFeatures` that returns all ``layers`` (built from ``arch`` and
    ``pooling`` when None). ``init`` replaces the noise start. Returns the texture
    (1, 3, h, w) and the history ("style", "total").
    """
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise BadInputError("layers is empty: name at least one VGG layer, e.g. ['relu1_1'].")
    if not isinstance(style, torch.Tensor) or style.dim() != 4 or style.shape[:2] != (1, 3):
        shape = tuple(style.shape) if isinstance(style, torch.Tensor) else type(style).__name__
        raise BadInputError(f"style must be one RGB image of shape (1, 3, H, W), got {shape}.")
    if net is None:
        net = VGGFeatures(layers, arch=arch, pooling=pooling).to(style.device)
    if size is None:
        size = tuple(style.shape[-2:])
    elif isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or min(size) < 1:
        raise BadInputError(f"size={size!r} must be a positive int or a (height, width) pair.")
    weights = {name: 1.0 / len(layers) for name in layers}
    if layer_weights is not None:
        unknown = [name for name in layer_weights if name not in layers]
        if unknown:
            raise BadInputError(f"layer_weights names {unknown}, which are not in layers {layers}.")
        weights = dict(layer_weights)
    loss = PerceptualLoss(net, {}, weights, gram_normalize=normalize, relative=balance)
    loss.set_style(style)
    if init is None:
        generator = torch.Generator().manual_seed(seed)
        init = torch.rand(1, 3, *size, generator=generator).to(style.device)

    def loss_fn(image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"style": loss(image)["style"]}

    return optimize_image(
        init,
        loss_fn,
        steps,
        optimizer=optimizer,
        lr=lr,
        callback=callback,
        callback_every=callback_every,
        progress=progress,
        desc=f"texture {layers[-1]}",
    )
