"""Optimise the pixels of an image to lower a loss: the loop behind reconstructions,
texture synthesis and Gatys et al. style transfer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .errors import NSTError

LossFn = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]
Callback = Callable[[int, torch.Tensor], None]


@dataclass
class OptimizeResult:
    """The optimised image (1, 3, H, W) in [0, 1] and the loss history, one value a step."""

    image: torch.Tensor
    history: dict[str, list[float]] = field(default_factory=dict)


def optimize_image(
    init: torch.Tensor,
    loss_fn: LossFn,
    steps: int,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    callback: Callback | None = None,
    callback_every: int = 10,
    progress: bool = True,
    desc: str = "optimising",
) -> OptimizeResult:
    """Minimise ``sum(loss_fn(image).values())`` over the pixels of ``image``.

    ``loss_fn`` returns named, already weighted loss terms (e.g. ``{"content": ...,
    "style": ...}``); their sum is minimised and each is recorded in the history, with
    ``"total"``. ``optimizer`` is ``"lbfgs"`` (one function evaluation per step, lr 1 by
    default) or ``"adam"`` (lr 0.02 by default, in [0, 1] pixel units). Pixels are kept
    in [0, 1]. ``callback(step, image)`` runs every ``callback_every`` steps and at the end.
    A NaN or infinite loss stops the run with an :class:`NSTError`.
    """
    if steps < 1:
        raise NSTError(f"steps must be at least 1, got {steps}.")
    image = init.detach().clone().clamp_(0, 1).requires_grad_(True)
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([image], lr=lr or 1.0, max_iter=1, history_size=50)
    elif optimizer == "adam":
        opt = torch.optim.Adam([image], lr=lr or 0.02)
    else:
        raise NSTError(f"optimizer={optimizer!r}: use 'lbfgs' or 'adam'.")
    history: dict[str, list[float]] = {}

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        terms = loss_fn(image)
        total = sum(terms.values())
        total.backward()
        closure.terms = {k: v.item() for k, v in terms.items()} | {"total": total.item()}
        return total

    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False)
    for step in bar:
        opt.step(closure)
        terms = closure.terms
        if not math.isfinite(terms["total"]):
            bar.close()
            raise NSTError(
                f"the loss became {terms['total']} at step {step} ({terms}). Lower the "
                "learning rate or the loss weights, or switch optimizer='adam'."
            )
        for key, value in terms.items():
            history.setdefault(key, []).append(value)
        with torch.no_grad():
            image.clamp_(0, 1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items()}, refresh=False)
        if callback is not None and (step % callback_every == 0 or step == steps):
            callback(step, image.detach())
    bar.close()
    return OptimizeResult(image.detach(), history)
