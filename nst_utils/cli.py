"""Command line: ``python -m nst_utils stylize --content photo.jpg --style painting.jpg ...``
(also installed as the ``nst`` command). Builds a :class:`StyleTransferConfig` and runs
:func:`nst_utils.gatys.stylize`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import NSTError
from .gatys import INITS, OPTIMIZERS, PRESERVE_COLOR, StyleTransferConfig, stylize
from .images import save_image

EPILOG = """\
examples:
  # a 512 px picture with the defaults (roughly 25 minutes on a 2-core CPU, use a GPU)
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


def _layers(text: str) -> dict[str, float]:
    """'relu1_1,relu2_1:0.5' -> {'relu1_1': 1.0, 'relu2_1': 0.5}."""
    layers: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            layers[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad layer weight in {item!r}: use NAME:NUMBER"
            ) from None
    if not layers:
        raise argparse.ArgumentTypeError("give at least one layer name")
    return layers


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of numbers"
        ) from None


def _format_layers(layers: dict[str, float]) -> str:
    return ",".join(f"{name}:{weight:g}" for name, weight in layers.items())


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's line breaks; appends "(default: X)" where a default exists."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" not in text and action.default not in (None, False, argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    """The ``nst`` argument parser (one sub-command, ``stylize``)."""
    d = StyleTransferConfig()
    parser = argparse.ArgumentParser(
        prog="nst", description="Neural style transfer from the command line (nst-course)."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "stylize",
        help="paint a photo in the style of one or more paintings (Gatys et al. 2015)",
        description="Optimise the pixels of an image so that its VGG features match the "
        "content photo and its Gram matrices match the style painting(s) "
        "(Gatys, Ecker & Bethge, arXiv 1508.06576).",
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--content", "-c", required=True, help="content photo (image file)")
    p.add_argument(
        "--style", "-s", required=True, action="append", help="style image; repeat to mix styles"
    )
    p.add_argument("--output", "-o", required=True, help="output image file (.jpg or .png)")
    p.add_argument(
        "--style-blend",
        type=_floats,
        default=None,
        help="one weight per --style, comma separated, e.g. 0.7,0.3 (default: equal)",
    )
    p.add_argument("--size", type=int, default=d.size, help="longest side of the output, px")
    p.add_argument(
        "--steps", type=int, default=d.steps, help="optimisation steps (forward+backward passes)"
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="optimiser")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default: optimiser's)")
    p.add_argument(
        "--content-weight", type=float, default=d.content_weight, help="weight of the content loss"
    )
    p.add_argument(
        "--style-weight",
        type=float,
        default=d.style_weight,
        help="weight of the style loss (higher = more painterly)",
    )
    p.add_argument("--tv-weight", type=float, default=d.tv_weight, help="total variation weight")
    p.add_argument(
        "--content-layers",
        type=_layers,
        default=d.content_layers,
        metavar="LAYERS",
        help=f"NAME[:WEIGHT],... (default: {_format_layers(d.content_layers)})",
    )
    p.add_argument(
        "--style-layers",
        type=_layers,
        default=d.style_layers,
        metavar="LAYERS",
        help=f"NAME[:WEIGHT],... (default: {_format_layers(d.style_layers)})",
    )
    p.add_argument(
        "--gram-normalize",
        choices=("hw", "chw", "none"),
        default=d.gram_normalize,
        help="Gram matrix normalisation (see nst_utils.losses.gram_matrix)",
    )
    p.add_argument(
        "--raw-losses",
        action="store_true",
        help="do not divide each layer's loss by its target's mean square (the paper's "
        "losses; the default weights then no longer fit)",
    )
    p.add_argument("--init", choices=INITS, default=d.init, help="starting image")
    p.add_argument("--init-image", default=None, help="start from this image instead of --init")
    p.add_argument(
        "--preserve-color",
        choices=PRESERVE_COLOR,
        default=None,
        help="keep the content's colours: luminance-only transfer or colour histogram matching",
    )
    p.add_argument(
        "--scales", type=int, default=d.scales, help="coarse-to-fine levels (2 = half size first)"
    )
    p.add_argument(
        "--style-scale",
        type=float,
        default=d.style_scale,
        help="style image size relative to --size; smaller = finer strokes",
    )
    p.add_argument("--arch", choices=("vgg19", "vgg16"), default=None, help="default: NST_ARCH")
    p.add_argument(
        "--weights", default=None, help="imagenet | random | FILE.pth (default: NST_WEIGHTS)"
    )
    p.add_argument(
        "--pooling", choices=("max", "avg"), default=d.pooling, help="VGG pooling (paper: avg)"
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (noise init)")
    p.add_argument("--device", default=None, help="cpu | cuda | mps (default: automatic)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> StyleTransferConfig:
    """The :class:`StyleTransferConfig` that parsed command-line arguments describe."""
    return StyleTransferConfig(
        arch=args.arch,
        weights=args.weights,
        pooling=args.pooling,
        content_layers=args.content_layers,
        style_layers=args.style_layers,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        gram_normalize=args.gram_normalize,
        relative_losses=not args.raw_losses,
        optimizer=args.optimizer,
        lr=args.lr,
        steps=args.steps,
        size=args.size,
        style_scale=args.style_scale,
        init=args.init,
        preserve_color=args.preserve_color,
        scales=args.scales,
        seed=args.seed,
        device=args.device,
    )


def _check_paths(args: argparse.Namespace) -> None:
    output = Path(args.output).expanduser().resolve()
    inputs = [args.content, *args.style] + ([args.init_image] if args.init_image else [])
    for source in inputs:
        if Path(source).expanduser().resolve() == output:
            raise NSTError(
                f"--output {args.output} is also an input ({source}); choose another output name."
            )
    if output.suffix.lower() not in {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}:
        raise NSTError(f"--output {args.output}: unknown image suffix; use .jpg or .png.")


def stylize_command(args: argparse.Namespace) -> Path:
    """Run ``nst stylize``: check, stylise, save; returns the output path."""
    _check_paths(args)
    config = config_from_args(args)
    config.check()
    result = stylize(
        args.content,
        args.style,
        config,
        style_blend=args.style_blend,
        init_image=args.init_image,
        progress=not args.quiet,
    )
    path = save_image(result.image, args.output)
    h = result.history
    print(
        f"wrote {path} ({result.image.shape[-1]}x{result.image.shape[-2]} px, "
        f"{result.seconds:.0f} s; final loss {h['total'][-1]:.4g}: content "
        f"{h['content'][-1]:.4g}, style {h['style'][-1]:.4g}, tv {h['tv'][-1]:.4g})"
    )
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nst`` and ``python -m nst_utils``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "stylize":
            stylize_command(args)
    except NSTError as err:
        print(f"nst: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nst: interrupted; no output written.", file=sys.stderr)
        return 130
    return 0
