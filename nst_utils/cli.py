"""Command line: ``nst COMMAND ...`` (also ``python -m nst_utils COMMAND ...``).

One sub-command per task. A command's settings are the fields of its method's config
dataclass (:mod:`nst_utils.options` turns each field into an option, with its help text),
plus the files it reads and writes. Every expected failure ends with one line on stderr
and a non-zero exit code, never a traceback; outputs are checked before any work starts
and written atomically, never over an input.
"""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Sequence

import torch

from .errors import NSTError
from .files import check_output
from .gatys import StyleTransferConfig, stylize
from .images import SAVE_SUFFIXES, save_image
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


def build_parser() -> argparse.ArgumentParser:
    """The ``nst`` argument parser, one sub-parser per command."""
    parser = _Parser(
        prog="nst", description="Neural style transfer from the command line (nst-course)."
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    _add_stylize(sub)
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
    except KeyboardInterrupt:
        print("nst: interrupted; no output written.", file=sys.stderr)
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
