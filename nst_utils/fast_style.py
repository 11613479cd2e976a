"""Fast style transfer (Johnson, Alahi & Fei-Fei 2016, arXiv 1603.08155): train a network
once with the perceptual loss of one painting, then stylise any photo in one pass.

The method in four lines: a :class:`~nst_utils.networks.TransformerNet` maps a photo ``x``
to ``y = f(x)``; the loss is :class:`~nst_utils.losses.PerceptualLoss` with content target
``x`` itself (at ``relu3_3`` of VGG16) and style targets the painting's Gram matrices
(``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3``), plus total variation; Adam trains
``f`` on random crops of many photos (:func:`nst_utils.training.fit`). One config
dataclass, :class:`FastStyleConfig`, holds every setting; :func:`train` and
:func:`stylize_tensor` are the method.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from .checkpoints import load_model
from .errors import BadInputError
from .gatys import layers_min_side
from .images import ImageLike, as_tensor, describe
from .losses import PerceptualLoss
from .models import VGGFeatures
from .networks import TransformerNet, infer
from .settings import SIZES, FastStyleConfig
from .training import (
    Run,
    RunOptions,
    TrainResult,
    describe_photos,
    identify_data,
    identify_image,
    loss_autocast,
    sample_grid,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

KIND = FastStyleConfig.KIND


def build_network(config: FastStyleConfig) -> TransformerNet:
    """The (untrained) transformer network ``config`` describes, with the paper's scaled
    tanh output (measured here: without it, a lite network's colours drifted out of range
    and a loss spike at step 280 of 300 wiped out the style it had learnt)."""
    return TransformerNet(**SIZES[config.network], upsample=config.upsample, output="tanh")


def make_loss(config: FastStyleConfig, style: torch.Tensor) -> PerceptualLoss:
    """The perceptual loss of ``config`` with the style targets of ``style`` (1, 3, H, W)."""
    vgg = VGGFeatures(
        [*config.content_layers, *config.style_layers], arch=config.arch, weights=config.weights
    ).to(style.device, memory_format=torch.channels_last)
    loss = PerceptualLoss.from_config(vgg, config)
    loss.set_style(style)
    return loss


def thumbnail(image: torch.Tensor, side: int = 128) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1] -> (3, h, w) uint8 with longest side ``side``: kept in models."""
    return (as_tensor(image, side)[0] * 255 + 0.5).to(torch.uint8)


def load_style(
    source: ImageLike, config: FastStyleConfig, device: torch.device, name: str = "style"
) -> torch.Tensor:
    """The style image at ``config.style_size`` on ``device``, (1, 3, H, W); refused (naming
    ``name``) when its shorter side cannot reach the deepest style layer."""
    image = as_tensor(source, config.style_size, device=device, name=name)
    if config.style_layers:
        need, deepest = layers_min_side(list(config.style_layers), config.arch)
        if min(image.shape[-2:]) < need:
            raise BadInputError(
                f"{name}: {image.shape[-1]}x{image.shape[-2]} px at style_size="
                f"{config.style_size}, but layer {deepest} needs at least {need} px per side; "
                "raise style_size or use a less elongated style image."
            )
    return image


def train(
    config: FastStyleConfig,
    style: ImageLike,
    data: str | os.PathLike | torch.utils.data.Dataset,
    output: str | os.PathLike,
    **options: Unpack[RunOptions],
) -> tuple[nn.Module, TrainResult]:
    """Train a style network on ``data`` (a folder of photos, or a dataset of crops) in the
    style of ``style``; write the model to ``output`` and return ``(network, result)``.

    Checkpoints, samples and the loss log go to the run folder; ``options`` are the run
    options of every method (:class:`~nst_utils.training.RunOptions`: ``run_dir``,
    ``resume``, ``progress``, ``callback``). The output path is checked before any work
    starts.
    """
    name = Path(describe(style)).name if isinstance(style, (str, os.PathLike)) else "style image"
    config = dataclasses.replace(config, style=config.style or name)
    run = Run(config, output, inputs=[style], folders={"--data": data}, **options)
    photos = run.photos("--data", data)
    style_image = load_style(style, config, run.device)
    run.start({"style image": identify_image(style, style_image), "--data": identify_data(photos)})
    loss = make_loss(config, style_image)
    fixed = run.fixed(photos)  # the same crops in every sample picture

    def loss_step(model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = batch.contiguous(memory_format=torch.channels_last)
        output = model(batch)
        with loss_autocast(config.loss_precision, run.device):
            return loss(output, content=batch)

    def sample(model: nn.Module) -> torch.Tensor:
        return sample_grid([fixed, model(fixed).clamp(0, 1)])

    net, result = run.fit(lambda: build_network(config), loss_step, photos, sample=sample)
    run.save(net, result, data=describe_photos(photos),
             style_thumbnail=thumbnail(style_image.cpu()))  # fmt: skip
    return net, result


def load(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """A trained style network and its record (config, extras) from a model file."""
    return load_model(path, KIND, device)


def stylize_tensor(net: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """One pass of a trained network: (N, 3, H, W) in [0, 1] -> the stylised images."""
    return infer(net, image)
