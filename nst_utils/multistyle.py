"""One network for many styles: conditional instance normalisation (Dumoulin, Shlens &
Kudlur, "A Learned Representation for Artistic Style", ICLR 2017, arXiv 1610.07629).

Notebook 04's :class:`~nst_utils.networks.TransformerNet` learns one painting. Its instance
norms end in a per-channel scale and shift; here each norm holds one scale and one shift
*per style* (an N x C table, :class:`ConditionalInstanceNorm2d`) and every other weight is
shared, so a style costs 2C numbers per norm (544 for the lite network) instead of a new
network. The network is trained on N styles at once with 04's perceptual loss, each image
of a batch with its own style (:func:`train`). At run time a style is an index, or convex
weights over the N styles, which mix the scales and shifts (the paper's interpolation):
:func:`stylize_tensor`.

A small run on a CPU (the four paintings of ``data/styles``, any folder of photos)::

    from nst_utils import multistyle
    config = multistyle.MultiStyleConfig(steps=300, crop_size=128)  # lite network, batch 4
    net, result = multistyle.train(config, "data/styles", "photos/", "four_styles.pth")
    out = multistyle.stylize_tensor(net, photo, [0.5, 0.5, 0, 0])  # half style 0, half 1

The defaults (4000 steps of 256 px crops) are for a GPU or an afternoon.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import load_model
from .datasets import _derive_seed
from .errors import BadInputError
from .fast_style import load_style, thumbnail
from .fast_style import make_loss as single_style_loss
from .files import SUFFIXES, find_files
from .images import ImageLike, check_images, describe
from .losses import PerceptualLoss
from .networks import LITE, MIN_SIDE, ResidualBlock, TransformerNet, infer
from .settings import MultiStyleConfig
from .training import (
    Run,
    RunOptions,
    TrainResult,
    describe_photos,
    identify_data,
    identify_images,
    loss_autocast,
    sample_grid,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

KIND = MultiStyleConfig.KIND
NETWORK_NAME = "multistyle_transformer"
StyleChoice = int | Sequence[float] | torch.Tensor


class ConditionalInstanceNorm2d(nn.Module):
    """Instance normalisation whose scale and shift are chosen per style.

    ``weight`` and ``bias`` are (styles, C) tables. ``forward(x, mix)``: with ``mix``
    (B, styles) convex weights (one-hot: one style), image b gets the scale ``mix[b] @
    weight`` and the shift ``mix[b] @ bias``; (B, C, H, W) -> (B, C, H, W). Mixing the
    parameters is exactly how the paper blends styles.
    """

    def __init__(self, channels: int, styles: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(styles, channels))
        self.bias = nn.Parameter(torch.zeros(styles, channels))

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        scale = (mix @ self.weight)[:, :, None, None]
        shift = (mix @ self.bias)[:, :, None, None]
        return F.instance_norm(x, eps=self.eps) * scale + shift


def _apply(module: nn.Module, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """``module(x)``, with ``mix`` handed to every conditional norm inside it."""
    if isinstance(module, ConditionalInstanceNorm2d):
        return module(x, mix)
    if isinstance(module, ResidualBlock):
        return x + _apply(module.body, x, mix)
    if isinstance(module, nn.Sequential):
        for child in module:
            x = _apply(child, x, mix)
        return x
    return module(x)


class MultiStyleNet(TransformerNet):
    """04's transformer with every instance norm conditional on the style:
    ``net(images, style)``, (B, 3, H, W) in [0, 1] -> (B, 3, H, W).

    ``style``: (B,) integer style indices, or (B or 1, styles) float weights, each row
    convex (>= 0, sum 1; see :func:`style_weights`). ``styles``: N, the number of
    styles; every other argument is :class:`TransformerNet`'s, and so is the forward pass
    (padding, stages, output), with the style handed to each norm. Paper: Johnson et al.'s
    network with nearest-neighbour resize + conv upsampling, 32 styles in one network;
    the lite size here holds 544 numbers per style.
    """

    def __init__(self, styles: int, **network: Any) -> None:
        if isinstance(styles, bool) or not isinstance(styles, int) or styles < 1:
            raise BadInputError(f"styles={styles!r}: give the number of styles, >= 1.")
        super().__init__(**network)
        self.styles = styles
        for module in list(self.modules()):
            for name, child in module.named_children():
                if isinstance(child, nn.InstanceNorm2d):
                    setattr(module, name, ConditionalInstanceNorm2d(child.num_features, styles))

    @classmethod
    def lite(cls, styles: int, **overrides: object) -> MultiStyleNet:
        """The lite size of notebook 04 (:data:`nst_utils.networks.LITE`) for ``styles``."""
        return cls(styles, **{**LITE, **overrides})

    @property
    def spec(self) -> dict:
        """What :func:`nst_utils.networks.build_network` rebuilds the network from."""
        kwargs = copy.deepcopy(self._kwargs) | {"styles": self.styles}
        return {"name": NETWORK_NAME, "kwargs": kwargs}

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """``style`` is used as it is (a user's choice goes through :func:`style_weights`
        first, which checks it)."""
        check_images(x, "MultiStyleNet", MIN_SIDE)
        mix = style if style.is_floating_point() else F.one_hot(style, self.styles)
        mix = mix.to(x.dtype).expand(len(x), -1)
        height, width = x.shape[-2:]
        y = F.pad(x, (0, (-width) % 4, 0, (-height) % 4), mode="reflect")
        for stage in (self.stem, self.down1, self.down2, self.blocks, self.up1, self.up2):
            y = _apply(stage, y, mix)
        y = self.head(y)[..., :height, :width]
        if self.output == "tanh":
            return 0.5 + 0.5 * torch.tanh(y)
        return x + y if self.residual else y


def style_weights(style: StyleChoice, styles: int, batch: int | None = None) -> torch.Tensor:
    """A style choice -> (rows, styles) float weights, each row >= 0 and summing to 1.

    ``style``: an index in 0 .. styles - 1 (one style), ``styles`` weights (a blend,
    normalised to sum 1, as ``--style-blend`` does), a (B,) tensor of indices or a (B,
    styles) tensor of weights (one style per image). With ``batch``, one row is repeated
    to ``batch`` rows and B must equal ``batch``. Anything else is a BadInputError naming
    ``style``.
    """
    if isinstance(style, bool):
        raise BadInputError(f"style={style!r}: give a style index or one weight per style.")
    if isinstance(style, int) or (
        isinstance(style, torch.Tensor) and style.dim() == 0 and not style.is_floating_point()
    ):
        style = torch.tensor([int(style)])
    if isinstance(style, torch.Tensor) and not style.is_floating_point():
        if style.dim() != 1 or not ((style >= 0) & (style < styles)).all():
            raise BadInputError(
                f"style index {style.tolist()} is out of range: this model holds {styles} "
                f"styles, 0 .. {styles - 1}."
            )
        weights = F.one_hot(style.long(), styles).float()
    else:
        try:
            weights = torch.as_tensor(style, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise BadInputError(
                f"style={style!r}: give a style index or one weight per style."
            ) from None
        weights = weights.unsqueeze(0) if weights.dim() == 1 else weights
        if weights.dim() != 2 or weights.shape[1] != styles:
            raise BadInputError(
                f"style weights of shape {tuple(weights.shape)}: give {styles} weights, one "
                "per style of the model (or one row of them per image)."
            )
        total = weights.sum(1, keepdim=True)
        if not (torch.isfinite(weights).all() and (weights >= 0).all() and (total > 0).all()):
            raise BadInputError(
                f"style weights {weights.tolist()} must be finite and >= 0 with a positive "
                "sum (they are scaled to sum 1)."
            )
        weights = weights / total
    if batch is not None and len(weights) not in (1, batch):
        raise BadInputError(
            f"style gives {len(weights)} styles for {batch} images: give one, or one per image."
        )
    return weights if batch is None else weights.expand(batch, -1)


class FixedStyle(nn.Module):
    """A multi-style network with its style chosen: ``(B, 3, H, W) -> (B, 3, H, W)``, like
    04's networks, for :func:`~nst_utils.networks.infer`, ``prepare_for_inference``, ONNX
    export and :mod:`nst_utils.video`."""

    def __init__(self, net: MultiStyleNet, style: StyleChoice) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mix", style_weights(style, net.styles))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.mix)


def style_sources(styles: str | os.PathLike | Sequence[ImageLike]) -> tuple[list, list[str]]:
    """``(sources, names)``: the image files of a folder (sorted, nested or flat; a
    sub-folder that cannot be read is left out, and :func:`train` warns about it), or the
    given list of images (paths, arrays, tensors) in index order."""
    if isinstance(styles, (str, os.PathLike)):
        folder = Path(styles).expanduser()
        if not folder.is_dir():
            raise BadInputError(
                f"styles={str(styles)!r}: not a folder; give a folder of style images or a "
                "list of images."
            )
        files, _ = find_files(folder, SUFFIXES)
        if not files:
            raise BadInputError(f"styles={str(styles)!r}: no image files in this folder.")
        return files, [str(p.relative_to(folder)) for p in files]
    sources = list(styles)
    if not sources:
        raise BadInputError("styles is empty: give at least one style image.")
    names = [Path(describe(s)).name if isinstance(s, (str, os.PathLike)) else f"style {k}"
             for k, s in enumerate(sources)]  # fmt: skip
    return sources, names


class StyledPhotos(torch.utils.data.Dataset):
    """Item ``k``: (crop k of ``photos``, its style index), a pure function of ``k``.

    Each run of N consecutive keys holds every style once, in an order drawn per run from
    ``seed``: every style gets the same share of the training, and a batch of B >= N
    images holds them all. Exact resume and a split over processes keep working.
    """

    def __init__(self, photos: torch.utils.data.Dataset, styles: int, seed: int) -> None:
        self.photos, self.styles, self.seed = photos, styles, seed

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        run, position = divmod(k, self.styles)
        generator = torch.Generator().manual_seed(_derive_seed(self.seed, "styles", run))
        order = torch.randperm(self.styles, generator=generator)
        return self.photos[k], order[position]


def build_network(config: MultiStyleConfig, styles: int) -> MultiStyleNet:
    """The untrained network of ``config`` for ``styles`` styles (scaled tanh output, as in
    :func:`nst_utils.fast_style.build_network`)."""
    if config.network == "lite":
        return MultiStyleNet.lite(styles, upsample=config.upsample, output="tanh")
    return MultiStyleNet(styles, upsample=config.upsample, output="tanh")


def make_loss(
    config: MultiStyleConfig, styles: Sequence[torch.Tensor]
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
    """``loss(output, content, index) -> {term: value}``: 04's loss of ``config`` with the
    style of each image chosen by ``index`` (B,). ``styles``: (1, 3, H, W) images.

    Every style's Gram matrices are computed once; each image's style term is made
    relative with its own style's targets, so it equals what
    :func:`nst_utils.fast_style.make_loss` gives for that style alone.
    """
    loss: PerceptualLoss = single_style_loss(config, styles[0])
    table: dict[str, list[torch.Tensor]] = {name: [] for name in loss.style_layers}
    for style in styles:
        loss.set_style(style)
        for name in table:
            table[name].append(loss.grams[name])
    grams = {name: torch.cat(grams) for name, grams in table.items()}  # (N, C, C) each

    def per_sample(output, content, index) -> dict[str, torch.Tensor]:
        return loss(output, content, grams={n: g[index] for n, g in grams.items()})

    return per_sample


def train(
    config: MultiStyleConfig,
    styles: str | os.PathLike | Sequence[ImageLike],
    data: str | os.PathLike | torch.utils.data.Dataset,
    output: str | os.PathLike,
    **options: Unpack[RunOptions],
) -> tuple[MultiStyleNet, TrainResult]:
    """Train one network on all ``styles`` (a folder of style images or a list of them; the
    index of a style is its place in that order) with the photos ``data`` (a folder, or a
    dataset of (3, S, S) crops); write it to ``output``, return ``(network, result)``.

    Per-sample styles (each image of a batch has its own, as in the paper's code) rather
    than one style per step: every step then trains the shared weights on several styles,
    so they do not swing towards whichever style came last, and it costs the same, as the
    Gram targets are computed once. Checkpoints, samples (the fixed crops in each of the
    first 8 styles) and ``log.csv`` go to the run folder (:class:`~nst_utils.training.RunOptions`).

    The run is set up as :func:`nst_utils.fast_style.train` sets up its own: the output is
    checked before any work and may be none of the inputs (style images, VGG weights
    file); a run folder with a checkpoint needs ``resume=True``, which continues exactly
    and refuses other settings, other style images (content-identified, in order) or
    other photos.
    """
    sources, names = style_sources(styles)
    config = dataclasses.replace(config, style=config.style or ", ".join(names))
    run = Run(
        config, output, inputs=sources, folders={"--data": data, "--styles": styles}, **options
    )
    photos = run.photos("--data", data)
    images = [load_style(s, config, run.device, f"style {names[k]}") for k, s in enumerate(sources)]
    run.start({"style images": identify_images(sources, images), "--data": identify_data(photos)})
    loss = make_loss(config, images)
    fixed = run.fixed(photos)
    shown = min(len(images), 8)

    def loss_step(model: nn.Module, batch: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        crops, index = batch
        crops = crops.contiguous(memory_format=torch.channels_last)
        out = model(crops, index)
        with loss_autocast(config.loss_precision, run.device):
            return loss(out, crops, index)

    def sample(model: nn.Module) -> torch.Tensor:
        styled = [model(fixed, torch.tensor([k], device=run.device)) for k in range(shown)]
        return sample_grid([fixed, *(s.clamp(0, 1) for s in styled)])

    net, result = run.fit(
        lambda: build_network(config, len(images)),
        loss_step,
        StyledPhotos(photos, len(images), config.seed),
        sample=sample,
    )
    run.save(net, result, data=describe_photos(photos), styles=names,
             style_thumbnails=[thumbnail(i.cpu(), 96) for i in images])  # fmt: skip
    return net, result


def load(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[MultiStyleNet, dict]:
    """A trained multi-style network and its record; ``record["extra"]["styles"]`` names
    the styles in index order. Any other kind of model file is refused by name."""
    return load_model(path, KIND, device)


def stylize_tensor(
    net: MultiStyleNet, images: torch.Tensor, style: StyleChoice = 0
) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> the images in ``style``: an index, or one weight per style
    (a convex blend of the styles' scales and shifts; see :func:`style_weights`)."""
    if not isinstance(net, MultiStyleNet):
        raise BadInputError(
            f"net is a {type(net).__name__}, not a multi-style network; load one with "
            "nst_utils.multistyle.load."
        )
    style_weights(style, net.styles, len(images))  # one style, or one per image
    return infer(FixedStyle(net, style), images)
