"""Reference implementation for the benchmark: Gatys et al. style transfer organised the way
PyTorch's well-known neural-style tutorial organises it (re-implemented here, not copied).

The method, step by step:

* the network is torchvision's ``vgg19().features`` (or ``vgg16().features``) with the weights
  of :func:`nst_utils.load_vgg_state` loaded, so ``NST_WEIGHTS`` / ``NST_ARCH`` apply;
* a new ``nn.Sequential`` is built by walking those layers after an ImageNet-normalisation
  module; in-place ReLUs are replaced by out-of-place ones, and after each chosen layer a
  *loss module* is inserted that remembers its target (features of the content image, or the
  Gram matrix of the style image's features) and stores ``self.loss`` during ``forward``;
* everything after the last loss module is cut off, and the model is frozen;
* the Gram matrix is divided by ``a*b*c*d`` (batch * channels * height * width);
* the image, initialised with the content image, is optimised with ``optim.LBFGS([image])``
  and its defaults (``max_iter=20`` per ``.step(closure)``, ``history_size=100``, no line
  search); the closure clamps the pixels into [0, 1] in place before each evaluation and
  counts evaluations, and the outer loop calls ``.step`` while that count is ``<= steps``
  (so 300 "steps" are really 320 evaluations, 16 calls of 20);
* the loss is ``content_weight * sum(content losses) + style_weight * sum(style losses)``
  (style layers are summed, not averaged), with weights 1 and 1e6.

Layer names follow :func:`nst_utils.layer_names` (``relu4_2``, ...), not the tutorial's
``conv_4``; the benchmark uses the paper's layers for both implementations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from nst_utils.models import IMAGENET_MEAN, IMAGENET_STD, layer_names, load_vgg_state

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def tutorial_gram(x: torch.Tensor) -> torch.Tensor:
    """(a, b, c, d) features -> (a*b, a*b) Gram matrix divided by a*b*c*d."""
    a, b, c, d = x.size()
    flat = x.view(a * b, c * d)
    return torch.mm(flat, flat.t()).div(a * b * c * d)


class Normalization(nn.Module):
    """Subtract the ImageNet mean and divide by the standard deviation, per channel."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(-1, 1, 1))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return (img - self.mean) / self.std


class ContentLoss(nn.Module):
    """Transparent layer: passes its input on and stores its MSE to fixed target features."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target.detach()
        self.loss = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(x, self.target)
        return x


class StyleLoss(nn.Module):
    """Transparent layer: passes its input on and stores the MSE of its Gram to a target Gram."""

    def __init__(self, target_features: torch.Tensor) -> None:
        super().__init__()
        self.target = tutorial_gram(target_features).detach()
        self.loss = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(tutorial_gram(x), self.target)
        return x


def vgg_features(arch: str, weights: str | None = None, seed: int = 0) -> nn.Sequential:
    """torchvision's ``vgg16().features`` / ``vgg19().features`` with our weights loaded."""
    builder = {"vgg16": torchvision.models.vgg16, "vgg19": torchvision.models.vgg19}[arch]
    features = builder(weights=None).features
    state = load_vgg_state(arch, weights, seed)
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    return features.eval()


def build_model(
    cnn: nn.Sequential,
    arch: str,
    content: torch.Tensor,
    style: torch.Tensor,
    content_layers: Sequence[str] = CONTENT_LAYERS,
    style_layers: Sequence[str] = STYLE_LAYERS,
) -> tuple[nn.Sequential, list[ContentLoss], list[StyleLoss]]:
    """Copy ``cnn`` layer by layer into a new Sequential with loss modules after the chosen
    layers; targets are computed with the partial model as it grows; trim after the last."""
    names = layer_names(arch)
    model = nn.Sequential(Normalization())
    content_losses: list[ContentLoss] = []
    style_losses: list[StyleLoss] = []
    for name, layer in zip(names, cnn.children(), strict=True):
        if isinstance(layer, nn.ReLU):
            layer = nn.ReLU(inplace=False)  # in-place would overwrite what a loss module saw
        model.add_module(name, layer)
        if name in content_layers:
            module = ContentLoss(model(content).detach())
            model.add_module(f"content_loss_{name}", module)
            content_losses.append(module)
        if name in style_layers:
            module = StyleLoss(model(style).detach())
            model.add_module(f"style_loss_{name}", module)
            style_losses.append(module)
    last = max(i for i, m in enumerate(model) if isinstance(m, ContentLoss | StyleLoss))
    model = model[: last + 1]
    model.requires_grad_(False)
    return model.eval(), content_losses, style_losses


@dataclass
class BaselineResult:
    """Final image, per-evaluation losses and timestamps (seconds since the call began)."""

    image: torch.Tensor
    history: dict[str, list[float]] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    setup_seconds: float = 0.0
    seconds: float = 0.0


def run_baseline(
    cnn: nn.Sequential,
    content: torch.Tensor,
    style: torch.Tensor,
    arch: str,
    steps: int = 300,
    content_weight: float = 1.0,
    style_weight: float = 1e6,
    content_layers: Sequence[str] = CONTENT_LAYERS,
    style_layers: Sequence[str] = STYLE_LAYERS,
    on_eval: Callable[[int], None] | None = None,
) -> BaselineResult:
    """Tutorial-style transfer from the content image; returns the clamped final image.

    ``cnn`` comes from :func:`vgg_features` (built once, outside, as the tutorial does);
    the loss model and its targets are built here, inside the timing.
    """
    start = time.perf_counter()
    model, content_losses, style_losses = build_model(
        cnn, arch, content, style, content_layers, style_layers
    )
    input_img = content.clone()
    input_img.requires_grad_(True)
    optimizer = torch.optim.LBFGS([input_img])
    result = BaselineResult(image=input_img)
    history = result.history
    setup_done = time.perf_counter()
    result.setup_seconds = setup_done - start

    run = [0]
    while run[0] <= steps:

        def closure() -> torch.Tensor:
            with torch.no_grad():
                input_img.clamp_(0, 1)
            optimizer.zero_grad()
            model(input_img)
            style_score = sum(m.loss for m in style_losses) * style_weight
            content_score = sum(m.loss for m in content_losses) * content_weight
            loss = style_score + content_score
            loss.backward()
            run[0] += 1
            history.setdefault("content", []).append(content_score.item())
            history.setdefault("style", []).append(style_score.item())
            history.setdefault("total", []).append(loss.item())
            result.times.append(time.perf_counter() - start)
            if on_eval is not None:
                on_eval(run[0])
            return style_score + content_score

        optimizer.step(closure)

    with torch.no_grad():
        input_img.clamp_(0, 1)
    result.seconds = time.perf_counter() - start
    result.image = input_img.detach()
    return result


def tutorial_loss(
    cnn: nn.Sequential,
    image: torch.Tensor,
    content: torch.Tensor,
    style: torch.Tensor,
    arch: str,
    content_weight: float = 1.0,
    style_weight: float = 1e6,
    content_layers: Sequence[str] = CONTENT_LAYERS,
    style_layers: Sequence[str] = STYLE_LAYERS,
) -> dict[str, float]:
    """The baseline's loss of any image (content, style, total): a common yardstick."""
    with torch.no_grad():
        model, content_losses, style_losses = build_model(
            cnn, arch, content, style, content_layers, style_layers
        )
        model(image.clamp(0, 1))
        c = content_weight * sum(m.loss for m in content_losses).item()
        s = style_weight * sum(m.loss for m in style_losses).item()
    return {"content": c, "style": s, "total": c + s}
