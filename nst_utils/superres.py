"""Single-image super-resolution with a perceptual loss (Johnson, Alahi & Fei-Fei 2016,
arXiv 1603.08155, section 4.2): a network learns to turn a small, blurry photo into one
``scale`` times larger.

The method in four lines: high-resolution (HR) crops of photos are degraded the paper's
way (:func:`degrade_resolution`: Gaussian blur, then bicubic downsampling by ``scale``); a
:class:`~nst_utils.networks.SuperResolutionNet` maps each low-resolution (LR) crop back to
HR size; the loss compares output and HR crop either in VGG16 feature space (``relu2_2``,
the paper's *feature reconstruction loss*, via :class:`~nst_utils.losses.PerceptualLoss`)
or pixel by pixel (mean squared error, the paper's baseline), plus a consistency term
(the output, degraded again, must give back the LR input); Adam trains the network
(:func:`nst_utils.training.fit`). :func:`upscale` applies a trained network,
:func:`bicubic` is the classical baseline; :mod:`nst_utils.metrics` scores results.

Metrics are computed the way super-resolution papers report them: on the luma channel Y
of ITU-R BT.601 YCbCr (:func:`rgb_to_y`; the eye is most sensitive to luminance detail,
and colour is mostly carried over from the LR input anyway), after cutting ``scale``
pixels off every border (where no method has full context): :mod:`nst_utils.metrics`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF

from .checkpoints import load_model
from .datasets import PhotoFolder
from .errors import BadInputError
from .images import ImageLike, as_tensor, check_images
from .losses import PerceptualLoss, total_variation
from .models import VGGFeatures
from .networks import SuperResolutionNet, infer
from .settings import SuperResolutionConfig
from .training import Run, RunOptions, TrainResult, identify_data, sample_grid

if TYPE_CHECKING:
    from typing_extensions import Unpack

KIND = SuperResolutionConfig.KIND


def build_network(config: SuperResolutionConfig) -> SuperResolutionNet:
    """The (untrained) super-resolution network ``config`` describes."""
    return SuperResolutionNet(scale=config.scale, norm=config.norm, residual=config.residual,
                              upsample=config.upsample, channels=config.channels,
                              blocks=config.blocks)  # fmt: skip


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise BadInputError(f"scale={scale!r}: give a whole number >= 1, e.g. 4.")
    return scale


def crop_to_multiple(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Cut the bottom rows and right columns that do not fill a whole ``scale`` x ``scale``
    block: (N, C, H, W) -> (N, C, H - H % scale, W - W % scale). The high-resolution image
    that :func:`degrade_resolution` and the metrics compare with."""
    scale = _check_scale(scale)
    height, width = image.shape[-2:]
    if height < scale or width < scale:
        raise BadInputError(
            f"the image is {height}x{width} px, smaller than scale={scale}; use a larger image."
        )
    return image[..., : height - height % scale, : width - width % scale]


def blur_kernel_size(sigma: float) -> int:
    """The Gaussian kernel's side: 2 * ceil(3 sigma) + 1 px (7 for sigma 1), so the kernel
    covers +- 3 standard deviations (99.7 % of its weight)."""
    return 2 * math.ceil(3 * sigma) + 1


def degrade_resolution(hr: torch.Tensor, scale: int = 4, sigma: float = 1.0) -> torch.Tensor:
    """The paper's low-resolution input: (N, 3, H, W) in [0, 1] -> (N, 3, H // scale,
    W // scale) in [0, 1].

    Exactly: (1) :func:`crop_to_multiple` (odd sizes lose their last ``H % scale`` rows and
    ``W % scale`` columns, so that LR size x scale == the cropped HR size); (2) a Gaussian
    blur of standard deviation ``sigma`` px (torchvision's ``gaussian_blur``, kernel
    :func:`blur_kernel_size`, mirrored borders; ``sigma=0`` skips it); (3) bicubic
    downsampling with antialiasing (``torch.nn.functional.interpolate(mode="bicubic",
    antialias=True)``, the same filter as Pillow's and close to MATLAB's ``imresize``, which
    benchmark data sets are made with); (4) clamping to [0, 1] (bicubic overshoots a little
    at edges). Deterministic: no noise, no randomness.
    """
    check_images(hr, "degrade_resolution")
    if not (isinstance(sigma, (int, float)) and 0 <= sigma < float("inf")):
        raise BadInputError(f"sigma={sigma!r}: give a blur width in px >= 0, e.g. 1.0.")
    hr = crop_to_multiple(hr, scale)
    if sigma > 0:
        size = blur_kernel_size(sigma)
        if min(hr.shape[-2:]) <= size // 2:
            raise BadInputError(
                f"the image is {tuple(hr.shape[-2:])} px; the blur (sigma={sigma}) needs "
                f"at least {size // 2 + 1} px per side."
            )
        hr = TF.gaussian_blur(hr, [size, size], [float(sigma), float(sigma)])
    height, width = hr.shape[-2:]
    lr = F.interpolate(hr, size=(height // scale, width // scale), mode="bicubic",
                       antialias=True, align_corners=False)  # fmt: skip
    return lr.clamp(0, 1)


degrade = degrade_resolution  # notebook 05's name


def bicubic(image: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """The classical baseline: bicubic upsampling, (N, 3, h, w) -> (N, 3, scale*h,
    scale*w), clamped to [0, 1].

    Keys' cubic kernel with a = -0.5, as MATLAB's ``imresize`` and Pillow use (in PyTorch:
    ``interpolate(mode="bicubic", antialias=True)``; without ``antialias`` it takes a = -0.75,
    as OpenCV, which does not reproduce linear gradients exactly).
    """
    check_images(image, "bicubic")
    scale = _check_scale(scale)
    up = F.interpolate(image, scale_factor=scale, mode="bicubic", antialias=True,
                       align_corners=False)  # fmt: skip
    return up.clamp(0, 1)


def make_loss(
    config: SuperResolutionConfig, device: torch.device | str = "cpu"
) -> Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
    """``loss(output, hr) -> {name: weighted term}`` for ``config.loss``: three terms.

    * ``"feature"`` (loss="feature"): the relative MSE between VGG features of the output
      and of the HR crop, summed over ``content_layers`` (:class:`PerceptualLoss`); or
      ``"pixel"`` (loss="pixel"): the mean squared error between output and HR crop;
      either times ``content_weight``;
    * ``"consistency"``: ``consistency_weight`` x MSE(degrade_resolution(output),
      degrade_resolution(hr)): the output, shrunk again, must give back the LR input. Zero
      for the true HR image, so it never pulls away from the right answer; it pins down what
      the feature loss ignores (overall brightness and colour), which otherwise drift during
      training;
    * ``"tv"``: ``tv_weight`` x total variation of the output.
    """
    if config.loss == "pixel":
        main_name, main = "pixel", F.mse_loss
    else:
        vgg = VGGFeatures(list(config.content_layers), arch=config.arch, weights=config.weights)
        perceptual = PerceptualLoss(
            vgg.to(device, memory_format=torch.channels_last), config.content_layers
        )
        main_name = "feature"

        def main(output: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
            return perceptual(output, content=hr)["content"]

    scale, sigma = config.scale, config.blur_sigma

    def loss(output: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        zero = output.new_zeros(())
        consistency = tv = zero
        if config.consistency_weight:
            shrunk = degrade_resolution(output, scale, sigma)
            consistency = F.mse_loss(shrunk, degrade_resolution(hr, scale, sigma))
        if config.tv_weight:
            tv = total_variation(output)
        return {
            main_name: config.content_weight * main(output, hr),
            "consistency": config.consistency_weight * consistency,
            "tv": config.tv_weight * tv,
        }

    return loss


class DetailedCrops(torch.utils.data.Dataset):
    """Item ``k``: the most detailed of the crops ``tries * k`` ... ``tries * k + tries - 1``
    of ``crops`` (a dataset of HR crops, such as :class:`PhotoFolder`).

    Detail is what bicubic upsampling fails to restore: the mean squared difference between
    a crop and ``bicubic(degrade_resolution(crop))``, i.e. what a super-resolution network
    can learn from it. Photos are full of flat sky and blurred backgrounds, which teach
    nothing; ``tries=2`` doubles the useful crops for twice the loading time. Still a pure
    function of the key, so training stays exactly resumable.
    """

    def __init__(self, crops: torch.utils.data.Dataset, tries: int, scale: int, sigma: float):
        self.crops, self.tries, self.scale, self.sigma = crops, tries, scale, sigma

    def __len__(self) -> int:
        return len(self.crops)

    def detail(self, crop: torch.Tensor) -> float:
        """The bicubic error of one (3, S, S) crop: its mean squared lost detail."""
        hr = crop_to_multiple(crop.unsqueeze(0), self.scale)
        lr = degrade_resolution(hr, self.scale, self.sigma)
        return F.mse_loss(bicubic(lr, self.scale), hr).item()

    def __getitem__(self, k: int) -> torch.Tensor:
        candidates = [self.crops[self.tries * k + j] for j in range(self.tries)]
        return max(candidates, key=self.detail)


def _describe_data(data: torch.utils.data.Dataset) -> str:
    tries = ""
    if isinstance(data, DetailedCrops):
        data, tries = data.crops, f", the most detailed of {data.tries} per sample"
    if not isinstance(data, PhotoFolder):
        return type(data).__name__ + tries
    low, high = data.scale
    return (f"{len(data)} photos in {data.root.name}, crops of {low:g} to {high:g} of the "
            f"shorter side{tries}")  # fmt: skip


def train(
    config: SuperResolutionConfig,
    data: str | os.PathLike | torch.utils.data.Dataset,
    output: str | os.PathLike,
    **options: Unpack[RunOptions],
) -> tuple[nn.Module, TrainResult]:
    """Train a super-resolution network on ``data``; write it to ``output`` and return
    ``(network, result)``.

    ``data``: a folder of photos (cut into ``crop_size`` crops by :class:`PhotoFolder`) or a
    dataset whose item ``k`` is one HR crop (3, S, S) in [0, 1] (with ``crop_tries > 1``
    wrapped in :class:`DetailedCrops`); each batch is degraded with
    :func:`degrade_resolution` on the fly. Checkpoints (float32, to resume), samples (rows:
    LR input enlarged without interpolation, bicubic, network, HR) and the loss log go to
    the run folder (``options``: :class:`~nst_utils.training.RunOptions`). The model file
    stores the weights in float16 (about 0.8 MB at the default size); :func:`load` turns
    them back into float32. The output path is checked before any work starts.
    """
    run = Run(config, output, folders={"--data": data}, **options)
    data = run.photos("--data", data)
    run.start({"--data": identify_data(data)})
    if config.crop_tries > 1:
        data = DetailedCrops(data, config.crop_tries, config.scale, config.blur_sigma)
    loss = make_loss(config, run.device)
    scale, sigma = config.scale, config.blur_sigma

    def loss_step(model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        hr = crop_to_multiple(batch, scale)
        return loss(model(degrade_resolution(hr, scale, sigma)), hr)

    fixed = crop_to_multiple(run.fixed(data), scale)
    fixed_lr = degrade_resolution(fixed, scale, sigma)

    def sample(model: nn.Module) -> torch.Tensor:
        pixels = F.interpolate(fixed_lr, scale_factor=scale, mode="nearest")
        return sample_grid([pixels, bicubic(fixed_lr, scale), model(fixed_lr).clamp(0, 1), fixed])

    net, result = run.fit(lambda: build_network(config), loss_step, data, sample=sample)
    run.save(net, result, half=True, data=_describe_data(data))
    return net, result


def load(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """A trained super-resolution network (float32, eval mode) and its record (config,
    extras) from a model file; any other kind of file is refused with a message."""
    return load_model(path, KIND, device)


def upscale(net: nn.Module, image: ImageLike) -> torch.Tensor:
    """One pass of a trained network: an (N, 3, h, w) tensor in [0, 1] or any image source
    (path, PIL image, array) -> (N, 3, scale*h, scale*w) in [0, 1]. Any h, w >= 5 px;
    memory grows with the output's area."""
    if not isinstance(image, torch.Tensor):
        image = as_tensor(image)
    return infer(net, image)  # infer checks the images
