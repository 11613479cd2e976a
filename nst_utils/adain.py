"""Any style in one pass: adaptive instance normalisation (Huang & Belongie, "Arbitrary
Style Transfer in Real-time with Adaptive Instance Normalization", ICCV 2017, arXiv
1703.06868).

Notebook 02 measured a style by feature statistics; notebook 04 and
:mod:`nst_utils.multistyle` learnt one set of instance-norm scales and shifts per style.
AdaIN takes them from the style image itself: a frozen VGG encodes the photo and the
painting up to ``relu4_1``; :func:`adain` gives the photo's features the painting's
per-channel mean and standard deviation; a trained :class:`Decoder` (the encoder mirrored)
turns those features into a picture. No training per style: any image is a style.

Training (:func:`train`) needs content photos and a folder of style images: any folder of
paintings works (the paper used about 80,000 photos of MS-COCO and 80,000 paintings of
WikiArt, from Kaggle's "Painter by Numbers"). The loss (:func:`make_loss`) is the paper's:
content at ``relu4_1`` against the AdaIN output ``t`` (not against the photo) plus 10 x
mean/std matching at ``relu1_1`` ... ``relu4_1`` (:class:`~nst_utils.losses.PerceptualLoss`'s
statistics term, one style per image).

At run time (:func:`stylize_tensor`): ``alpha`` trades content for style, ``weights`` mix
several styles, ``mask`` gives styles to regions, ``preserve_color`` keeps the photo's
colours. A style's statistics (:func:`style_stats`) are computed once, so a folder of
photos or a video pays only the encoder and the decoder per frame.

A small run on a CPU (minutes: small crops, VGG16; it learns colours and rough strokes,
not yet pictures), then the controls::

    from nst_utils import adain
    config = adain.AdaINConfig(steps=200, batch_size=4, crop_size=64, arch="vgg16", lr=5e-4)
    net, result = adain.train(config, "data/styles", "photos/", "adain_small.pth")
    stats = adain.style_stats(net, ["data/styles/wave.jpg", "data/styles/the_scream.jpg"])
    out = adain.stylize_tensor(net, photo, stats, weights=[0.7, 0.3], alpha=0.8)

The defaults (VGG19, 20,000 steps of batch 8 at 256 px) are for a GPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import load_model
from .color import match_mean_and_covariance, preserve_luminance
from .config import weights_setting
from .errors import BadInputError, CheckpointError
from .images import ImageLike, as_tensor, check_images
from .losses import PerceptualLoss, feature_stats
from .models import VGG_CONFIGS, VGGFeatures, check_arch
from .networks import ConvLayer, UpsampleLayer
from .settings import ADAIN_LAYER, PRESERVE_COLOR, AdaINConfig
from .training import (
    Run,
    RunOptions,
    TrainResult,
    describe_photos,
    identify_data,
    loss_autocast,
    sample_grid,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

KIND = AdaINConfig.KIND
NETWORK_NAME = "adain_decoder"
MIN_SIDE = 16  # px: relu4_1 sits behind three 2x2 poolings and the decoder pads by 1 there


def adain(content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y), per channel (paper, section 5).

    ``content``: (N, C, h, w) features; ``mean``, ``std``: the style's (N or 1, C). The
    result has exactly the style's channel statistics (``feature_stats``; sigma carries
    its eps of 1e-5 in the variance).
    """
    c_mean, c_std = feature_stats(content)
    normalised = (content.float() - c_mean[..., None, None]) / c_std[..., None, None]
    return normalised * std[..., None, None] + mean[..., None, None]


def _encoder_convs(arch: str) -> list[tuple[int, int] | str]:
    """VGG ``arch`` up to ``conv4_1``: (in, out) channels per conv, "M" for each pooling."""
    config = VGG_CONFIGS[arch]
    third_pool = [i for i, item in enumerate(config) if item == "M"][2]
    layers: list[tuple[int, int] | str] = []
    channels = 3
    for item in config[: third_pool + 2]:  # conv4_1 follows the third pooling
        layers.append("M" if item == "M" else (channels, int(item)))
        channels = channels if item == "M" else int(item)
    return layers


class Decoder(nn.Sequential):
    """VGG ``arch`` up to ``relu4_1``, mirrored: (N, 512, h, w) -> (N, 3, 8h, 8w).

    Each conv of the encoder becomes a 3x3 conv from its output channels back to its input
    channels (reflection padding, ReLU, no normalisation), each 2x2 pooling a x2
    nearest-neighbour upsampling; the last conv has no ReLU (paper, section 6). The
    output is an image meant to lie in [0, 1], unclamped.
    """

    def __init__(self, arch: str = "vgg19") -> None:
        self.arch = check_arch(arch)
        layers: list[nn.Module] = []
        upsample = False
        mirrored = _encoder_convs(self.arch)[::-1]
        for index, item in enumerate(mirrored):
            if item == "M":
                upsample = True
                continue
            c_in, c_out = item
            last = index == len(mirrored) - 1
            if upsample:
                layers.append(UpsampleLayer(c_out, c_in, norm="none"))
            else:
                layers.append(ConvLayer(c_out, c_in, 3, norm="none", relu=not last))
            upsample = False
        super().__init__(*layers)

    @property
    def spec(self) -> dict:
        """What :func:`nst_utils.networks.build_network` rebuilds the decoder from."""
        return {"name": NETWORK_NAME, "kwargs": {"arch": self.arch}}


class AdaINNet(nn.Module):
    """Encoder (a frozen :class:`~nst_utils.models.VGGFeatures` up to ``relu4_1``), AdaIN,
    decoder. ``net(content, style)``: (N, 3, H, W) photos and (N or 1, 3, h, w) styles in
    [0, 1] -> (N, 3, H, W), the paper's plain pass (alpha 1), unclamped; two inputs, for
    ONNX export. :func:`stylize_tensor` adds the controls. Any H, W >= 16: the photo is
    reflection-padded to a multiple of 8 and the output cropped back.
    """

    def __init__(self, encoder: VGGFeatures, decoder: Decoder) -> None:
        super().__init__()
        if ADAIN_LAYER not in encoder.available:
            raise BadInputError(f"the encoder must reach {ADAIN_LAYER}; build it with that layer.")
        self.encoder, self.decoder = encoder, decoder

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> the ``relu4_1`` features (N, 512, ceil(H / 8), ceil(W / 8)) of
        the images reflection-padded to a multiple of 8 px."""
        check_images(images, "AdaINNet", MIN_SIDE)
        height, width = images.shape[-2:]
        padded = F.pad(images, (0, (-width) % 8, 0, (-height) % 8), mode="reflect")
        return self.encoder(padded, [ADAIN_LAYER])[ADAIN_LAYER].float()

    def decode(self, features: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """Decoder output for ``features``, cropped to ``size`` = (H, W) px."""
        return self.decoder(features)[..., : size[0], : size[1]]

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        check_images(style, "AdaINNet (style)", MIN_SIDE)
        s_mean, s_std = feature_stats(self.encoder(style, [ADAIN_LAYER])[ADAIN_LAYER])
        return self.decode(adain(self.encode(content), s_mean, s_std), content.shape[-2:])


@dataclass(frozen=True)
class StyleStats:
    """The ``relu4_1`` channel statistics of K styles: ``mean`` and ``std``, (K, C) each,
    or (N, K, C) with one set per photo (colour-matched styles). :func:`style_stats`
    computes them once; :func:`stylize_tensor` reuses them for every photo or frame."""

    mean: torch.Tensor
    std: torch.Tensor

    def __len__(self) -> int:
        return self.mean.shape[-2]


def _check_net(net: object) -> AdaINNet:
    if not isinstance(net, AdaINNet):
        raise BadInputError(
            f"net is a {type(net).__name__}, not an AdaIN network; load one with "
            "nst_utils.adain.load."
        )
    return net


def _style_images(styles: ImageLike | Sequence[ImageLike], device: torch.device) -> list:
    """One image or a list of them -> a list of (1, 3, h, w) tensors on ``device``."""
    if isinstance(styles, torch.Tensor) and styles.dim() == 4:
        styles = list(styles.split(1))
    elif isinstance(styles, (str, os.PathLike, torch.Tensor)) or not isinstance(styles, Sequence):
        styles = [styles]
    if not styles:
        raise BadInputError("styles is empty: give at least one style image.")
    images = [as_tensor(s, device=device, name=f"style {k}") for k, s in enumerate(styles)]
    for image in images:
        check_images(image, "styles", MIN_SIDE)
    return images


@torch.inference_mode()
def style_stats(net: AdaINNet, styles: ImageLike | Sequence[ImageLike]) -> StyleStats:
    """The ``relu4_1`` statistics of one style image or a list of them (paths, PIL images,
    arrays, (1, 3, h, w) tensors or one (K, 3, h, w) tensor), each at its own size (the
    paper: 512 px; a smaller style gives larger strokes)."""
    net = _check_net(net)
    device = next(net.decoder.parameters()).device
    stats = [feature_stats(net.encoder(s, [ADAIN_LAYER])[ADAIN_LAYER])
             for s in _style_images(styles, device)]  # fmt: skip
    return StyleStats(torch.cat([m for m, _ in stats]), torch.cat([s for _, s in stats]))


def _regions(
    mask: torch.Tensor | None, weights: Sequence[float] | None, styles: int, size: tuple
) -> torch.Tensor:
    """(N or 1, K, H, W) weights per style and pixel, summing to 1, at image ``size``, from
    ``mask`` or ``weights`` (a mask that is the same everywhere) or, for one style, ones."""
    if mask is not None and weights is not None:
        raise BadInputError("give weights or mask, not both: a mask says which style goes where.")
    if mask is None:
        if weights is None and styles > 1:
            raise BadInputError(f"{styles} styles: give weights (one per style) or a mask.")
        weights = [1.0] if weights is None else list(weights)
        blend = torch.as_tensor(weights, dtype=torch.float32)
        total = blend.sum()
        if blend.shape != (styles,) or not (torch.isfinite(blend).all() and (blend >= 0).all()
                                           and total > 0):  # fmt: skip
            raise BadInputError(
                f"weights {weights}: give {styles} finite weights >= 0 with a positive sum, "
                "one per style (they are scaled to sum 1)."
            )
        return (blend / total).view(1, styles, 1, 1)
    if not isinstance(mask, torch.Tensor):
        raise BadInputError(f"mask is a {type(mask).__name__}; give a tensor (see stylize_tensor).")
    if not mask.is_floating_point() and mask.dtype != torch.bool:  # labels 0 .. K - 1
        if mask.dim() not in (2, 3) or mask.min() < 0 or mask.max() >= styles:
            raise BadInputError(
                f"mask of style labels: give (H, W) or (N, H, W) whole numbers 0 .. {styles - 1}."
            )
        mask = F.one_hot(mask.long(), styles).movedim(-1, -3).float()
    elif mask.dim() in (2, 3) and (mask.dim() == 2 or mask.shape[0] == 1) and styles == 2:
        first = mask.float().reshape(1, 1, *mask.shape[-2:])  # weight of style 0
        mask = torch.cat([first, 1 - first], 1)
    mask = mask.float()
    mask = mask.unsqueeze(0) if mask.dim() == 3 else mask
    if mask.dim() != 4 or mask.shape[1] != styles:
        raise BadInputError(
            f"mask of shape {tuple(mask.shape)} for {styles} styles: give (N, {styles}, H, W) "
            "weights per style, style labels (H, W), or for two styles one (H, W) map in [0, 1]."
        )
    if tuple(mask.shape[-2:]) != tuple(size):
        raise BadInputError(
            f"mask is {tuple(mask.shape[-2:])} px but the photos are {tuple(size)}; give a "
            "mask of the photos' size."
        )
    if not (torch.isfinite(mask).all() and (mask >= 0).all()) or (
        (mask.sum(1) - 1).abs().max() > 1e-3
    ):
        raise BadInputError("mask weights must be >= 0 and sum to 1 at every pixel.")
    return mask


def stylized_features(
    content: torch.Tensor,
    styles: StyleStats,
    regions: torch.Tensor,
    alpha: float = 1.0,
) -> torch.Tensor:
    """The decoder's input: ``alpha * t + (1 - alpha) * content`` (the paper's
    content-style trade-off).

    ``content``: (N, C, h, w) ``relu4_1`` features; ``regions``: (N or 1, K, h', w')
    weights of the K styles per pixel (at the photo's or the features' size; resized by
    area averaging). ``t = sum_k regions_k * AdaIN_k`` with each AdaIN_k normalising the
    content by its statistics inside region k (the paper's spatial control). A
    region that covers everything is the paper's style interpolation: its weights mix the
    AdaIN outputs, which is the same as mixing the styles' statistics.
    """
    if not (isinstance(alpha, (int, float)) and 0 <= alpha <= 1):
        raise BadInputError(f"alpha={alpha!r}: give a number in 0 .. 1 (1: full style).")
    content = content.float()
    if regions.shape[-2:] not in {(1, 1), content.shape[-2:]}:
        height, width = regions.shape[-2:]
        padded = F.pad(regions, (0, (-width) % 8, 0, (-height) % 8), mode="replicate")
        regions = F.interpolate(padded, size=content.shape[-2:], mode="area")
    regions = regions.to(content).expand(-1, -1, *content.shape[-2:])
    t = torch.zeros_like(content)
    for k in range(len(styles)):
        weight = regions[:, k : k + 1]  # (N, 1, h, w)
        area = weight.sum((2, 3)).clamp(min=1e-6)  # (N, 1)
        mean = (weight * content).sum((2, 3)) / area
        var = (weight * (content - mean[..., None, None]).pow(2)).sum((2, 3)) / area
        normalised = (content - mean[..., None, None]) / (var + 1e-5).sqrt()[..., None, None]
        s_mean = styles.mean[..., k, :].reshape(-1, content.shape[1], 1, 1)
        s_std = styles.std[..., k, :].reshape(-1, content.shape[1], 1, 1)
        t = t + weight * (normalised * s_std + s_mean)
    return alpha * t + (1 - alpha) * content


@torch.inference_mode()
def stylize_tensor(
    net: AdaINNet,
    images: torch.Tensor,
    styles: StyleStats | ImageLike | Sequence[ImageLike],
    *,
    weights: Sequence[float] | None = None,
    alpha: float = 1.0,
    mask: torch.Tensor | None = None,
    preserve_color: str | None = None,
) -> torch.Tensor:
    """(N, 3, H, W) photos in [0, 1] -> the photos in ``styles``, clamped to [0, 1].

    ``styles``: :class:`StyleStats` from :func:`style_stats` (computed once: reuse them
    for a folder or a video), or one style image or a list of them.
    ``weights``: one per style, scaled to sum 1: the paper's interpolation between styles.
    ``alpha``: 0 (the photo through the decoder) .. 1 (full style).
    ``mask``: which style goes where, at the photos' size: (N or 1, K, H, W) weights per
    style summing to 1 at every pixel, or (H, W) / (N, H, W) style labels 0 .. K - 1
    (integers), or, for two styles, one (H, W) map in [0, 1] (1: the first style).
    ``preserve_color``: ``"luminance"`` keeps the stylised luminance and the photo's
    chroma (YIQ, :func:`nst_utils.color.preserve_luminance`; free), ``"histogram"``
    recolours each style image to each photo's colour mean and covariance before its
    statistics are taken (the paper's colour control,
    :func:`nst_utils.color.match_mean_and_covariance`; needs the style images and costs one
    style encoding per photo).
    """
    net = _check_net(net)
    check_images(images, "stylize_tensor", MIN_SIDE)
    if preserve_color not in (None, *PRESERVE_COLOR):
        raise BadInputError(
            f"preserve_color={preserve_color!r}: use None or one of {PRESERVE_COLOR}."
        )
    device = next(net.decoder.parameters()).device
    photos = images.to(device, torch.float32)
    if preserve_color == "histogram":
        if isinstance(styles, StyleStats):
            raise BadInputError(
                "preserve_color='histogram' recolours the style images for each photo: pass "
                "the style images, not their statistics (or use 'luminance')."
            )
        sources = _style_images(styles, device)
        per_photo = [style_stats(net, [match_mean_and_covariance(s, p[None]) for s in sources])
                     for p in photos]  # fmt: skip
        styles = StyleStats(torch.stack([s.mean for s in per_photo]),
                            torch.stack([s.std for s in per_photo]))  # fmt: skip
    elif not isinstance(styles, StyleStats):
        styles = style_stats(net, styles)
    regions = _regions(mask, weights, len(styles), tuple(photos.shape[-2:]))
    features = net.encode(photos)
    t = stylized_features(features, styles, regions.to(device), alpha)
    out = net.decode(t, photos.shape[-2:]).clamp(0, 1)
    if preserve_color == "luminance":
        out = preserve_luminance(out, photos)
    return out.to(images.device)


VGG_SEED = 0  # the seed of "random" VGG weights, recorded with the model


def make_encoder(arch: str, weights: str | os.PathLike | None = None) -> VGGFeatures:
    """The frozen VGG ``arch`` up to ``relu4_1`` with ``weights`` (default: ``NST_WEIGHTS``):
    encoder and loss network at once."""
    return VGGFeatures([ADAIN_LAYER], arch=arch, weights=weights, seed=VGG_SEED)


def encoder_identity(encoder: VGGFeatures, weights: str | os.PathLike | None) -> dict[str, str]:
    """What identifies the VGG weights an encoder was built with (``weights``, else
    ``NST_WEIGHTS``), as recorded in a model file: ``arch``, ``source`` ("imagenet",
    "random" or "file"), ``id`` and ``what`` (for messages).

    Random weights are identified by their seed; any other by a content hash of the
    convolutions the encoder uses (up to ``conv4_1``), so the same weights match in any
    file layout, and a file that holds the ImageNet weights matches the download."""
    spec = str(weights) if weights is not None else weights_setting()
    arch = encoder.arch
    if spec == "random":
        return {"arch": arch, "source": "random", "id": f"random:{VGG_SEED}",
                "what": f"{arch.upper()} random weights (seed {VGG_SEED})"}  # fmt: skip
    digest = hashlib.sha256()
    for name, tensor in encoder.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    short = digest.hexdigest()[:16]
    source = "imagenet" if spec == "imagenet" else "file"
    shown = "the ImageNet weights" if source == "imagenet" else Path(spec).name
    return {"arch": arch, "source": source, "id": short,
            "what": f"{arch.upper()} {shown} (content {short[:8]})"}  # fmt: skip


def _how_to_get(identity: dict[str, str]) -> str:
    """How to get the VGG weights ``identity`` describes, for a message."""
    if identity.get("source") == "imagenet":
        return ("unset NST_WEIGHTS or give --weights imagenet (the ImageNet weights download by "
                "themselves)")  # fmt: skip
    if identity.get("source") == "random":
        return "set NST_WEIGHTS=random or give --weights random"
    hed = (" (the course's trained VGG16 is rebuilt with: python -m nst_utils.hed "
           "vgg16_hed.pth)") if identity.get("arch") == "vgg16" else ""  # fmt: skip
    return f"give that file with --weights FILE or NST_WEIGHTS=FILE{hed}"


def make_loss(config: AdaINConfig, encoder: VGGFeatures) -> PerceptualLoss:
    """The paper's loss: ``content_weight`` x MSE at ``relu4_1`` against the AdaIN output
    (give it as ``content={"relu4_1": t}``) + ``style_weight`` x the mean/std term at
    ``style_layers`` (give the styles' statistics per image as ``stats=``)."""
    return PerceptualLoss(encoder, {ADAIN_LAYER: 1.0}, stats_layers=config.style_layers,
                          content_weight=config.content_weight,
                          stats_weight=config.style_weight)  # fmt: skip


class PairedCrops(torch.utils.data.Dataset):
    """Item ``k``: (content crop ``k``, style crop ``k``): two datasets of (3, S, S) crops
    read side by side, each a pure function of ``k``."""

    def __init__(self, contents: torch.utils.data.Dataset, styles: torch.utils.data.Dataset):
        self.contents, self.styles = contents, styles

    def __len__(self) -> int:
        return len(self.contents)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.contents[k], self.styles[k]


def train(
    config: AdaINConfig,
    styles: str | os.PathLike | torch.utils.data.Dataset,
    data: str | os.PathLike | torch.utils.data.Dataset,
    output: str | os.PathLike,
    **options: Unpack[RunOptions],
) -> tuple[AdaINNet, TrainResult]:
    """Train a decoder on ``data`` (content photos: a folder, or a dataset of (3, S, S)
    crops) and ``styles`` (a folder of style images, e.g. paintings: the paper used
    WikiArt; or a dataset of crops), pair ``k`` being crop ``k`` of each; write the model
    to ``output`` and return ``(network, result)``.

    The model file holds the decoder (float16; VGG19: about 7 MB) and what identifies the
    encoder's VGG weights (:func:`encoder_identity`), not the encoder itself: :func:`load`
    rebuilds it from ``NST_WEIGHTS`` (or ``weights=``) and refuses other weights.
    Checkpoints (the decoder in float32, to resume), samples (rows: photos, styles,
    results) and ``log.csv`` go to the run folder (``options``:
    :class:`~nst_utils.training.RunOptions`).

    The run is set up as :func:`nst_utils.fast_style.train` sets up its own: the output is
    checked before any work and may not be the VGG weights file; a run folder with a
    checkpoint needs ``resume=True``, which continues exactly and refuses other settings,
    other photos, other style images or other VGG weights (all content-identified).
    """
    if isinstance(styles, (str, os.PathLike)):
        config = dataclasses.replace(config, styles=config.styles or Path(styles).name)
    run = Run(config, output, folders={"--data": data, "--styles": styles}, **options)
    data, styles = run.photos("--data", data), run.photos("--styles", styles, seed=1)
    identity = {"style images": identify_data(styles), "--data": identify_data(data)}
    run.start(identity)
    encoder = make_encoder(config.arch, config.weights).to(run.device)
    identity["VGG weights"] = encoder_identity(encoder, config.weights)  # checked by fit
    loss = make_loss(config, encoder)
    layers = list(dict.fromkeys([*config.style_layers, ADAIN_LAYER]))
    pairs = PairedCrops(data, styles)
    fixed = run.fixed(pairs)

    def targets(content: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The AdaIN output t and the styles' statistics per layer (no gradients)."""
        with torch.no_grad(), loss_autocast(config.loss_precision, run.device):
            content_features = encoder(content, [ADAIN_LAYER])[ADAIN_LAYER]
            style_features = encoder(style, layers)
        stats = {n: feature_stats(style_features[n]) for n in layers}
        return adain(content_features, *stats[ADAIN_LAYER]), stats

    def loss_step(model: nn.Module, batch: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        t, stats = targets(*batch)
        out = model(t)
        with loss_autocast(config.loss_precision, run.device):
            terms = loss(out, {ADAIN_LAYER: t}, stats=stats)
        return {"content": terms["content"], "style": terms["stats"]}

    def sample(model: nn.Module) -> torch.Tensor:
        return sample_grid([*fixed, model(targets(*fixed)[0]).clamp(0, 1)])

    decoder, result = run.fit(lambda: Decoder(config.arch), loss_step, pairs, sample=sample)
    run.save(
        decoder,
        result,
        half=True,
        encoder=identity["VGG weights"],
        data=describe_photos(data, "images"),
        style_data=describe_photos(styles, "images"),
    )
    return AdaINNet(encoder, decoder).eval(), result


def load(
    path: str | os.PathLike,
    device: torch.device | str = "cpu",
    weights: str | os.PathLike | None = None,
) -> tuple[AdaINNet, dict]:
    """A trained AdaIN network (float32, eval mode) and its record; any other kind of model
    file is refused by name. The encoder is rebuilt from ``weights`` (default:
    ``NST_WEIGHTS``) in the architecture the decoder was trained with; weights other than
    the ones it was trained with are refused with one line naming both and saying how to
    get the right ones."""
    decoder, record = load_model(path, KIND, device)
    trained = record["extra"].get("encoder")
    keys = ("arch", "source", "id", "what")
    if not (isinstance(trained, dict) and all(isinstance(trained.get(k), str) for k in keys)):
        raise CheckpointError(
            f"{path}: the record of its encoder's VGG weights is missing; the file is "
            "damaged or from an older version: copy or train it again."
        )
    encoder = make_encoder(decoder.arch, weights)
    at_hand = encoder_identity(encoder, weights)
    if at_hand["id"] != trained["id"]:
        raise CheckpointError(
            f"{path}: its decoder was trained with {trained['what']}, but the VGG weights at "
            f"hand are {at_hand['what']}; {_how_to_get(trained)}."
        )
    return AdaINNet(encoder.to(device), decoder).eval(), record
