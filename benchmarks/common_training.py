"""Reference for the training benchmark: fast style transfer training written the common way
(written for this course, not copied from a tutorial or example repository).

"The common way" is the shape most tutorials and example scripts give this loop:

* the loss network is torchvision's ``vgg16().features``, cut into four slices that end at
  ``relu1_2``, ``relu2_2``, ``relu3_3`` and ``relu4_3``; every call runs all four;
* each step makes two *separate full passes* to ``relu4_3``: one of the network's output
  (with gradients) and one of the content batch (nothing in it needs gradients, so no graph
  is recorded, but all four slices run although the content loss reads only ``relu2_2``);
* Gram matrices of the output's features are computed on the fly, ``F F^T / (C H W)``;
  the style image's Grams are computed once before the loop;
* plain losses: MSE of features and of Grams times fixed weights, total variation;
* NCHW float32 everywhere, ``.item()`` on every term every step for the log, Adam.

:class:`CommonTrainer` is one training step, used by ``benchmarks/fast.py`` to time it on
the same batches as the course's loop; :func:`main` trains a network on a folder of photos
with a plain ``DataLoader`` (a complete reference loop)::

    python benchmarks/common_training.py --style data/styles/wave.jpg --data photos/ \\
        --steps 200 --crop 128 --network lite
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision import transforms

from nst_utils.models import IMAGENET_MEAN, IMAGENET_STD, load_vgg_state
from nst_utils.networks import TransformerNet

# torchvision vgg16().features indices where each slice ends (exclusive): after relu1_2,
# relu2_2, relu3_3, relu4_3
SLICE_ENDS = (4, 9, 16, 23)
LAYER_NAMES = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


class SlicedVGG16(nn.Module):
    """VGG16 features up to relu4_3 in four slices; returns the four activations, a list."""

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        features = torchvision.models.vgg16(weights=None).features
        state = load_vgg_state("vgg16", weights)  # NST_WEIGHTS applies, as for the course
        features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
        starts = (0, *SLICE_ENDS[:-1])
        self.slices = nn.ModuleList(
            nn.Sequential(*features[a:b]) for a, b in zip(starts, SLICE_ENDS, strict=True)
        )
        for param in self.parameters():
            param.requires_grad = False

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for part in self.slices:
            x = part(x)
            outputs.append(x)
        return outputs


def normalize(batch: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> ImageNet-normalised."""
    mean = batch.new_tensor(IMAGENET_MEAN).view(-1, 1, 1)
    std = batch.new_tensor(IMAGENET_STD).view(-1, 1, 1)
    return (batch - mean) / std


def gram(y: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C), divided by C * H * W."""
    n, c, h, w = y.size()
    features = y.view(n, c, h * w)
    return features.bmm(features.transpose(1, 2)) / (c * h * w)


def total_variation(y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels."""
    return (y[:, :, 1:, :] - y[:, :, :-1, :]).abs().mean() + (
        y[:, :, :, 1:] - y[:, :, :, :-1]
    ).abs().mean()


class CommonTrainer:
    """One optimiser and one loss: ``step(batch)`` trains ``net`` on one batch and returns
    the loss terms as floats. ``style``: (1, 3, H, W) in [0, 1]."""

    def __init__(
        self,
        net: nn.Module,
        style: torch.Tensor,
        weights: str | None = None,
        content_weight: float = 1e5,
        style_weight: float = 1e10,
        tv_weight: float = 1.0,
        lr: float = 1e-3,
    ) -> None:
        self.device = next(net.parameters()).device
        self.net = net.train()
        self.vgg = SlicedVGG16(weights).to(self.device)
        self.optimizer = torch.optim.Adam(net.parameters(), lr)
        self.content_weight, self.style_weight, self.tv_weight = (
            content_weight,
            style_weight,
            tv_weight,
        )
        style_features = self.vgg(normalize(style.to(self.device)))
        self.style_grams = [gram(f) for f in style_features]

    def step(self, x: torch.Tensor) -> dict[str, float]:
        x = x.to(self.device)
        n = len(x)
        self.optimizer.zero_grad()
        y = self.net(x)
        features_y = self.vgg(normalize(y))
        features_x = self.vgg(normalize(x))
        content_loss = self.content_weight * F.mse_loss(features_y[1], features_x[1])
        style_loss = 0.0
        for fy, gm_s in zip(features_y, self.style_grams, strict=True):
            style_loss += F.mse_loss(gram(fy), gm_s.expand(n, -1, -1))
        style_loss *= self.style_weight
        tv_loss = self.tv_weight * total_variation(y)
        total = content_loss + style_loss + tv_loss
        total.backward()
        self.optimizer.step()
        return {"content": content_loss.item(), "style": style_loss.item(), "tv": tv_loss.item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", required=True, help="style image")
    parser.add_argument("--data", required=True, help="folder of photos (sub-folders too)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--crop", type=int, default=256, help="training crop side, px")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--network", choices=("lite", "paper"), default="lite")
    parser.add_argument("--output", default=None, help="where to save the state dict")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    crop = transforms.Compose([transforms.Resize(args.crop), transforms.RandomCrop(args.crop)])

    def read(path: str | Path) -> torch.Tensor:
        """(3, H, W) float in [0, 1]."""
        return torchvision.io.decode_image(str(path), mode=torchvision.io.ImageReadMode.RGB) / 255

    photos = sorted(
        p for p in Path(args.data).rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
    )
    loader = torch.utils.data.DataLoader(
        photos,
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=lambda paths: torch.stack([crop(read(p)) for p in paths]),
        drop_last=True,
    )
    net = (TransformerNet.lite if args.network == "lite" else TransformerNet)(output="tanh")
    net = net.to(device)
    style = transforms.Resize(256)(read(args.style)).unsqueeze(0)
    trainer = CommonTrainer(net, style)
    step, start = 0, time.perf_counter()
    while step < args.steps:
        for batch in loader:
            losses = trainer.step(batch)
            step += 1
            if step % 10 == 0:
                print(f"step {step}: {losses} ({time.perf_counter() - start:.0f} s)")
            if step == args.steps:
                break
    if args.output:
        torch.save(net.state_dict(), args.output)


if __name__ == "__main__":
    main()
