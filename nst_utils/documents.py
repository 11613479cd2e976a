"""Document enhancement: a small network that cleans photographed or scanned text pages,
trained with a pixel loss plus the perceptual (feature) loss of the style transfer chapters.

The method in four lines: a :class:`~nst_utils.networks.TransformerNet` (``residual=True``:
it learns the correction, output = input + network output) maps a degraded page ``x`` to
``y = f(x)``; the loss compares ``y`` with the clean page ``c`` twice, pixel by pixel (L1)
and through the early layers of a frozen VGG16 (``relu1_2``, ``relu2_2``: the content loss
of :class:`~nst_utils.losses.PerceptualLoss` with ``c`` as the content target); Adam trains
``f`` on aligned (clean, degraded) crops of synthetic pages (:class:`nst_utils.pages.PageCrops`),
so no data has to be downloaded. :func:`enhance` applies a trained network to a page of any
size; :func:`evaluate` scores it (PSNR, SSIM, OCR character error rate) on held-out pages.

Why two losses: a pixel loss alone rewards the average of the plausible answers, so where
blur and noise leave doubt about a stroke it paints grey, soft text (a thin stroke is few
pixels, and half-grey costs little). VGG features respond to edges and strokes, so the
perceptual loss insists on crisp letter shapes; but they barely change when the whole page
gets a little darker or tinted (with the course's VGG16, a page 15 % darker and yellowish
costs it a sixth of what soft grey strokes cost, while the pixel loss ranks the two the
other way round), so alone it lets the paper drift in tone. Together: the right tone and
sharp strokes.

Held-out pages: :class:`~nst_utils.pages.PageCrops` draws its page seeds from 0 .. 2**31 - 1;
evaluation pages use seeds from :data:`HELDOUT_SEED` = 2**31 up, so no training run, whatever
its seed, has ever seen them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .checkpoints import load_model
from .errors import BadInputError
from .images import ImageLike, as_tensor
from .losses import PerceptualLoss, total_variation
from .metrics import character_error_rate, psnr, ssim
from .models import VGGFeatures
from .networks import TransformerNet, infer
from .pages import PAGE_SIZE, PageCrops, degrade_page, render_page
from .settings import SIZES, DocumentConfig
from .training import Run, RunOptions, TrainResult, sample_grid

if TYPE_CHECKING:
    from typing_extensions import Unpack

KIND = DocumentConfig.KIND
HELDOUT_SEED = 2**31  # evaluation page k has seed HELDOUT_SEED + k; training pages lie below


def build_network(config: DocumentConfig) -> TransformerNet:
    """The (untrained) enhancement network ``config`` describes."""
    return TransformerNet(**SIZES[config.network], residual=config.residual)


def make_loss(
    config: DocumentConfig, device: torch.device | str = "cpu"
) -> Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
    """``loss(output, clean) -> {"pixel", "perceptual", "tv"}``: the weighted terms, each a
    scalar, for (N, 3, H, W) outputs and clean pages in [0, 1]; their sum is the loss."""
    pixel = F.l1_loss if config.pixel_loss == "l1" else F.mse_loss
    layers = config.feature_layers if config.feature_weight else {}
    perceptual = None
    if layers:
        vgg = VGGFeatures(layers, arch=config.arch, weights=config.weights)
        perceptual = PerceptualLoss(
            vgg.to(device, memory_format=torch.channels_last),
            layers,
            content_weight=config.feature_weight,
            tv_weight=config.tv_weight,
        )

    def loss(output: torch.Tensor, clean: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = {"pixel": config.pixel_weight * pixel(output, clean)}
        if perceptual is None:
            return {**terms, "perceptual": torch.zeros_like(terms["pixel"]),
                    "tv": config.tv_weight * total_variation(output)}  # fmt: skip
        feature_terms = perceptual(output, content=clean)
        return {**terms, "perceptual": feature_terms["content"], "tv": feature_terms["tv"]}

    return loss


def training_data(config: DocumentConfig) -> PageCrops:
    """The run's (clean, degraded) crops: one per sample key, from the run's seed."""
    return PageCrops(
        config.steps * config.batch_size, crop=config.crop_size, seed=config.seed,
        strength=config.strength,
    )  # fmt: skip


def train(
    config: DocumentConfig,
    output: str | os.PathLike,
    **options: Unpack[RunOptions],
) -> tuple[nn.Module, TrainResult]:
    """Train an enhancement network on synthetic pages; write the model to ``output`` and
    return ``(network, result)``.

    The pages come from ``config.seed`` (:func:`training_data`). Checkpoints, samples (rows:
    degraded, enhanced, clean) and the loss log go to the run folder (``options``:
    :class:`~nst_utils.training.RunOptions`). The output path is checked before any work
    starts.
    """
    run = Run(config, output, **options)
    run.start()
    loss = make_loss(config, run.device)
    data = training_data(config)
    shown_clean, shown_degraded = run.fixed(data)  # the pages of every sample picture

    def loss_step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
        clean, degraded = (b.contiguous(memory_format=torch.channels_last) for b in batch)
        return loss(model(degraded), clean)

    def sample(model: nn.Module) -> torch.Tensor:
        return sample_grid([shown_degraded, model(shown_degraded).clamp(0, 1), shown_clean])

    net, result = run.fit(lambda: build_network(config), loss_step, data, sample=sample)
    run.save(net, result, data=f"{len(data)} crops of synthetic pages (seed {config.seed}, "
             f"strength {config.strength:g})")  # fmt: skip
    return net, result


def load(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """A trained enhancement network and its record (config, extras) from a model file."""
    return load_model(path, KIND, device)


def enhance(net: nn.Module, image: ImageLike) -> torch.Tensor:
    """One pass of a trained network over whole pages: (N, 3, H, W) in [0, 1] (or any image
    source: a file, a PIL image...) -> the enhanced pages, same shape, on the input's device.

    The network is fully convolutional, so any H, W >= 5 works in one piece; a lite network
    needs about 0.5 GB of memory for a 2000 x 1400 px page.
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 4:
        image = as_tensor(image)
    return infer(net, image)


def heldout_page(
    index: int, strength: float = 1.0, size: tuple[int, int] = PAGE_SIZE
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Evaluation page ``index`` (0, 1, ...), never seen in training: ``(clean, degraded,
    text)``, the pages (1, 3, H, W) in [0, 1]. ``clean`` is turned like ``degraded`` (the
    sheet lies askew on the scanner), so the two are aligned pixel for pixel."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise BadInputError(f"index must be a whole number >= 0, got {index!r}.")
    seed = HELDOUT_SEED + index
    page, text = render_page(seed, size)
    return degrade_page(page, seed, strength, rotation=1), degrade_page(page, seed, strength), text


def image_quality(image: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """PSNR (dB) and SSIM of one page ``image`` against ``target``, both (1, 3, H, W) in
    [0, 1], over the RGB channels (:mod:`nst_utils.metrics`): higher is closer; identical
    pages give PSNR ``inf`` and SSIM 1."""
    return {
        "psnr": psnr(image, target, channel="rgb").item(),
        "ssim": ssim(image, target, channel="rgb").item(),
    }


@dataclass
class Evaluation:
    """Scores of a network on held-out pages: one row per page (``page``, then ``psnr``,
    ``ssim`` and, with OCR, ``cer``, each ``_before`` (the degraded page) and ``_after``
    (the enhanced one))."""

    rows: list[dict[str, float]] = field(default_factory=list)

    @property
    def mean(self) -> dict[str, float]:
        """The mean of every score over the pages."""
        keys = [k for k in self.rows[0] if k != "page"] if self.rows else []
        return {k: sum(row[k] for row in self.rows) / len(self.rows) for k in keys}

    def table(self) -> str:
        """A small text table: one line per score, degraded vs enhanced (means)."""
        mean = self.mean
        names = {"psnr": "PSNR (dB, higher is better)", "ssim": "SSIM (higher is better)",
                 "cer": "OCR character error rate"}  # fmt: skip
        lines = [f"{len(self.rows)} held-out pages   {'degraded':>9} {'enhanced':>9}"]
        for key, name in names.items():
            if f"{key}_before" in mean:
                before, after = mean[f"{key}_before"], mean[f"{key}_after"]
                lines.append(f"{name:<30}{before:>9.3f} {after:>9.3f}")
        return "\n".join(lines)


def evaluate(
    net: nn.Module,
    pages: int = 10,
    strength: float = 1.0,
    *,
    size: tuple[int, int] = PAGE_SIZE,
    ocr: Callable[[torch.Tensor], str] | None = None,
    progress: bool = True,
) -> Evaluation:
    """Score ``net`` on held-out pages 0 .. ``pages`` - 1 (:func:`heldout_page`), degraded at
    ``strength``: PSNR and SSIM against the clean page and, if ``ocr`` is given (e.g.
    :func:`nst_utils.pages.ocr_engine`), the OCR character error rate against the page's
    text, before and after enhancement. OCR takes 2-4 s a page on a 2-core CPU.
    """
    if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1:
        raise BadInputError(f"pages must be a whole number >= 1, got {pages!r}.")
    result = Evaluation()
    for k in tqdm(range(pages), desc="evaluating", disable=not progress):
        clean, degraded, text = heldout_page(k, strength, size)
        enhanced = enhance(net, degraded)
        row: dict[str, float] = {"page": k}
        for when, image in (("before", degraded), ("after", enhanced)):
            for name, value in image_quality(image, clean).items():
                row[f"{name}_{when}"] = value
        if ocr is not None:
            row["cer_before"] = character_error_rate(ocr(degraded), text)
            row["cer_after"] = character_error_rate(ocr(enhanced), text)
        result.rows.append(row)
    return result
