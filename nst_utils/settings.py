"""Every method's settings: one config dataclass per method, importable without PyTorch.

Each field is declared once with :func:`~nst_utils.options.option`: its default, its help
text and its valid values. The command line turns the fields into options (so ``nst
--help`` reads this module and nothing heavy), :func:`~nst_utils.options.check_fields`
checks them, and a config's ``check()`` adds what involves several fields. The method
modules re-export their config (``fast_style.FastStyleConfig`` is
:class:`FastStyleConfig`), which is how the notebooks name them.

* :class:`GatysConfig`: Gatys et al.'s optimisation (:mod:`nst_utils.gatys`);
* :class:`TrainingConfig`: what every trained network shares (steps, batch, crops, lr...);
  :class:`LossNetworkConfig` adds the VGG loss network (``arch``, ``weights``) and the
  check of every layer-weight field against it;
* :class:`FastStyleConfig`, :class:`MultiStyleConfig`, :class:`AdaINConfig`,
  :class:`SuperResolutionConfig`, :class:`DocumentConfig`: one per trained method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import BadInputError
from .options import check_fields, option

ARCHS = ("vgg16", "vgg19")
MAX_SEED = 2**32 - 1  # the range every generator accepts (NumPy's is the narrowest)
PRECISIONS = ("auto", "float32", "bfloat16")
MAX_CROP = 1024  # px: four times the paper's 256; a batch of larger crops fills a GPU's memory
MAX_STEP_PIXELS = 2**24  # pixels in one step's crops: 256 crops of 256 px (the paper: 4)

# The TransformerNet sizes every method offers: channels at full, 1/2 and 1/4 resolution,
# residual blocks (paper: Johnson et al.'s). lite: chosen by measurement, benchmarks/README.md.
LITE: dict = {"channels": (8, 16, 32), "blocks": 3}
SIZES: dict[str, dict] = {
    "lite": LITE,
    "medium": {"channels": (16, 32, 64), "blocks": 3},
    "paper": {"channels": (32, 64, 128), "blocks": 5},
}
# Bounds of the network settings (a model file's are read from the file): 4 times the
# paper's sizes and more, yet small enough that no setting alone can ask for more memory
# than a laptop has (512 channels and 32 blocks: ~150 M weights).
MAX_CHANNELS = 512
MAX_BLOCKS = 32
NORMS = ("none", "batch", "instance")
UPSAMPLE_MODES = ("nearest", "transposed")

# Gatys et al.
PAPER_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
INITS = ("content", "noise", "style")
PRESERVE_COLOR = ("luminance", "histogram")
OPTIMIZERS = ("lbfgs", "adam")
GRAM_NORMALIZATIONS = ("hw", "chw", "none")
MIN_SIDE = 16  # pixels: relu5_1 sits behind four 2x2 poolings
MAX_SIZE = 4096  # pixels: a longer output side needs tens of GB; lower --size
# super-resolution, documents, AdaIN
SCALES = (2, 4, 8)
SR_LOSSES = ("feature", "pixel")
PIXEL_LOSSES = ("l1", "mse")
MAX_STRENGTH = 100  # page degradation strengths from 0 up to (not including) this
PAGE_SIZE = (512, 384)  # (H, W) pixels of a synthetic page: a portrait page at about 45 dpi, 3:4
ADAIN_LAYER = "relu4_1"  # the paper's: deeper layers lose the content's structure
STYLE_SIZE = 512  # px: the longest side of an AdaIN style image, as in the paper
VIDEO_BATCH = 4  # video frames per pass of a network


def _vgg_layers(arch: str | None) -> tuple[str, list[str]]:
    """``(arch, its layer names)``; ``None`` reads ``NST_ARCH``. Imports PyTorch (the VGG
    tables live with the network), which only a run that starts needs."""
    from .models import check_arch, layer_names

    arch = check_arch(arch)
    return arch, layer_names(arch)


def _check_known_layers(config: Any, arch: str | None) -> str:
    """Every ``dict[str, float]`` field of ``config`` names layers of ``arch``; returns the
    resolved arch."""
    arch, valid = _vgg_layers(arch)
    for f in dataclasses.fields(config):
        layers = getattr(config, f.name)
        if isinstance(layers, dict):
            unknown = [name for name in layers if name not in valid]
            if unknown:
                raise BadInputError(f"{f.name}: unknown {arch.upper()} layer(s) {unknown}; "
                                    f"valid names: {', '.join(valid)}.")  # fmt: skip
    return arch


def _any_weight(weight: float, layers: dict[str, float]) -> bool:
    """Whether a loss term with ``weight`` over ``layers`` counts at all."""
    return bool(weight) and any(w > 0 for w in layers.values())


def _paper_content_layers() -> dict[str, float]:
    return {"relu4_2": 1.0}


def _paper_style_layers() -> dict[str, float]:
    return {name: 1.0 / len(PAPER_STYLE_LAYERS) for name in PAPER_STYLE_LAYERS}


@dataclass
class GatysConfig:
    """Every setting of a Gatys et al. style transfer; defaults make a good 512 px picture.

    Layers map a name (``relu4_2``) to its weight inside the content or style loss. The
    loss is ``content_weight * content + style_weight * style + tv_weight * tv`` with
    ``content`` the mean squared feature difference, ``style`` the weighted sum over layers
    of the mean squared Gram difference (Grams normalised by ``gram_normalize``, see
    :func:`nst_utils.losses.gram_matrix`) and ``tv`` the total variation of the pixels.

    Paper (Gatys et al. 2015, VGG19, average pooling): content conv4_2, style conv1_1 ..
    conv5_1 with weights 1/5, alpha/beta = 1e-3 or 1e-4, white-noise start, L-BFGS. Here
    the same layers after their ReLU (``relu4_2``; ``relu1_1`` .. ``relu5_1``), max pooling
    and a start from the content photo, which keeps the layout with fewer steps.

    ``relative_losses=True`` divides each layer's term by the mean square of its target
    (the content features, the style Gram), so every term starts near 1 whatever the
    network: torchvision's ImageNet VGG19, a Caffe-converted VGG16 whose activations are
    ~50x larger, or random weights. That is what lets one default fit every network.
    ``style_weight=10`` was chosen by eye with a trained VGG16 (astronaut and chelsea with
    Starry Night and The Great Wave at 192-512 px: 1 keeps the photo with a light texture,
    30 paints strongly while faces stay recognisable). With ``relative_losses=False`` the
    losses are the paper's and PyTorch tutorial's and the weights must be re-chosen per
    network (e.g. 1e6 with ``gram_normalize="chw"`` for torchvision's VGG19). No total
    variation is needed at 512 px (``tv_weight=0``); raise it if a result looks grainy.

    ``steps`` counts function evaluations (one forward and backward pass each) over all
    ``scales``; ``scales=2`` first optimises at half size, upsamples and continues, which
    is cheaper for large outputs. ``preserve_color="luminance"`` transfers the style to
    the luminance only and keeps the content's colours (YIQ); ``"histogram"`` recolours
    the painting with the photo's colour mean and covariance first.
    """

    arch: str | None = option(
        None, "VGG variant: vgg19 | vgg16", choices=("vgg19", "vgg16"), default_help="NST_ARCH"
    )
    weights: str | None = option(
        None, "VGG weights: imagenet | random | FILE.pth", default_help="NST_WEIGHTS"
    )
    pooling: str = option("max", "VGG pooling (paper: avg)", choices=("max", "avg"))
    content_layers: dict[str, float] = option(
        help="content layers, NAME[:WEIGHT],...", factory=_paper_content_layers
    )
    style_layers: dict[str, float] = option(
        help="style layers, NAME[:WEIGHT],...", factory=_paper_style_layers
    )
    content_weight: float = option(1.0, "weight of the content loss", low=0)
    style_weight: float = option(10.0, "weight of the style loss (higher = more painterly)", low=0)
    tv_weight: float = option(
        0.0, "total variation weight (raise it if a result looks grainy)", low=0
    )
    gram_normalize: str = option(
        "hw", "Gram matrix normalisation (nst_utils.losses.gram_matrix)",
        choices=GRAM_NORMALIZATIONS,
    )  # fmt: skip
    relative_losses: bool = option(
        True, "divide each layer's loss by its target's mean square (off: the paper's raw losses)"
    )
    optimizer: str = option("lbfgs", "optimiser", choices=OPTIMIZERS)
    lr: float | None = option(None, "learning rate", default_help="LBFGS 1, Adam 0.02")
    steps: int = option(300, "optimisation steps (forward+backward passes), over all scales", low=1)
    size: int = option(512, "longest side of the output, px", low=MIN_SIDE, high=MAX_SIZE)
    style_scale: float = option(1.0, "style image size relative to --size; smaller = finer strokes")
    init: str = option("content", "starting image", choices=INITS)
    preserve_color: str | None = option(
        None, "keep the content's colours: luminance | histogram", choices=PRESERVE_COLOR
    )
    scales: int = option(1, "coarse-to-fine levels, each twice the size of the one before", low=1)
    seed: int = option(0, "random seed (noise start)", high=MAX_SEED)
    device: str | None = option(None, "cpu | cuda | mps", default_help="automatic")

    def check(self) -> str:
        """Raise :class:`BadInputError` naming the first bad setting; returns the resolved arch."""
        check_fields(self)
        arch = _check_known_layers(self, self.arch)
        if not any(w > 0 for w in self.style_layers.values()):
            raise BadInputError("style_layers is empty: give at least one layer, e.g. relu1_1.")
        if self.content_weight > 0 and not any(w > 0 for w in self.content_layers.values()):
            raise BadInputError("content_layers is empty but content_weight > 0; add a layer.")
        if self.steps < self.scales:
            raise BadInputError(f"steps={self.steps} cannot be split over scales={self.scales}.")
        if self.size / 2 ** (self.scales - 1) < MIN_SIDE:
            raise BadInputError(
                f"scales={self.scales} makes the coarsest level smaller than {MIN_SIDE} px "
                f"for size={self.size}; use fewer scales or a larger size."
            )
        if self.style_scale * self.size > MAX_SIZE:
            raise BadInputError(
                f"style_scale={self.style_scale} makes the style image "
                f"{self.style_scale * self.size:.0f} px at size={self.size}; the limit is "
                f"{MAX_SIZE}. Lower style_scale."
            )
        return arch

    def replace(self, **changes: Any) -> GatysConfig:
        """A copy with some fields changed: ``config.replace(steps=100)``."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise BadInputError(
                f"{type(self).__name__} has no field(s) {unknown}; fields: {sorted(names)}."
            )
        return dataclasses.replace(self, **changes)


StyleTransferConfig = GatysConfig  # the name notebook 03 and earlier code use


@dataclass
class TrainingConfig:
    """Settings every trained network shares; each method's config adds its own fields and
    its ``KIND``, the name its model files carry."""

    steps: int = option(2000, "training steps (one batch each)", low=1)
    batch_size: int = option(4, "images per step, all processes together (paper: 4)", low=1)
    crop_size: int = option(
        256, "side of the square training crops, px (paper: whole photos at 256 x 256)",
        low=1, high=MAX_CROP,
    )  # fmt: skip
    lr: float = option(1e-3, "Adam learning rate (paper: 1e-3)")
    seed: int = option(0, "seed of the network's initialisation and of the crops", high=MAX_SEED)
    log_every: int = option(10, "record the loss every N steps", low=1)
    sample_every: int = option(250, "save sample pictures every N steps (0: never)")
    checkpoint_every: int = option(100, "write a checkpoint every N steps", low=1)
    workers: int = option(0, "data-loading worker processes (0: load in the main process)")
    device: str | None = option(None, "cpu | cuda | mps", default_help="automatic")

    def check(self) -> None:
        """Raise :class:`BadInputError` naming the first bad setting."""
        check_fields(self)
        if self.batch_size * self.crop_size**2 > MAX_STEP_PIXELS:
            raise BadInputError(
                f"batch_size={self.batch_size} crops of crop_size={self.crop_size} px are "
                f"{self.batch_size * self.crop_size**2 / 1e6:.0f} M pixels a step; the limit is "
                f"{MAX_STEP_PIXELS / 1e6:.1f} M (e.g. 256 crops of 256 px). Lower one of them."
            )

    def check_layers_fit(self, layers: Iterable[str], arch: str) -> None:
        """Refuse a crop_size too small for the deepest of the loss network's ``layers``."""
        from .gatys import layers_min_side

        layers = list(layers)
        if not layers:
            return
        need, deepest = layers_min_side(layers, arch)
        if self.crop_size < need:
            raise BadInputError(
                f"crop_size={self.crop_size}: layer {deepest} needs crops of at least {need} px; "
                "use larger crops or shallower layers."
            )


@dataclass
class LossNetworkConfig(TrainingConfig):
    """A training run with a VGG loss network: which VGG and which weights. Every
    ``dict[str, float]`` field (content, style or feature layers with their weights) is
    checked against ``arch``'s layer names."""

    arch: str = option("vgg16", "loss network (paper: vgg16)", choices=ARCHS)
    weights: str | None = option(
        None, "loss network weights: imagenet | random | FILE.pth", default_help="NST_WEIGHTS"
    )

    def check(self) -> None:
        """Raise :class:`BadInputError` naming the first bad setting."""
        super().check()
        _check_known_layers(self, self.arch)


_PRECISION_HELP = (
    "number format of the VGG loss network: bfloat16 (autocast; about twice as fast where the "
    "device computes it natively: GPUs of compute capability 8.0 or newer, CPUs with AMX or "
    "AVX512-BF16), float32, or auto (bfloat16 where native, else float32)"
)


def _fast_content_layers() -> dict[str, float]:
    # The paper's is relu2_2. With the course's trained VGG16 (HED's, an edge detector),
    # relu2_2 holds every edge of the photo in place and the lite networks painted
    # blue-and-cream etchings; relu3_3 left them a little more of the painting's palette
    # (models/README.md shows both; the difference is modest).
    return {"relu3_3": 1.0}


def _fast_style_layers() -> dict[str, float]:
    return {name: 0.25 for name in ("relu1_2", "relu2_2", "relu3_3", "relu4_3")}


@dataclass
class FastStyleConfig(LossNetworkConfig):
    """Every setting of a fast style transfer training run (and the model file's record).

    Paper (Johnson et al. 2016, supplementary): VGG16, content ``relu2_2``, style
    ``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3``, COCO photos resized to 256 x 256,
    batch 4, 40,000 steps (two epochs), Adam lr 1e-3, style weight 5 and content weight 1
    with their loss normalisation, TV weight 1e-6 .. 1e-4. Here the losses are relative
    (each layer's term divided by its target's mean square, see
    :class:`~nst_utils.losses.PerceptualLoss`), so the weights' scale does not depend on
    the VGG16's activation scale; the content layer is ``relu3_3`` (see
    ``_fast_content_layers``).
    """

    KIND: ClassVar[str] = "fast_style"  # what model files of this method say they are
    network: str = option(
        "lite", "network size: lite (fast on CPUs), medium or paper", choices=tuple(SIZES)
    )
    upsample: str = option(
        "nearest", "upsampling: nearest (resize + conv) or transposed (the paper's)",
        choices=UPSAMPLE_MODES,
    )  # fmt: skip
    style_size: int = option(
        256, "longest side of the style image for its Gram matrices, px", low=16, high=4096
    )
    content_layers: dict[str, float] = option(
        help="content layers, NAME[:WEIGHT],...", factory=_fast_content_layers
    )
    style_layers: dict[str, float] = option(
        help="style layers, NAME[:WEIGHT],...", factory=_fast_style_layers
    )
    content_weight: float = option(1.0, "weight of the content loss", low=0)
    style_weight: float = option(3.0, "weight of the style loss (higher = more painterly)", low=0)
    tv_weight: float = option(1.0, "total variation weight (smooths the output)", low=0)
    loss_precision: str = option("auto", _PRECISION_HELP, choices=PRECISIONS)
    style: str = option("", "name of the style image (recorded in the model)", cli=False)

    def check(self) -> None:
        """Raise :class:`BadInputError` naming the first bad setting."""
        super().check()
        content = _any_weight(self.content_weight, self.content_layers)
        if not (content or _any_weight(self.style_weight, self.style_layers) or self.tv_weight):
            raise BadInputError(
                "content_weight, style_weight and tv_weight (or the layers' weights) are all "
                "0: nothing to train. Give the style a weight, e.g. --style-weight 3."
            )
        self.check_layers_fit([*self.content_layers, *self.style_layers], self.arch)


@dataclass
class MultiStyleConfig(FastStyleConfig):
    """Every setting of a multi-style training run: 04's (:class:`FastStyleConfig`: the
    same network sizes and the same loss, so each style's loss compares with a network of
    its own), with the style images' names recorded in ``style``.

    Paper (Dumoulin et al. 2017, and their code in Magenta): 32 paintings (the "varied"
    model) or 10 (Monet) in one network; VGG16, content at relu3_3, style at relu1_2,
    relu2_2, relu3_3, relu4_3; batch 16 of 256 px ImageNet crops, each with a random
    style; Adam lr 1e-3; 40,000 steps.
    """

    KIND: ClassVar[str] = "multistyle"
    style: str = option("", "names of the style images, in index order", cli=False)
    steps: int = option(
        4000, "training steps (paper: 40,000 for 32 styles; 04's single style: 2000)", low=1
    )


def _adain_style_layers() -> dict[str, float]:
    return {name: 1.0 for name in ("relu1_1", "relu2_1", "relu3_1", "relu4_1")}


@dataclass
class AdaINConfig(LossNetworkConfig):
    """Every setting of an AdaIN decoder training run (and the model file's record).

    Paper (Huang & Belongie 2017, section 6, and the authors' Torch code): VGG19 encoder
    up to relu4_1; about 80,000 MS-COCO photos and 80,000 WikiArt paintings, each resized
    to a 512 px shorter side, then 256 px random crops; batch 8 pairs; Adam lr 1e-4 (the
    code also decays it, lr / (1 + 5e-5 step)); style weight 10 (the code: 1e-2, with its
    own loss scaling); 160,000 steps. The loss here is relative (each term divided by its
    target's mean square, per image: see :class:`~nst_utils.losses.PerceptualLoss`), much
    as the authors' normalised VGG19 (mean activation 1 per filter) puts every layer on
    one scale; the weights do not depend on which VGG weights are used.
    """

    KIND: ClassVar[str] = "adain"
    steps: int = option(20000, "training steps (paper: 160,000)", low=1)
    batch_size: int = option(8, "content-style pairs per step (paper: 8)", low=1)
    lr: float = option(1e-4, "Adam learning rate (paper: 1e-4)")
    arch: str = option("vgg19", "encoder and loss network (paper: vgg19)", choices=ARCHS)
    weights: str | None = option(
        None, "VGG weights: imagenet | random | FILE.pth", default_help="NST_WEIGHTS"
    )
    style_layers: dict[str, float] = option(
        help="layers whose channel mean and std are matched, NAME[:WEIGHT],... (paper: "
        "relu1_1 .. relu4_1, weight 1 each)",
        factory=_adain_style_layers,
    )
    content_weight: float = option(1.0, "weight of the content loss at relu4_1 (paper: 1)", low=0)
    style_weight: float = option(10.0, "weight of the style loss (paper: 10)", low=0)
    loss_precision: str = option(
        "auto", "number format of the VGG passes: bfloat16, float32 or auto (see nst train)",
        choices=PRECISIONS,
    )  # fmt: skip
    styles: str = option("", "the style images used (recorded in the model)", cli=False)

    def check(self) -> None:
        """Raise :class:`BadInputError` naming the first bad setting."""
        super().check()
        _, names = _vgg_layers(self.arch)
        late = [n for n in self.style_layers if n not in names[: names.index(ADAIN_LAYER) + 1]]
        if late or not self.style_layers:
            raise BadInputError(
                f"style_layers: {late or 'none given'}; use layers up to {ADAIN_LAYER}, the "
                "encoder's last (e.g. relu1_1,relu2_1,relu3_1,relu4_1)."
            )


def _sr_content_layers() -> dict[str, float]:
    return {"relu2_2": 1.0}


@dataclass
class SuperResolutionConfig(LossNetworkConfig):
    """Every setting of a super-resolution training run (and the model file's record).

    Paper (Johnson et al. 2016, section 4.2): x4 and x8 models; feature reconstruction loss
    at ``relu2_2`` of VGG16; 288 x 288 px HR patches from 10k COCO photos; LR inputs made by
    a Gaussian blur of sigma 1.0 and bicubic downsampling; batch 4, 200,000 steps, Adam lr
    1e-3 (here 1e-4: without batch normalisation, Adam's first steps at 1e-3 are so large
    that most ReLUs die and the network stays at the bicubic result). The network
    (:class:`~nst_utils.networks.SuperResolutionNet`) defaults to the paper's width (64)
    and residual blocks (4), without batch normalisation and with a bicubic skip
    connection (see its docstring). The feature loss is relative (divided by its target's
    mean square), so its weight does not depend on which VGG16 weights are used. Additions
    to the paper: the consistency term (see :func:`nst_utils.superres.make_loss`; the paper
    matched colour histograms after the fact instead) and, optionally, training on the
    most detailed of several random crops (``crop_tries``,
    :class:`~nst_utils.superres.DetailedCrops`).
    """

    KIND: ClassVar[str] = "super_resolution"
    crop_size: int = option(
        128, "side of the square high-resolution training crops, px (paper: 288)",
        low=1, high=MAX_CROP,
    )  # fmt: skip
    lr: float = option(
        1e-4,
        "Adam learning rate (paper: 1e-3, with batch normalisation; without it, 1e-3 kills "
        "most ReLUs in the first steps)",
    )
    scale: int = option(4, "upscaling factor (paper: 4 and 8)", choices=SCALES)
    loss: str = option(
        "feature",
        "feature: VGG feature reconstruction loss (the paper's); pixel: mean squared error "
        "(the paper's baseline)",
        choices=SR_LOSSES,
    )
    content_layers: dict[str, float] = option(
        help="feature loss layers, NAME[:WEIGHT],... (paper: relu2_2)",
        factory=_sr_content_layers,
    )
    content_weight: float = option(1.0, "weight of the feature (or pixel) loss", low=0)
    consistency_weight: float = option(
        100.0,
        "weight of the consistency term MSE(degrade(output), LR input): keeps brightness and "
        "colours (paper: none; it matched histograms afterwards)",
        low=0,
    )
    tv_weight: float = option(0.0, "total variation weight (smooths the output)", low=0)
    blur_sigma: float = option(1.0, "Gaussian blur before downsampling, px (paper: 1.0)", low=0)
    channels: int = option(64, "network width (paper: 64)", low=1, high=MAX_CHANNELS)
    blocks: int = option(4, "residual blocks (paper: 4)", high=MAX_BLOCKS)
    norm: str = option("none", "normalisation layers (paper: batch)", choices=NORMS)
    upsample: str = option(
        "nearest", "upsampling: nearest (resize + conv) or transposed (the paper's)",
        choices=UPSAMPLE_MODES,
    )  # fmt: skip
    residual: bool = option(True, "add the bicubic upsampling to the output (paper: no)")
    crop_tries: int = option(
        1, "draw N crops per sample and train on the most detailed (paper: 1, uniform)", low=1
    )

    def check(self) -> None:
        """Raise :class:`BadInputError` naming the first bad setting."""
        super().check()
        if self.crop_size % self.scale or self.crop_size < 8 * self.scale:
            raise BadInputError(
                f"crop_size={self.crop_size}: use a multiple of scale={self.scale} that is at "
                f"least {8 * self.scale} px (the low-resolution crops are crop_size / scale)."
            )
        if self.loss == "feature":
            if not any(w > 0 for w in self.content_layers.values()):
                raise BadInputError(
                    "loss='feature' needs at least one content layer with weight > 0."
                )
            self.check_layers_fit(self.content_layers, self.arch)
        if not (self.content_weight or self.consistency_weight or self.tv_weight):
            raise BadInputError(
                "content_weight, consistency_weight and tv_weight are all 0: nothing to train."
            )


def _document_feature_layers() -> dict[str, float]:
    return {"relu1_2": 0.5, "relu2_2": 0.5}


@dataclass
class DocumentConfig(LossNetworkConfig):
    """Every setting of a document enhancement training run (and the model file's record).

    The perceptual loss is relative (each layer's term divided by its target's mean square,
    see :class:`~nst_utils.losses.PerceptualLoss`), so the weights below mean the same with
    any VGG16 weights. Pixel loss: L1 rather than MSE. Text is two tones; where the input
    leaves doubt, MSE's best answer is the mean (grey halos around strokes), L1's is the
    median (ink or paper), and L1 does not let the few large errors of stains and shadows
    drown the many small ones at stroke edges (Zhao et al. 2017, "Loss Functions for Image
    Restoration with Neural Networks", found L1 better than MSE for restoration networks).
    """

    KIND: ClassVar[str] = "document"
    crop_size: int = option(
        128, "side of the square crops cut from the pages, px (>= 5 lines)",
        low=16, high=min(PAGE_SIZE),
    )  # fmt: skip
    arch: str = option("vgg16", "loss network", choices=ARCHS)
    network: str = option(
        "medium", "TransformerNet size: lite, medium or paper (Johnson et al.'s)",
        choices=tuple(SIZES),
    )  # fmt: skip
    residual: bool = option(True, "output = input + network output (learn the correction)")
    pixel_loss: str = option("l1", "pixel loss against the clean page", choices=PIXEL_LOSSES)
    pixel_weight: float = option(1.0, "weight of the pixel loss (keeps the tone right)", low=0)
    feature_layers: dict[str, float] = option(
        help="perceptual loss layers, NAME[:WEIGHT],...", factory=_document_feature_layers
    )
    feature_weight: float = option(
        1.0, "weight of the perceptual loss (keeps strokes sharp)", low=0
    )
    tv_weight: float = option(0.0, "total variation weight (smooths the output)", low=0)
    strength: float = option(
        1.0, "degradation strength of the training pages (1: default)", low=0, below=MAX_STRENGTH
    )

    def check(self) -> None:
        """Raise :class:`BadInputError` naming the first bad setting."""
        super().check()
        if not self.pixel_weight and not (self.feature_weight and self.feature_layers):
            raise BadInputError("pixel_weight and feature_weight are both 0: nothing to train.")
        if self.feature_weight:
            self.check_layers_fit(self.feature_layers, self.arch)
