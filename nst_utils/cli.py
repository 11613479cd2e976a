"""Command line: ``nst COMMAND ...`` (also ``python -m nst_utils COMMAND ...``).

One sub-command per task. A command's settings are the fields of its method's config
dataclass (:mod:`nst_utils.options` turns each field into an option, with its help text),
plus the files it reads and writes. Every expected failure ends with one line on stderr
and a non-zero exit code, never a traceback; outputs are checked before any work starts
and written atomically, never over an input.
"""

from __future__ import annotations

import argparse
import logging
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import documents, fast_style, superres
from .device import pick_device
from .errors import BadInputError, NSTError
from .files import check_output
from .gatys import StyleTransferConfig, stylize
from .images import SAVE_SUFFIXES, SUFFIXES, as_tensor, save_image
from .options import add_options, config_from_args, parse_floats, parse_path

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
    add_options(p, StyleTransferConfig, "settings (nst_utils.gatys.StyleTransferConfig)")
    p.set_defaults(run=_run_stylize)


def _run_stylize(args: argparse.Namespace) -> None:
    inputs = [args.content, *args.style, *([args.init_image] if args.init_image else [])]
    output = check_output(args.output, inputs=inputs, suffixes=SAVE_SUFFIXES)
    config = config_from_args(StyleTransferConfig, args)
    config.check()
    result = stylize(
        args.content,
        args.style,
        config,
        style_blend=args.style_blend,
        init_image=args.init_image,
        progress=not args.quiet,
    )
    save_image(result.image, output)
    h = result.history
    print(
        f"wrote {output} ({result.image.shape[-1]}x{result.image.shape[-2]} px, "
        f"{result.seconds:.0f} s; final loss {h['total'][-1]:.4g}: content "
        f"{h['content'][-1]:.4g}, style {h['style'][-1]:.4g}, tv {h['tv'][-1]:.4g})"
    )


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
  nst enhance --model models/document_lite.pth -i scans/ -o cleaned/
"""


def _plan_images(source: Path, target: Path) -> list[tuple[Path, Path]]:
    """(input, output) pairs for one image file, or for every image in a folder (into a
    folder, keeping sub-folders); every output is checked before any work starts."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
        if not files:
            raise BadInputError(f"--input {source}: no image files in this folder.")
        if target.exists() and not target.is_dir():
            raise BadInputError(f"--output {target}: the input is a folder, so give a folder.")
        if target.resolve() == source.resolve() or source.resolve() in target.resolve().parents:
            raise BadInputError(f"--output {target}: choose a folder outside the input folder.")
        pairs = [(f, target / f.relative_to(source)) for f in files]
    elif source.exists():
        pairs = [(source, target)]
    else:
        raise BadInputError(f"--input {source}: no such file or folder.")
    for src, dst in pairs:
        check_output(dst, inputs=[src], suffixes=SAVE_SUFFIXES)
    return pairs


def _apply_to_images(
    apply: Callable[[torch.Tensor], torch.Tensor],
    pairs: list[tuple[Path, Path]],
    size: int | None,
    quiet: bool,
) -> None:
    """Read, apply, write each pair with a progress bar; unreadable images in a folder are
    skipped and listed (a single unreadable input is an error)."""
    skipped = []
    for src, dst in tqdm(pairs, desc="images", disable=quiet or len(pairs) == 1):
        try:
            image = as_tensor(src, size)
        except BadInputError as err:
            if len(pairs) == 1:
                raise
            skipped.append(str(err))
            continue
        save_image(apply(image), dst)
    where = pairs[0][1] if len(pairs) == 1 else pairs[0][1].parent
    done = len(pairs) - len(skipped)
    print(f"wrote {done} image(s) to {where}" + (f"; skipped {len(skipped)}:" if skipped else ""))
    for line in skipped:
        print(f"  {line}")


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
    add_options(p, config, f"settings ({config.__module__}.{config.__name__})")
    return files


def _train(args: argparse.Namespace, config: type, train: Callable, *inputs) -> None:
    """Run one training function with the command's settings and report the model file."""
    settings = config_from_args(config, args)
    try:
        _, result = train(settings, *inputs, args.output, run_dir=args.run_dir,
                          resume=args.resume, progress=not args.quiet)  # fmt: skip
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if result.history:
        last = result.history[-1]
        print(f"wrote {args.output} ({result.steps} steps, {result.seconds:.0f} s; last loss "
              + ", ".join(f"{k} {v:.4g}" for k, v in last.items()) + ")")  # fmt: skip


def _add_train(sub: argparse._SubParsersAction) -> None:
    files = _training_parser(
        sub, "train", fast_style.FastStyleConfig, TRAIN_EPILOG, data=True,
        help="train a fast style transfer network (Johnson et al. 2016)",
        description="Train a feed-forward network to paint any photo in the style of one "
        "image, with perceptual losses (Johnson, Alahi & Fei-Fei, arXiv 1603.08155).",
    )  # fmt: skip
    files.add_argument("--style", "-s", required=True, type=parse_path, help="style image")
    files.set_defaults(
        run=lambda a: _train(a, fast_style.FastStyleConfig, fast_style.train, a.style, a.data)
    )


def _add_train_sr(sub: argparse._SubParsersAction) -> None:
    files = _training_parser(
        sub, "train-sr", superres.SuperResolutionConfig, TRAIN_SR_EPILOG, data=True,
        help="train a super-resolution network with a perceptual loss (Johnson et al. 2016)",
        description="Train a network that enlarges photos x4 (or x2, x8), with the feature "
        "loss at relu2_2 of VGG16 (--loss feature) or a per-pixel loss (--loss pixel).",
    )  # fmt: skip
    files.set_defaults(
        run=lambda a: _train(a, superres.SuperResolutionConfig, superres.train, a.data)
    )


def _add_train_document(sub: argparse._SubParsersAction) -> None:
    files = _training_parser(
        sub, "train-document", documents.DocumentConfig, TRAIN_DOCUMENT_EPILOG, data=False,
        help="train a document enhancement network on synthetic degraded pages",
        description="Train a network that cleans scanned or photographed text pages, with "
        "a pixel loss and a perceptual loss, on pages rendered and degraded on the fly.",
    )  # fmt: skip
    files.set_defaults(run=lambda a: _train(a, documents.DocumentConfig, documents.train))


def _load_any_model(
    path: Path, kind: str | tuple[str, ...], device: torch.device, compile: bool = False
) -> Callable:
    """A function (1, 3, H, W) -> (1, 3, H', W') from a course model file or an ONNX export."""
    if path.suffix.lower() == ".onnx":
        if compile:
            raise BadInputError(f"--compile: {path.name} is an ONNX model, which ONNX Runtime "
                                "runs; --compile applies to .pth models.")  # fmt: skip
        from .export import OnnxNetwork

        return OnnxNetwork(path)
    from .checkpoints import load_model
    from .networks import infer, prepare_for_inference

    net, _ = load_model(path, kind, device)
    if compile:  # PyTorch's CUDA builds log "No CUDA runtime is found" when compiling on a CPU
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    fast = prepare_for_inference(net, compile=compile)
    return lambda image: infer(fast, image.to(device)).cpu()


def _add_transform(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transform",
        help="stylise photos with a trained fast style network, in one pass each",
        description="Apply a network trained by 'nst train' to a photo or a folder of photos.",
        epilog=TRANSFORM_EPILOG,
        formatter_class=_HelpFormatter,
    )
    _image_options(p, lambda args: _run_model(args, fast_style.KIND))


def _image_options(p: argparse.ArgumentParser, run: Callable) -> None:
    """The options of the commands that apply a trained model to images."""
    p.add_argument(
        "--model", "-m", required=True, type=parse_path, help="model file (.pth or .onnx)"
    )
    p.add_argument("--input", "-i", required=True, type=parse_path, help="image or folder")
    p.add_argument("--output", "-o", required=True, type=parse_path, help="output file or folder")
    p.add_argument("--size", type=int, default=None,
                   help="first resize the input's longest side to this, px")  # fmt: skip
    p.add_argument("--device", default=None, help="cpu | cuda | mps (default: automatic)")
    p.add_argument(
        "--compile",
        action="store_true",
        help="compile the network (torch.compile; on a CPU it needs a C++ compiler): "
        "each new image size compiles first (10-25 s), then runs faster; for many "
        "images of one size, as video frames",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _run_model(args: argparse.Namespace, kind: str | tuple[str, ...]) -> None:
    if args.size is not None and not 16 <= args.size <= 8192:
        raise BadInputError(f"--size {args.size}: use 16 .. 8192 pixels.")
    pairs = _plan_images(args.input, args.output)
    apply = _load_any_model(args.model, kind, pick_device(args.device), args.compile)
    _apply_to_images(apply, pairs, args.size, args.quiet)


def _add_enhance(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "enhance",
        help="enlarge photos or clean document pages with a trained network, in one pass",
        description="Apply a super-resolution model ('nst train-sr') or a document "
        "enhancement model ('nst train-document') to an image or a folder of images.",
        epilog=ENHANCE_EPILOG,
        formatter_class=_HelpFormatter,
    )
    _image_options(p, _run_enhance)


def _run_enhance(args: argparse.Namespace) -> None:
    _run_model(args, (superres.KIND, documents.KIND))


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
    p.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> None:
    from .checkpoints import load_model
    from .export import export_onnx

    output = check_output(args.output, inputs=[args.model], suffixes={".onnx"})
    net, record = load_model(args.model)
    export_onnx(net, output)
    print(f"wrote {output} ({record['kind']} model, checked against PyTorch)")


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
    _add_train_sr(sub)
    _add_train_document(sub)
    _add_enhance(sub)
    _add_export(sub)
    return parser


def _out_of_memory(err: BaseException) -> bool:
    text = str(err).lower()
    return isinstance(err, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate" in text)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 done, 1 system error, 2 bad input, 130 ^C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
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
