"""Look inside the VGG: channel grids, first-layer filters, activation maximisation and
reconstructions of an image from one layer's activations (notebook 01), and
:func:`picture_widget`, the notebooks' one way to put a picture under sliders, and
:class:`LossPlot`, their one live plot of a training loss.

Shapes follow the course convention: images are (1, 3, H, W) floats in [0, 1].
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur
from torchvision.utils import make_grid

from .errors import BadInputError
from .images import tensor_to_image
from .losses import PerceptualLoss
from .models import VGGFeatures
from .optimize import OptimizeResult, optimize_image


def _tile(tiles: torch.Tensor, ncols: int, pad: int, fill: float) -> torch.Tensor:
    """(K, C, h, w) -> (C, rows*(h+pad)-pad, ncols*(w+pad)-pad), tiles row by row
    (torchvision's ``make_grid`` without its outer border)."""
    k, c, h, w = tiles.shape
    ncols = max(1, min(ncols, k))
    nrows = -(-k // ncols)
    if k == 1:  # make_grid returns a single tile as it is, unpadded
        return tiles[0].clone()
    grid = make_grid(tiles, nrow=ncols, padding=pad, pad_value=fill)[:c]
    return grid[:, pad : pad + nrows * (h + pad) - pad, pad : pad + ncols * (w + pad) - pad]


def _check_grid_args(ncols: int, pad: int) -> None:
    if ncols < 1:
        raise BadInputError(f"ncols must be at least 1, got {ncols}.")
    if pad < 0:
        raise BadInputError(f"pad must be 0 or more pixels, got {pad}.")


def feature_grid(
    activation: torch.Tensor,
    channels: Sequence[int] | None = None,
    ncols: int = 8,
    pad: int = 1,
) -> torch.Tensor:
    """Channels of one activation side by side, each stretched to [0, 1] on its own.

    ``activation``: (1, C, h, w) or (C, h, w), e.g. ``net(image)["relu3_1"]``.
    ``channels``: which channels to show (default: all), in that order.
    Returns a (rows*(h+pad)-pad, ncols*(w+pad)-pad) tensor in [0, 1] for ``plt.imshow``;
    padding is 1 (white) so tile borders stay visible with any colour map.
    """
    _check_grid_args(ncols, pad)
    act = activation.detach().float().cpu()
    if act.dim() == 4:
        if act.shape[0] != 1:
            raise BadInputError(f"feature_grid shows one image; got a batch of {act.shape[0]}.")
        act = act[0]
    if act.dim() != 3:
        raise BadInputError(
            f"feature_grid expects (1, C, h, w) or (C, h, w), got {tuple(activation.shape)}."
        )
    n = act.shape[0]
    chosen = list(range(n)) if channels is None else [int(c) for c in channels]
    bad = [c for c in chosen if not 0 <= c < n]
    if bad or not chosen:
        raise BadInputError(f"channels {bad or '(none given)'} are not in 0..{n - 1}.")
    tiles = act[chosen]
    low = tiles.amin(dim=(1, 2), keepdim=True)
    high = tiles.amax(dim=(1, 2), keepdim=True)
    tiles = (tiles - low) / (high - low).clamp(min=1e-8)  # an all-zero channel stays black
    return _tile(tiles.unsqueeze(1), ncols, pad, fill=1.0)[0]


def filter_grid(
    conv_weight: torch.Tensor, ncols: int = 8, pad: int = 1, scale: int = 1
) -> torch.Tensor:
    """First-layer filters as little RGB images: (C_out, 3, k, k) -> (3, H, W) in [0, 1].

    Each filter is shown on its own scale, 0.5 grey = weight 0, so its colour and
    orientation show even when filters differ in strength. ``scale`` repeats every
    weight as a ``scale x scale`` block (nearest neighbour), for a crisper display.
    """
    _check_grid_args(ncols, pad)
    w = conv_weight.detach().float().cpu()
    if w.dim() != 4 or w.shape[1] != 3:
        raise BadInputError(
            f"filter_grid shows filters that read RGB, shape (C_out, 3, k, k); got "
            f"{tuple(conv_weight.shape)}. Only the first conv layer (conv1_1) has 3 inputs."
        )
    if scale < 1:
        raise BadInputError(f"scale must be at least 1, got {scale}.")
    peak = w.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-8)
    tiles = 0.5 + 0.5 * w / peak
    if scale > 1:
        tiles = tiles.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    return _tile(tiles, ncols, pad, fill=1.0)


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (N, C, H, W), 2.5 sigma each side, reflect-padded (torchvision)."""
    size = 2 * max(1, math.ceil(2.5 * sigma)) + 1
    return gaussian_blur(image, [size, size], [sigma, sigma])


def layer_output(net: VGGFeatures, image: torch.Tensor, layer: str) -> torch.Tensor:
    """The output of any layer that ``net`` computes, even one it was not asked to return.

    ``image``: (N, 3, H, W) in [0, 1]. Useful for the conv output under a ReLU.
    """
    return net(image, layers=[layer])[layer]


def maximize_activation(
    net: VGGFeatures,
    layer: str,
    channel: int | Sequence[int],
    size: int = 128,
    steps: int = 200,
    lr: float = 0.05,
    jitter: int = 8,
    blur_every: int = 4,
    blur_sigma: float = 0.5,
    octaves: int = 1,
    octave_scale: float = 1.4,
    seed: int = 0,
    progress: bool = True,
) -> torch.Tensor:
    """Images that make channels fire strongly: gradient ascent on a channel's mean activation.

    Starts from faint noise around grey and runs Adam on the pixels. Three regularisers keep
    the result legible rather than high-frequency noise: every step the image is shifted by a
    random ``jitter`` pixels (so a pattern must work anywhere), every ``blur_every`` steps it
    is blurred a little (``blur_sigma`` pixels), and with ``octaves > 1`` it is first grown at
    smaller sizes (each ``octave_scale`` times smaller) and then upsampled, which seeds large
    structures. For a ``relu`` layer the conv output under it is maximised, so gradients
    never vanish at dead units. ``channel`` is one index, or several to optimise as one batch
    (one image each, faster than separate calls). Returns (K, 3, size, size) in [0, 1], K
    the number of channels (1 for an int).
    """
    if layer.startswith("relu"):
        layer = "conv" + layer[4:]
    probe = layer_output(net, torch.zeros(1, 3, 32, 32, device=_device(net)), layer)
    chosen = [int(channel)] if isinstance(channel, int) else [int(c) for c in channel]
    bad = [c for c in chosen if not 0 <= c < probe.shape[1]]
    if bad or not chosen:
        raise BadInputError(
            f"channel {', '.join(map(str, bad)) or '(none given)'} is not in "
            f"0..{probe.shape[1] - 1} for {layer}."
        )
    if steps < 1 or size < 8 or octaves < 1:
        raise BadInputError(
            f"need steps >= 1, size >= 8, octaves >= 1; got {steps}, {size}, {octaves}."
        )
    generator = torch.Generator().manual_seed(seed)
    sizes = [max(8, round(size / octave_scale**k)) for k in reversed(range(octaves))]
    k = len(chosen)
    image = 0.5 + 0.05 * torch.randn(k, 3, sizes[0], sizes[0], generator=generator)
    image = image.to(_device(net))
    per_octave = [steps // octaves + (1 if k < steps % octaves else 0) for k in range(octaves)]
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, desc=f"{layer}:{chosen}", disable=not progress, leave=False)
    for side, n_steps in zip(sizes, per_octave, strict=True):
        if image.shape[-1] != side:
            image = F.interpolate(image, size=(side, side), mode="bilinear", align_corners=False)
        image = image.detach().clamp(0, 1).requires_grad_(True)
        opt = torch.optim.Adam([image], lr=lr)
        for step in range(n_steps):
            dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
            shifted = torch.roll(image, shifts=(dy, dx), dims=(2, 3))
            act = layer_output(net, shifted, layer)[torch.arange(k), chosen]  # (K, h, w)
            loss = -act.mean(dim=(1, 2)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                if blur_every and (step + 1) % blur_every == 0:
                    image.copy_(_gaussian_blur(image, blur_sigma))
                image.clamp_(0, 1)
            bar.update(1)
            bar.set_postfix(mean_activation=f"{-loss.item() / k:.3g}", refresh=False)
    bar.close()
    return image.detach()


def _device(net: VGGFeatures) -> torch.device:
    return next(net.parameters()).device


def reconstruct(
    net: VGGFeatures,
    layer: str,
    target_image: torch.Tensor,
    steps: int = 200,
    init: torch.Tensor | None = None,
    tv_weight: float = 0.0,
    seed: int = 0,
    progress: bool = True,
) -> OptimizeResult:
    """Find an image whose ``layer`` activations match those of ``target_image``.

    Gatys et al. (2016, Fig. 1) and Mahendran & Vedaldi (2015): start from white noise
    (or ``init``), minimise the mean squared difference of the activations with L-BFGS via
    :func:`nst_utils.optimize_image`. The loss is divided by the target's mean square, so
    1.0 means "no better than all zeros" at every layer. ``tv_weight`` adds a total-variation
    smoothness term (0 = none, as in the paper). ``target_image``: (1, 3, H, W) in [0, 1].
    Returns the reconstruction (1, 3, H, W) and the history ("content", "tv", "total").
    """
    loss = PerceptualLoss(net, {layer: 1.0}, tv_weight=tv_weight)
    loss.set_content(target_image)
    if init is None:
        generator = torch.Generator().manual_seed(seed)
        init = torch.rand(target_image.shape, generator=generator).to(target_image.device)

    def loss_fn(image: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = loss(image)
        return {"content": terms["content"]} | ({"tv": terms["tv"]} if tv_weight else {})

    return optimize_image(init, loss_fn, steps, progress=progress, desc=f"reconstruct {layer}")


def to_png(picture: Any) -> bytes:
    """PNG bytes of a matplotlib figure (closed afterwards), an image tensor (1, 3, H, W) or
    (3, H, W) in [0, 1], or a PIL image."""
    if isinstance(picture, torch.Tensor):
        picture = tensor_to_image(picture)
    buffer = io.BytesIO()
    if hasattr(picture, "savefig"):  # a matplotlib figure
        import matplotlib.pyplot as plt

        picture.savefig(buffer, format="png", bbox_inches="tight")
        plt.close(picture)
    elif hasattr(picture, "save"):  # a PIL image
        picture.save(buffer, format="PNG")
    else:
        raise BadInputError(
            f"to_png draws a matplotlib figure, an image tensor or a PIL image, not a "
            f"{type(picture).__name__}."
        )
    return buffer.getvalue()


def picture_widget(draw: Callable[..., Any], **controls: Any) -> Any:
    """Controls (sliders, drop-downs) above a picture that ``draw(**values)`` makes.

    ``controls`` are what ``ipywidgets.interactive`` takes (``depth=widgets.IntSlider(...)``);
    ``draw`` returns a matplotlib figure, an image tensor or a PIL image for the current
    values. The picture goes into an ``ipywidgets.Image``, drawn once now and again whenever
    a control moves. Nothing is printed or shown inside an Output widget: headless runners
    (nbconvert, nbclient) answer every output there by sending the widget's state back on
    the kernel's shell socket, which can swallow the cell's execute_reply and stall the run
    until the cell timeout (forever without one). Returns the widget box to display.
    """
    import ipywidgets as widgets

    view = widgets.Image(format="png")

    def update(**values: Any) -> None:
        view.value = to_png(draw(**values))

    return widgets.VBox([widgets.interactive(update, **controls), view])


class LossPlot:
    """A training-loss plot that redraws in place while a run trains: give it to any
    method's ``train`` as ``callback`` (notebooks 04-06).

    ``terms`` names the loss terms to draw, one line each, from what ``callback(step,
    terms)`` receives every ``log_every`` steps. The values stay in :attr:`steps` and
    :attr:`values`; outside IPython (a script, a test) nothing is shown.
    """

    def __init__(
        self,
        terms: Sequence[str] = ("total",),
        *,
        ylabel: str = "loss",
        title: str = "training loss",
        figsize: tuple[float, float] = (6, 3),
    ) -> None:
        import matplotlib.pyplot as plt

        self.terms = [terms] if isinstance(terms, str) else list(terms)
        if not self.terms:
            raise BadInputError("LossPlot needs at least one loss term to draw, e.g. ['total'].")
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {name: [] for name in self.terms}
        self.fig, self.ax = plt.subplots(figsize=figsize)
        plt.close(self.fig)  # shown through the display handle only, not again at cell end
        self._labels = {"xlabel": "step", "ylabel": ylabel, "title": title}
        self._draw()
        self._handle = _display_handle(self.fig)

    def __call__(self, step: int, terms: dict[str, float]) -> None:
        missing = [name for name in self.terms if name not in terms]
        if missing:
            raise BadInputError(f"LossPlot: the run reports no loss term {missing[0]!r}; it "
                                f"reports {', '.join(terms)}.")  # fmt: skip
        self.steps.append(step)
        for name in self.terms:
            self.values[name].append(float(terms[name]))
        self._draw()
        if self._handle is not None:
            self._handle.update(self.fig)

    def _draw(self) -> None:
        self.ax.clear()
        for name, values in self.values.items():
            self.ax.plot(self.steps, values, label=name)
        self.ax.set(**self._labels)
        if len(self.terms) > 1:
            self.ax.legend(loc="upper right")


def _display_handle(fig: Any) -> Any:
    """Show ``fig`` in the running IPython kernel and return its display handle; None
    outside IPython."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    return display(fig, display_id=True) if get_ipython() is not None else None
