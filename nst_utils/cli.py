"""Command line: ``nst COMMAND ...`` (also ``python -m nst_utils COMMAND ...``).

One sub-command per task. A command's settings are the fields of its method's config
dataclass (:mod:`nst_utils.settings`; :mod:`nst_utils.options` turns each field into an
option, with its help text), plus the files it reads and writes. This module only builds
the parser, without importing PyTorch, so ``nst --help`` answers at once; what each command
does is in :mod:`nst_utils.commands`, imported once a command runs. Every expected failure
ends with one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import typing
import warnings
from collections.abc import Sequence

from .errors import NSTError
from .files import SAVE_SUFFIXES
from .options import add_options, parse_float, parse_floats, parse_path
from .settings import (
    PRESERVE_COLOR,
    STYLE_SIZE,
    VIDEO_BATCH,
    AdaINConfig,
    DocumentConfig,
    FastStyleConfig,
    GatysConfig,
    MultiStyleConfig,
    SuperResolutionConfig,
)

STYLIZE_EPILOG = """\
examples:
  # a 512 px picture with the defaults (about 10 minutes on a 2-core CPU; a GPU: seconds)
  nst stylize --content data/content/chelsea.jpg --style data/styles/wave.jpg -o cat.jpg

  # quick preview: smaller and fewer steps
  nst stylize --content photo.jpg --style starry.jpg -o preview.jpg --size 256 --steps 100

  # two styles mixed 70/30, keep the photo's colours
  nst stylize --content photo.jpg --style a.jpg --style b.jpg --style-blend 0.7,0.3 \\
      --preserve-color luminance -o mix.png

  # large output, coarse to fine (half size first, then full size; much faster on CPU)
  nst stylize --content photo.jpg --style wave.jpg -o big.jpg --size 1024 --scales 2

  # custom layers: NAME or NAME:WEIGHT, comma separated
  nst stylize --content c.jpg --style s.jpg -o o.jpg \\
      --style-layers relu1_1:1,relu2_1:1,relu3_1:0.5 --content-layers relu4_2

environment: NST_WEIGHTS (imagenet | random | FILE.pth), NST_ARCH (vgg19 | vgg16),
NST_DEVICE (cpu | cuda | mps) give the defaults of --weights, --arch and --device.
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line that points to ``--help``."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's line breaks and gives option names room."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34)


def _add_stylize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stylize",
        help="paint a photo in the style of one or more paintings (Gatys et al. 2015)",
        description="Optimise the pixels of an image so that its VGG features match the "
        "content photo and its Gram matrices match the style painting(s) "
        "(Gatys, Ecker & Bethge, arXiv 1508.06576).",
        epilog=STYLIZE_EPILOG,
        formatter_class=_HelpFormatter,
    )
    files = p.add_argument_group("files")
    files.add_argument("--content", "-c", required=True, type=parse_path, help="content photo")
    files.add_argument(
        "--style", "-s", required=True, type=parse_path, action="append",
        help="style image; repeat to mix styles",
    )  # fmt: skip
    files.add_argument(
        "--output", "-o", required=True, type=parse_path, help="output image (.jpg or .png)"
    )
    files.add_argument(
        "--style-blend", type=parse_floats, default=None,
        help="one weight per --style, comma separated, e.g. 0.7,0.3 (default: equal)",
    )  # fmt: skip
    files.add_argument(
        "--init-image", type=parse_path, default=None, help="start from this image, not --init"
    )
    files.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_options(p, GatysConfig, "settings (nst_utils.settings.GatysConfig)")


TRAIN_EPILOG = """\
examples:
  # a lite model of Starry Night on your photos (GPU: minutes; CPU: use small crops)
  nst train --style data/styles/starry_night.jpg --data ~/photos -o starry.pth

  # as in the paper: COCO train2014, 256 px crops, batch 4, two epochs, paper-size network
  nst train --style wave.jpg --data coco/train2014 -o wave.pth --network paper --steps 40000

  # continue an interrupted run (Ctrl-C writes a checkpoint first)
  nst train --style wave.jpg --data coco/train2014 -o wave.pth --resume

  # several GPUs on one machine: the same command under torchrun
  torchrun --standalone --nproc_per_node 4 -m nst_utils train --style wave.jpg \\
      --data coco/train2014 -o wave.pth --batch-size 16

Checkpoints, sample pictures and log.csv go to --run-dir (default: the output's name
with .run). COCO: python -c "from nst_utils.datasets import download_coco; download_coco('coco')"
"""

TRANSFORM_EPILOG = """\
examples:
  nst transform --model models/starry_night_lite.pth -i photo.jpg -o photo_starry.jpg
  nst transform --model starry.pth -i holiday/ -o holiday_starry/ --size 1024
  nst transform --model starry.onnx -i photo.jpg -o out.jpg      # ONNX Runtime
  nst transform --model starry.pth -i clip.mp4 -o clip_starry.mp4  # video, sound kept

  # a multi-style model (nst train-multistyle): one style, or a blend of its styles
  nst transform --model four.pth -i photo.jpg -o out.jpg --style-index 2
  nst transform --model four.pth -i photo.jpg -o out.jpg --style-blend 0.5,0.5,0,0

  # an AdaIN model (nst train-adain): any style image, blends, strength, regions
  nst transform --model adain.pth -i photo.jpg -o out.jpg --style wave.jpg --alpha 0.8
  nst transform --model adain.pth -i photo.jpg -o out.jpg -s a.jpg -s b.jpg --style-blend 0.7,0.3
  nst transform --model adain.pth -i photo.jpg -o out.jpg -s a.jpg -s b.jpg --mask mask.png

A mask is a greyscale image of the input's size: for two styles white is the first style,
black the second, grey mixes them; for K styles, K evenly spaced grey levels from white
(the first) to black (the last). An AdaIN model rebuilds its VGG encoder from --weights
(default: NST_WEIGHTS), which must be the weights it was trained with.
Videos (.mp4 .mov .mkv .webm .avi) need the video extra: pip install "nst-course[video]".

A folder's outputs keep the sub-folders and names of its images, as PNG (--format for
another); images that cannot be processed are skipped, one warning each, and counted.
"""


TRAIN_MULTISTYLE_EPILOG = """\
examples:
  # one lite network for the four paintings of data/styles (style k: the k-th name, sorted)
  nst train-multistyle --styles data/styles --data ~/photos -o four.pth

  # styles in the order given
  nst train-multistyle -s wave.jpg -s starry.jpg --data ~/photos -o two.pth --steps 3000

Apply with: nst transform --model four.pth -i photo.jpg -o out.jpg --style-index 1
"""

TRAIN_ADAIN_EPILOG = """\
examples:
  # a decoder for any style: content photos and a folder of paintings (the paper: WikiArt)
  nst train-adain --styles ~/paintings --data coco/train2014 -o adain.pth

  # small and quick on a CPU (learns colours and rough strokes)
  nst train-adain --styles data/styles --data ~/photos -o adain_small.pth --arch vgg16 \\
      --steps 200 --batch-size 4 --crop-size 64 --lr 5e-4

The model file holds the decoder; its VGG encoder is rebuilt from --weights / NST_WEIGHTS,
which must be the weights it was trained with (they are recorded and checked).
Apply with: nst transform --model adain.pth -i photo.jpg -o out.jpg --style painting.jpg
"""

TRAIN_SR_EPILOG = """\
examples:
  # x4 with the paper's feature loss, on any folder of photos (HR crops of 128 px)
  nst train-sr --data ~/photos -o sr_x4.pth --steps 2000

  # the per-pixel baseline, and x8
  nst train-sr --data ~/photos -o sr_x4_pixel.pth --loss pixel
  nst train-sr --data coco/val2017 -o sr_x8.pth --scale 8 --crop-size 288

Apply a model with: nst enhance --model sr_x4.pth -i small.jpg -o large.png
"""

TRAIN_DOCUMENT_EPILOG = """\
examples:
  # pages are rendered and degraded on the fly (seeded): no data to download
  nst train-document -o document.pth --steps 2000

Apply a model with: nst enhance --model document.pth -i scan.png -o clean.png
"""

ENHANCE_EPILOG = """\
examples:
  nst enhance --model models/sr_x4_feature.pth -i small.jpg -o large.png
  nst enhance --model models/document_medium.pth -i scans/ -o cleaned/

A folder's outputs keep the sub-folders and names of its images, as PNG (--format for
another); images that cannot be processed are skipped, one warning each, and counted.
"""


FORMATS = sorted(suffix[1:] for suffix in SAVE_SUFFIXES)


def _training_parser(
    sub: argparse._SubParsersAction, name: str, config: type, epilog: str, data: bool, **kw
) -> argparse._ArgumentGroup:
    """A training command's parser: its files, then the fields of its config dataclass."""
    p = sub.add_parser(name, epilog=epilog, formatter_class=_HelpFormatter, **kw)
    files = p.add_argument_group("files")
    if data:
        files.add_argument(
            "--data", "-d", required=True, type=parse_path, help="folder of training photos"
        )
    files.add_argument(
        "--output", "-o", required=True, type=parse_path, help="model file to write (.pth)"
    )
    files.add_argument("--run-dir", type=parse_path, default=None,
                       help="checkpoints, samples, log.csv (default: OUTPUT.run)")  # fmt: skip
    files.add_argument("--resume", action="store_true", help="continue from --run-dir's checkpoint")
    files.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_options(p, config, f"settings (nst_utils.settings.{config.__name__})")
    return files


def _add_train(sub: argparse._SubParsersAction) -> None:
    files = _training_parser(
        sub, "train", FastStyleConfig, TRAIN_EPILOG, data=True,
        help="train a fast style transfer network (Johnson et al. 2016)",
        description="Train a feed-forward network to paint any photo in the style of one "
        "image, with perceptual losses (Johnson, Alahi & Fei-Fei, arXiv 1603.08155).",
    )  # fmt: skip
    files.add_argument("--style", "-s", required=True, type=parse_path, help="style image")


def _add_train_multistyle(sub: argparse._SubParsersAction) -> None:
    files = _training_parser(
        sub, "train-multistyle", MultiStyleConfig, TRAIN_MULTISTYLE_EPILOG, data=True,
        help="train one fast network for several styles (conditional instance norm)",
        description="Train one feed-forward network on several style images at once, each "
        "instance norm holding a scale and shift per style (Dumoulin, Shlens & Kudlur, "
        "arXiv 1610.07629); styles are chosen or blended at run time.",
    )  # fmt: skip
    styles = files.add_mutually_exclusive_group(required=True)
    styles.add_argument(
        "--styles", type=parse_path, metavar="FOLDER",
        help="folder of style images (style k: the k-th, by sorted name)",
    )  # fmt: skip
    styles.add_argument("--style", "-s", type=parse_path, action="append", metavar="IMAGE",
                        help="a style image; repeat, in index order")  # fmt: skip


def _add_train_adain(sub: argparse._SubParsersAction) -> None:
    files = _training_parser(
        sub, "train-adain", AdaINConfig, TRAIN_ADAIN_EPILOG, data=True,
        help="train an AdaIN decoder: any style image at run time (Huang & Belongie 2017)",
        description="Train the decoder of adaptive instance normalisation on content photos "
        "and a folder of style images (Huang & Belongie, arXiv 1703.06868); the model then "
        "takes any style image at run time.",
    )  # fmt: skip
    files.add_argument(
        "--styles", required=True, type=parse_path, metavar="FOLDER",
        help="folder of style images, e.g. paintings (the paper: WikiArt)",
    )  # fmt: skip


def _add_train_sr(sub: argparse._SubParsersAction) -> None:
    _training_parser(
        sub, "train-sr", SuperResolutionConfig, TRAIN_SR_EPILOG, data=True,
        help="train a super-resolution network with a perceptual loss (Johnson et al. 2016)",
        description="Train a network that enlarges photos x4 (or x2, x8), with the feature "
        "loss at relu2_2 of VGG16 (--loss feature) or a per-pixel loss (--loss pixel).",
    )  # fmt: skip


def _add_train_document(sub: argparse._SubParsersAction) -> None:
    _training_parser(
        sub, "train-document", DocumentConfig, TRAIN_DOCUMENT_EPILOG, data=False,
        help="train a document enhancement network on synthetic degraded pages",
        description="Train a network that cleans scanned or photographed text pages, with "
        "a pixel loss and a perceptual loss, on pages rendered and degraded on the fly.",
    )  # fmt: skip


def _add_transform(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transform",
        help="stylise photos or a video with a trained fast, multi-style or AdaIN network",
        description="Apply a network trained by 'nst train', 'nst train-multistyle' or 'nst "
        "train-adain' to a photo, a folder of photos or a video, in one pass per image.",
        epilog=TRANSFORM_EPILOG,
        formatter_class=_HelpFormatter,
    )
    _image_options(p)
    group = p.add_argument_group("styles (multi-style and AdaIN models)")
    group.add_argument("--style-index", type=int, default=None, metavar="N",
                       help="multi-style model: the style to use, 0 .. K-1")  # fmt: skip
    group.add_argument(
        "--style-blend", type=parse_floats, default=None, metavar="W1,W2,...",
        help="weights >= 0, scaled to sum 1: one per style of a multi-style model, or one "
        "per --style of an AdaIN model (default there: equal)",
    )  # fmt: skip
    group.add_argument("--style", "-s", type=parse_path, action="append", default=None,
                       metavar="IMAGE", help="AdaIN model: a style image; repeat to mix "
                       "styles (--style-blend) or to give regions (--mask)")  # fmt: skip
    group.add_argument("--style-size", type=int, default=None, metavar="N",
                       help="AdaIN model: longest side of each style image, px (default: "
                       f"{STYLE_SIZE}, as in the paper; smaller: larger strokes)")  # fmt: skip
    group.add_argument("--alpha", type=parse_float, default=None, metavar="X",
                       help="AdaIN model: style strength, 0 (content) .. 1 (default)")  # fmt: skip
    group.add_argument("--preserve-color", choices=PRESERVE_COLOR, default=None,
                       help="AdaIN model: keep the photo's colours (luminance: free; "
                       "histogram: recolour the styles per photo)")  # fmt: skip
    group.add_argument("--mask", type=parse_path, default=None, metavar="IMAGE",
                       help="AdaIN model: greyscale image of the input's size saying which "
                       "--style goes where (see below)")  # fmt: skip
    group.add_argument("--weights", default=None, metavar="SPEC",
                       help="AdaIN model: VGG weights of its encoder, imagenet | random | "
                       "FILE.pth: those it was trained with (default: NST_WEIGHTS)")  # fmt: skip
    video = p.add_argument_group("video input")
    video.add_argument("--batch-size", type=int, default=None, metavar="N",
                       help=f"frames per pass (default: {VIDEO_BATCH})")  # fmt: skip


def _image_options(p: argparse.ArgumentParser) -> None:
    """The options of the commands that apply a trained model to images."""
    p.add_argument(
        "--model", "-m", required=True, type=parse_path, help="model file (.pth or .onnx)"
    )
    p.add_argument("--input", "-i", required=True, type=parse_path, help="image or folder")
    p.add_argument("--output", "-o", required=True, type=parse_path, help="output file or folder")
    p.add_argument("--size", type=int, default=None,
                   help="first resize the input's longest side to this, px")  # fmt: skip
    p.add_argument("--device", default=None, help="cpu | cuda | mps (default: automatic)")
    p.add_argument("--format", choices=FORMATS, default=None, type=str.lower,
                   help="a folder's output format (default: png)")  # fmt: skip
    p.add_argument(
        "--compile",
        action="store_true",
        help="compile the network (torch.compile; on a CPU it needs a C++ compiler): "
        "each new image size compiles first (10-25 s), then runs faster; for many "
        "images of one size, as video frames",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _add_enhance(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "enhance",
        help="enlarge photos or clean document pages with a trained network, in one pass",
        description="Apply a super-resolution model ('nst train-sr') or a document "
        "enhancement model ('nst train-document') to an image or a folder of images.",
        epilog=ENHANCE_EPILOG,
        formatter_class=_HelpFormatter,
    )
    _image_options(p)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained network to ONNX (for ONNX Runtime, phones, browsers)",
        description="Write a trained model as an ONNX file with dynamic batch, height and "
        "width, and check that ONNX Runtime gives PyTorch's output (needs the onnx extra: "
        'pip install "nst-course[onnx]").',
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--model", "-m", required=True, type=parse_path, help="model file (.pth)")
    p.add_argument("--output", "-o", required=True, type=parse_path, help="ONNX file to write")
    p.add_argument("--weights", default=None, metavar="SPEC",
                   help="AdaIN model: VGG weights of its encoder, imagenet | random | FILE.pth: "
                   "those it was trained with (default: NST_WEIGHTS)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The ``nst`` argument parser, one sub-parser per command."""
    parser = _Parser(
        prog="nst", description="Neural style transfer from the command line (nst-course)."
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    _add_stylize(sub)
    _add_train(sub)
    _add_transform(sub)
    _add_train_multistyle(sub)
    _add_train_adain(sub)
    _add_train_sr(sub)
    _add_train_document(sub)
    _add_enhance(sub)
    _add_export(sub)
    return parser


def _out_of_memory(err: BaseException) -> bool:
    import torch  # loaded already: only a running command runs out of memory

    text = str(err).lower()
    return isinstance(err, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate" in text)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 done, 1 system error, 2 bad input, 130 ^C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from . import commands  # PyTorch and the command's method: only now

        with warnings.catch_warnings():  # restores the display of warnings afterwards
            warnings.showwarning = commands.warning_line
            commands.run(args)
    except NSTError as err:
        print(f"nst: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        detail = f" ({err})" if str(err) else "; no output written"
        print(f"nst: interrupted{detail}.", file=sys.stderr)
        return 130
    except OSError as err:  # full disk, permissions changed mid-run, ...
        where = f"{err.filename}: " if err.filename else ""
        print(f"nst: error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as err:
        if not _out_of_memory(err):
            raise
        print(
            "nst: error: out of memory; lower --size (or --batch-size), or use a machine "
            "with more memory.",
            file=sys.stderr,
        )
        return 1
    return 0
