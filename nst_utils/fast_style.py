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
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.utils import make_grid

from .checkpoints import load_model
from .datasets import PhotoFolder
from .device import pick_device
from .errors import BadInputError
from .files import check_output
from .images import ImageLike, as_tensor, describe
from .losses import PerceptualLoss
from .models import VGGFeatures, _check_arch, layer_names
from .networks import SIZES, TransformerNet, infer
from .options import option
from .training import (
    PRECISIONS,
    TrainingConfig,
    TrainResult,
    fit,
    initialized,
    loss_autocast,
    save_trained,
)

KIND = "fast_style"
NETWORKS = tuple(SIZES)  # lite, medium, paper: networks.SIZES
MODEL_SUFFIXES = (".pth", ".pt")


def _content_layers() -> dict[str, float]:
    # The paper's is relu2_2. With the course's trained VGG16 (HED's, an edge detector),
    # relu2_2 holds every edge of the photo in place and the lite networks painted
    # blue-and-cream etchings; relu3_3 left them a little more of the painting's palette
    # (models/README.md shows both; the difference is modest).
    return {"relu3_3": 1.0}


def _paper_style_layers() -> dict[str, float]:
    return {name: 0.25 for name in ("relu1_2", "relu2_2", "relu3_3", "relu4_3")}


@dataclass
class FastStyleConfig(TrainingConfig):
    """Every setting of a fast style transfer training run (and the model file's record).

    Paper (Johnson et al. 2016, supplementary): VGG16, content ``relu2_2``, style
    ``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3``, COCO photos resized to 256 x 256,
    batch 4, 40,000 steps (two epochs), Adam lr 1e-3, style weight 5 and content weight 1
    with their loss normalisation, TV weight 1e-6 .. 1e-4. Here the losses are relative
    (each layer's term divided by its target's mean square, see :class:`PerceptualLoss`),
    so the weights' scale does not depend on the VGG16's activation scale; the content
    layer is ``relu3_3`` (see ``_content_layers``).
    """

    network: str = option(
        "lite", "network size: lite (fast on CPUs), medium or paper", choices=NETWORKS
    )
    upsample: str = option(
        "nearest", "upsampling: nearest (resize + conv) or transposed (the paper's)",
        choices=("nearest", "transposed"),
    )  # fmt: skip
    style_size: int = option(256, "longest side of the style image for its Gram matrices, px")
    content_layers: dict[str, float] = option(
        help="content layers, NAME[:WEIGHT],...", factory=_content_layers
    )
    style_layers: dict[str, float] = option(
        help="style layers, NAME[:WEIGHT],...", factory=_paper_style_layers
    )
    content_weight: float = option(1.0, "weight of the content loss")
    style_weight: float = option(3.0, "weight of the style loss (higher = more painterly)")
    tv_weight: float = option(1.0, "total variation weight (smooths the output)")
    arch: str = option("vgg16", "loss network (paper: vgg16)", choices=("vgg16", "vgg19"))
    weights: str | None = option(
        None, "loss network weights: imagenet | random | FILE.pth", default_help="NST_WEIGHTS"
    )
    loss_precision: str = option(
        "auto",
        "number format of the VGG loss network: bfloat16 (autocast; about twice as fast where "
        "the device computes it natively: GPUs of compute capability 8.0 or newer, CPUs with "
        "AMX or AVX512-BF16), float32, or auto (bfloat16 where native, else float32)",
        choices=PRECISIONS,
    )
    style: str = option("", "name of the style image (recorded in the model)", cli=False)

    def check(self) -> None:
        """Raise :class:`BadInputError` naming the first bad setting."""
        super().check()
        if self.network not in NETWORKS:
            raise BadInputError(f"network={self.network!r}: use one of {NETWORKS}.")
        arch = _check_arch(self.arch)
        valid = layer_names(arch)
        for kind in ("content_layers", "style_layers"):
            unknown = [n for n in getattr(self, kind) if n not in valid]
            if unknown:
                raise BadInputError(f"{kind}: unknown {arch.upper()} layer(s) {unknown}.")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < float("inf")):
                raise BadInputError(f"{name} must be finite and >= 0, got {value!r}.")
        content = self.content_weight and any(w > 0 for w in self.content_layers.values())
        style = self.style_weight and any(w > 0 for w in self.style_layers.values())
        if not (content or style or self.tv_weight):
            raise BadInputError(
                "content_weight, style_weight and tv_weight (or the layers' weights) are all "
                "0: nothing to train. Give the style a weight, e.g. --style-weight 3."
            )
        self.check_layers_fit([*self.content_layers, *self.style_layers], arch)
        if not 16 <= self.style_size <= 4096:
            raise BadInputError(f"style_size must be 16 .. 4096 px, got {self.style_size}.")
        if self.loss_precision not in PRECISIONS:
            raise BadInputError(
                f"loss_precision must be one of {PRECISIONS}, got {self.loss_precision!r}."
            )


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
    loss = PerceptualLoss(
        vgg,
        config.content_layers,
        config.style_layers,
        content_weight=config.content_weight,
        style_weight=config.style_weight,
        tv_weight=config.tv_weight,
    )
    loss.set_style(style)
    return loss


def _thumbnail(image: torch.Tensor, side: int = 128) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1] -> (3, h, w) uint8 with longest side ``side``: kept in models."""
    small = as_tensor(image, side)
    return (small[0] * 255 + 0.5).to(torch.uint8)


def train(
    config: FastStyleConfig,
    style: ImageLike,
    data: str | os.PathLike | torch.utils.data.Dataset,
    output: str | os.PathLike,
    *,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    callback=None,
) -> tuple[nn.Module, TrainResult]:
    """Train a style network on ``data`` (a folder of photos, or a dataset of crops) in the
    style of ``style``; write the model to ``output`` and return ``(network, result)``.

    Checkpoints, samples and the loss log go to ``run_dir`` (default: ``output`` without
    its suffix plus ``.run``); ``resume=True`` continues from its checkpoint. The output
    path is checked before any work starts.
    """
    from .gatys import layers_min_side
    from .training import check_data_folder, identify_data, identify_image, start_run

    style_is_file = isinstance(style, (str, os.PathLike))
    name = Path(describe(style)).name if style_is_file else "style image"
    config = dataclasses.replace(config, style=config.style or name)
    config.check()
    output = check_output(output, inputs=[style] if style_is_file else [],
                          suffixes=MODEL_SUFFIXES, what="output")  # fmt: skip
    run_dir = Path(run_dir) if run_dir is not None else output.with_suffix(".run")
    folder = data if isinstance(data, (str, os.PathLike)) else None
    if folder is not None:
        check_data_folder(folder)
        data = PhotoFolder(folder, crop_size=config.crop_size, seed=config.seed)
    device = pick_device(config.device)
    style_image = as_tensor(style, config.style_size, device=device, name="style")
    if config.style_layers:  # the style image's shorter side must reach the deepest layer
        need, deepest = layers_min_side(list(config.style_layers), config.arch)
        if min(style_image.shape[-2:]) < need:
            raise BadInputError(
                f"style: {style_image.shape[-1]}x{style_image.shape[-2]} px at style_size="
                f"{config.style_size}, but layer {deepest} needs at least {need} px per side; "
                "raise style_size or use a less elongated style image."
            )
    inputs = {"style image": identify_image(style, style_image), "--data": identify_data(data)}
    run_dir = start_run(run_dir, output, config, kind=KIND, resume=resume, data_folder=folder,
                        inputs=inputs)  # fmt: skip
    loss = make_loss(config, style_image)
    net = initialized(lambda: build_network(config), config.seed)
    fixed = torch.stack([data[k] for k in range(3)]).to(device)  # the same crops every time

    def loss_step(model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = batch.contiguous(memory_format=torch.channels_last)
        output = model(batch)
        with loss_autocast(config.loss_precision, device):
            return loss(output, content=batch)

    def sample(model: nn.Module) -> torch.Tensor:
        out = model(fixed).clamp(0, 1)
        return make_grid(torch.cat([fixed, out]), nrow=len(fixed), padding=2).unsqueeze(0)

    result = fit(net, loss_step, data, config, kind=KIND, run_dir=run_dir, resume=resume,
                 extra={"inputs": inputs}, sample=sample, callback=callback,
                 progress=progress)  # fmt: skip
    where = f" in {data.root.name}" if hasattr(data, "root") else ""
    save_trained(output, net, result, kind=KIND, config=config, data=f"{len(data)} photos{where}",
                 style_thumbnail=_thumbnail(style_image.cpu()))  # fmt: skip
    return net, result


def load(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """A trained style network and its record (config, extras) from a model file."""
    return load_model(path, KIND, device)


def stylize_tensor(net: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """One pass of a trained network: (N, 3, H, W) in [0, 1] -> the stylised images."""
    return infer(net, image)
