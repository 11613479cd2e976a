"""Command line: ``nst COMMAND ...`` (also ``python -m nst_utils COMMAND ...``).

One sub-command per task. A command's settings are the fields of its method's config
dataclass (:mod:`nst_utils.options` turns each field into an option, with its help text),
plus the files it reads and writes. Every expected failure ends with one line on stderr
and a non-zero exit code, never a traceback; outputs are checked before any work starts
and written atomically, never over an input.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import typing
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import adain, documents, fast_style, multistyle, superres
from .checkpoints import kind_phrase
from .color import match_histogram, preserve_luminance
from .device import pick_device
from .errors import BadInputError, CheckpointError, NSTError
from .files import check_output, find_files, remove_stale_partials
from .gatys import StyleTransferConfig, stylize
from .images import MAX_PIXELS, SAVE_SUFFIXES, SUFFIXES, as_tensor, save_image
from .networks import MIN_SIDE, prepare_for_inference
from .options import add_options, config_from_args, parse_float, parse_floats, parse_path

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
WARNING = "nst: warning: "


def _warn(text: str) -> None:
    """One warning line on stderr (below a progress bar, if one is shown)."""
    tqdm.write(WARNING + " ".join(text.split()), file=sys.stderr)


def _plan_images(
    source: Path, target: Path, model: Path, fmt: str | None, others: Sequence[Path] = ()
) -> tuple[list[tuple[Path, Path]], bool]:
    """``(pairs, folder)``: (input, output) pairs for one image file, or for every image
    in a folder (into a folder, keeping sub-folders, in format ``fmt``: PNG by default);
    every output is checked before any work starts, and none may be an input (the
    images, the model, the ``others``: style images, a mask). Unreadable sub-folders are
    reported, one warning each."""
    if not source.is_dir():
        if not source.exists():
            raise BadInputError(f"--input {source}: no such file or folder.")
        if fmt is not None and target.suffix.lower().lstrip(".") != fmt:
            raise BadInputError(f"--format {fmt} but --output {target}: for one image the "
                                "output's name says the format; name it accordingly.")  # fmt: skip
        check_output(target, inputs=[source, model, *others], suffixes=SAVE_SUFFIXES)
        return [(source, target)], False
    files, unreadable = find_files(source, SUFFIXES)
    for folder, reason in unreadable:
        _warn(f"{folder}: cannot read this folder ({reason}); its images are skipped.")
    if not files:
        raise BadInputError(f"--input {source}: no image files in this folder"
                            + (" that can be read." if unreadable else "."))  # fmt: skip
    if target.exists() and not target.is_dir():
        raise BadInputError(f"--output {target}: the input is a folder, so give a folder.")
    if target.resolve() == source.resolve() or source.resolve() in target.resolve().parents:
        raise BadInputError(f"--output {target}: choose a folder outside the input folder.")
    suffix = f".{fmt or 'png'}"
    natural = {f: (target / f.relative_to(source)).with_suffix(suffix) for f in files}
    taken = Counter(natural.values())
    # photo.jpg and photo.png would both become photo.png: the other one keeps its suffix
    pairs = [(f, d if taken[d] == 1 or f.suffix.lower() == suffix else d.with_name(f.name + suffix))
             for f, d in natural.items()]  # fmt: skip
    clash = [d for d, n in Counter(d for _, d in pairs).items() if n > 1]
    if clash:
        raise BadInputError(f"--input {source}: several images would be written as {clash[0]}; "
                            "rename one of them.")  # fmt: skip
    read = {_identity(f) for f in [*files, model, *others]}  # an output may be no input
    for src, dst in pairs:
        check_output(dst, inputs=[src, model, *others], suffixes=SAVE_SUFFIXES)
        if dst.exists() and _identity(dst) in read:
            raise BadInputError(f"--output {target}: {dst} would replace an input image; "
                                "choose an output folder outside the input.")  # fmt: skip
    return pairs, True


def _identity(path: Path) -> tuple[int, int]:
    """(device, inode): equal for two names of one file (hard or symbolic links)."""
    status = path.stat()
    return status.st_dev, status.st_ino


# Memory to apply a course network, per output pixel: float32 values of about four tensors
# as wide as the widest full-resolution stage alive at once, plus a few of 3 channels.
# Measured peaks (2-core CPU, prepare_for_inference + infer, 1024 x 1024 px output): lite
# 186 B, medium 324 B, paper size 546 B, super-resolution (64 channels) 925 B per pixel.
def _needed_bytes(output_pixels: int, channels: int) -> int:
    return 4 * (4 * channels + 16) * output_pixels


def _free_memory(device: torch.device) -> int | None:
    """Bytes of memory free for a run on ``device`` (None where unknown): a GPU's free
    memory; on a CPU, Linux's MemAvailable, within a container's limit."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit.isdigit() and free is not None:
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return free


def _check_fits(
    image: torch.Tensor, src: Path, footprint: tuple[int | None, int | None], device
) -> None:
    """Refuse, before the network runs, an image too small for it or whose output would
    be larger than an image may be or than the free memory; say what would fit."""
    height, width = image.shape[-2:]
    if min(height, width) < MIN_SIDE:
        raise BadInputError(f"{src}: {width}x{height} px is smaller than the {MIN_SIDE}x"
                            f"{MIN_SIDE} px the network takes; enlarge it (--size).")  # fmt: skip
    scale, channels = footprint
    if scale is None:
        return  # an ONNX file that does not say: ONNX Runtime's own errors decide
    pixels = scale * scale * height * width
    need = _needed_bytes(pixels, channels) if channels else 0
    free = _free_memory(device) if need else None
    room = min(MAX_PIXELS / pixels, free / need if free else math.inf)
    if room >= 1:
        return
    times = f"x{scale} " if scale > 1 else ""
    what = f"the {times}output would be {scale * width}x{scale * height} px"
    if pixels > MAX_PIXELS:
        why = f"more than the {MAX_PIXELS / 1e6:.0f} MP an image may have"
    else:
        why = f"which needs about {need / 1e9:.1f} GB of memory; {free / 1e9:.1f} GB are free"
    fit = math.floor(max(height, width) * math.sqrt(room) * 0.95)
    way = f"--size {fit} makes it fit" if fit >= 16 else "give a much smaller image"
    raise BadInputError(f"{src}: {what}, {why}; {way} (or cut the image into parts).")


def _apply_to_images(
    apply: Callable[[torch.Tensor], torch.Tensor],
    pairs: list[tuple[Path, Path]],
    folder: bool,
    args: argparse.Namespace,
    footprint: tuple[int | None, int | None],
    device: torch.device,
    load: Callable[[Path], torch.Tensor] | None = None,
) -> None:
    """Read (``load``, default: at ``--size``), apply, write each pair with a progress bar.
    In a folder, an image that cannot be processed is skipped with one warning (a single
    image is an error); Ctrl-C says how many outputs were written."""
    for parent in {dst.parent for _, dst in pairs}:
        remove_stale_partials(parent)
    skipped = done = 0
    try:
        for src, dst in tqdm(pairs, desc="images", disable=args.quiet or not folder):
            try:
                image = load(src) if load else as_tensor(src, args.size)
                _check_fits(image, src, footprint, device)
            except BadInputError as err:
                if not folder:
                    raise
                _warn(f"skipped {err}")
                skipped += 1
                continue
            save_image(apply(image), dst)
            done += 1
    except KeyboardInterrupt:
        if not done:
            raise
        rest = len(pairs) - done - skipped
        raise KeyboardInterrupt(f"wrote {done} of {len(pairs)} outputs to {args.output}; the "
                                f"rest ({rest}) were not written") from None  # fmt: skip
    note = f"; skipped {skipped} that could not be processed (see above)" if skipped else ""
    print(f"wrote {done} image(s) to {args.output}{note}")


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


def _add_train_multistyle(sub: argparse._SubParsersAction) -> None:
    files = _training_parser(
        sub, "train-multistyle", multistyle.MultiStyleConfig, TRAIN_MULTISTYLE_EPILOG, data=True,
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
    files.set_defaults(run=lambda a: _train(a, multistyle.MultiStyleConfig, multistyle.train,
                                            a.styles or a.style, a.data))  # fmt: skip


def _add_train_adain(sub: argparse._SubParsersAction) -> None:
    files = _training_parser(
        sub, "train-adain", adain.AdaINConfig, TRAIN_ADAIN_EPILOG, data=True,
        help="train an AdaIN decoder: any style image at run time (Huang & Belongie 2017)",
        description="Train the decoder of adaptive instance normalisation on content photos "
        "and a folder of style images (Huang & Belongie, arXiv 1703.06868); the model then "
        "takes any style image at run time.",
    )  # fmt: skip
    files.add_argument(
        "--styles", required=True, type=parse_path, metavar="FOLDER",
        help="folder of style images, e.g. paintings (the paper: WikiArt)",
    )  # fmt: skip
    files.set_defaults(run=lambda a: _train(a, adain.AdaINConfig, adain.train, a.styles, a.data))


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


def _footprint(spec: object, scale: int | None = None) -> tuple[int | None, int | None]:
    """(scale, channels of the widest full-resolution stage) of a network ``spec``; what
    a spec does not say is None."""
    kwargs = spec.get("kwargs", {}) if isinstance(spec, dict) else {}
    if isinstance(spec, dict) and spec.get("name") == "super_resolution":
        return kwargs.get("scale", scale), kwargs.get("channels")
    if isinstance(spec, dict) and spec.get("name") == "adain_decoder":
        return 1, 64  # encoder and decoder: 64 channels at full resolution
    if isinstance(spec, dict) and spec.get("name") in ("transformer", "multistyle_transformer"):
        channels = kwargs.get("channels")
        return 1, channels[0] if isinstance(channels, (list, tuple)) and channels else None
    return scale, None


def _load_any_model(
    path: Path,
    kind: str | tuple[str, ...],
    device: torch.device,
    compile: bool = False,
    runner: Callable | None = None,
) -> tuple[Callable, tuple[int | None, int | None], torch.device]:
    """``(apply, footprint, device)``: a function (N, 3, H, W) -> (N, 3, H', W') from a
    course model file or an ONNX export (``runner``, if already open), its
    :func:`_footprint` and where it runs."""
    if path.suffix.lower() == ".onnx":
        _refuse_compile_onnx(path, compile)
        from .export import OnnxNetwork

        runner = runner or OnnxNetwork(path, kind)
        try:
            spec = json.loads(runner.metadata.get("network", "null"))
        except ValueError:
            spec = None
        return runner, _footprint(spec, runner.scale), torch.device("cpu")
    from .checkpoints import load_model

    net, record = load_model(path, kind, device)
    return _applier(net, path, device, compile), _footprint(record["network"]), device


def _refuse_compile_onnx(path: Path, compile: bool) -> None:
    if compile:
        raise BadInputError(f"--compile: {path.name} is an ONNX model, which ONNX Runtime "
                            "runs; --compile applies to .pth models.")  # fmt: skip


def _applier(
    net: torch.nn.Module, path: Path, device: torch.device, compile: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """(N, 3, H, W) -> the network's output, clamped, on the CPU (see :func:`infer`); a
    damaged network's failure names ``path``."""
    from .networks import infer, prepare_for_inference

    if compile:  # PyTorch's CUDA builds log "No CUDA runtime is found" when compiling on a CPU
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    fast = prepare_for_inference(net, compile=compile)

    def apply(image: torch.Tensor) -> torch.Tensor:
        try:
            return infer(fast, image.to(device)).cpu()
        except NSTError as err:
            if isinstance(err, BadInputError):
                raise
            raise CheckpointError(f"{path}: {err}") from None

    return apply


def _add_transform(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transform",
        help="stylise photos or a video with a trained fast, multi-style or AdaIN network",
        description="Apply a network trained by 'nst train', 'nst train-multistyle' or 'nst "
        "train-adain' to a photo, a folder of photos or a video, in one pass per image.",
        epilog=TRANSFORM_EPILOG,
        formatter_class=_HelpFormatter,
    )
    _image_options(p, _run_transform)
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
    group.add_argument("--preserve-color", choices=adain.PRESERVE_COLOR, default=None,
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


STYLE_SIZE = 512  # px: the AdaIN paper's style images
VIDEO_BATCH = 4
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
TRANSFORM_KINDS = (fast_style.KIND, multistyle.KIND, adain.KIND)
# option -> the kinds of model that take it
STYLE_OPTIONS = {
    "style_index": (multistyle.KIND,),
    "style_blend": (multistyle.KIND, adain.KIND),
    "style": (adain.KIND,),
    "style_size": (adain.KIND,),
    "alpha": (adain.KIND,),
    "preserve_color": (adain.KIND,),
    "mask": (adain.KIND,),
    "weights": (adain.KIND,),
}


def _run_transform(args: argparse.Namespace) -> None:
    """``nst transform``: any fast model (its kind read from the file) on images or a video."""
    _check_size(args.size)
    others = [*(args.style or []), *([args.mask] if args.mask else [])]
    is_video = args.input.suffix.lower() in VIDEO_SUFFIXES
    if is_video:
        output = _plan_video(args, others)
    else:
        if args.batch_size is not None:
            raise BadInputError(f"--batch-size: {args.input} is no video (.mp4 .mov .mkv .webm "
                                ".avi); images go through one at a time.")  # fmt: skip
        pairs, folder = _plan_images(args.input, args.output, args.model, args.format, others)
    runner = None
    if args.model.suffix.lower() == ".onnx":
        _refuse_compile_onnx(args.model, args.compile)
        from .export import OnnxNetwork

        runner = OnnxNetwork(args.model, TRANSFORM_KINDS)
        kind = runner.kind or fast_style.KIND
    else:
        from .checkpoints import read_file

        kind = read_file(args.model, TRANSFORM_KINDS)["kind"]
    for name, kinds in STYLE_OPTIONS.items():
        if getattr(args, name) is not None and kind not in kinds:
            flag = "--" + name.replace("_", "-")
            raise BadInputError(f"{flag}: {args.model} is {kind_phrase(kind)}, which does not "
                                f"take it ({flag} is for {kind_phrase(kinds)}).")  # fmt: skip
    device = pick_device(args.device)
    load = None
    if kind == multistyle.KIND:
        apply, footprint, device = _multistyle_model(args, runner, device)
    elif kind == adain.KIND:
        apply, footprint, device, load = _adain_model(args, runner, device, is_video)
    else:
        apply, footprint, device = _load_any_model(args.model, kind, device, args.compile, runner)
    if is_video:
        _transform_video(args, output, apply, footprint, device)
    else:
        _apply_to_images(apply, pairs, folder, args, footprint, device, load)


def _blend(weights: list[float], count: int, what: str) -> list[float]:
    """``--style-blend`` weights checked (one per ``what``, >= 0, not all 0) and scaled to
    sum 1."""
    shown = ",".join(f"{w:g}" for w in weights) or "(none)"
    if len(weights) != count:
        raise BadInputError(f"--style-blend {shown}: {len(weights)} weight(s) for {count} "
                            f"{what}s; give one weight per {what}.")  # fmt: skip
    if any(w < 0 for w in weights):
        raise BadInputError(f"--style-blend {shown}: weights must be >= 0 (they are scaled "
                            "to sum 1).")  # fmt: skip
    total = sum(weights)
    if not total > 0:
        raise BadInputError(f"--style-blend {shown}: the weights are all 0; give at least "
                            "one a positive weight.")  # fmt: skip
    return [w / total for w in weights]


def _multistyle_model(
    args: argparse.Namespace, runner: Callable | None, device: torch.device
) -> tuple[Callable, tuple[int | None, int | None], torch.device]:
    """``(apply, footprint, device)`` for a multi-style model with the style that
    ``--style-index`` or ``--style-blend`` chooses."""
    if runner is not None:
        count, names, spec = runner.styles, runner.style_names, None
    else:
        net, record = multistyle.load(args.model, device)
        count, names, spec = net.styles, record["extra"].get("styles"), record["network"]
    listing = (f" ({', '.join(f'{k}: {n}' for k, n in enumerate(names))})"
               if isinstance(names, list) else "")  # fmt: skip
    if args.style_index is not None and args.style_blend is not None:
        raise BadInputError("--style-index and --style-blend: give one of them (an index is "
                            "one style, a blend mixes them).")  # fmt: skip
    if args.style_index is None and args.style_blend is None:
        raise BadInputError(f"{args.model} holds {count} styles{listing}: choose one with "
                            "--style-index N or mix them with --style-blend W1,W2,...")  # fmt: skip
    if args.style_index is not None:
        if not 0 <= args.style_index < count:
            raise BadInputError(f"--style-index {args.style_index}: {args.model} holds {count} "
                                f"styles, 0 .. {count - 1}{listing}.")  # fmt: skip
        choice = multistyle.style_weights(args.style_index, count)
    else:
        choice = torch.tensor([_blend(args.style_blend, count, f"style of {args.model}")])
    if runner is not None:
        return (lambda images: runner(images, choice)), (1, None), torch.device("cpu")
    fixed = multistyle.FixedStyle(net, choice)
    return _applier(fixed, args.model, device, args.compile), _footprint(spec), device


def _read_mask(path: Path) -> torch.Tensor:
    """A greyscale mask image -> (1, 1, H, W) in [0, 1]; a colour image is refused."""
    image = as_tensor(path, name=f"--mask {path}")
    if (image.amax(1) - image.amin(1)).max() > 2 / 255:
        raise BadInputError(f"--mask {path} is a colour image; give a greyscale one (white: "
                            "the first --style, black: the last).")  # fmt: skip
    return image[:, :1]


def _mask_weights(grey: torch.Tensor, size: Sequence[int], styles: int) -> torch.Tensor:
    """(1, K, H, W) weights per style at ``size`` from a (1, 1, h, w) grey mask: for two
    styles the grey level is the first style's weight; for more, K evenly spaced levels
    from white (the first style) to black (the last), each pixel taking the nearest."""
    grey = torch.nn.functional.interpolate(grey, size=tuple(size), mode="area") if tuple(
        grey.shape[-2:]) != tuple(size) else grey  # fmt: skip
    if styles == 2:
        return torch.cat([grey, 1 - grey], 1)
    labels = ((1 - grey[:, 0]) * (styles - 1)).round().long()
    return torch.nn.functional.one_hot(labels, styles).movedim(-1, 1).float()


def _adain_model(
    args: argparse.Namespace, runner: Callable | None, device: torch.device, video: bool
) -> tuple[Callable, tuple[int | None, int | None], torch.device, Callable | None]:
    """``(apply, footprint, device, load)`` for an AdaIN model and the style options; the
    styles' statistics are computed here, once for every image or frame. ``load`` reads
    an image and checks it against ``--mask`` (None without a mask)."""
    if not args.style:
        raise BadInputError(f"--style: {args.model} is {kind_phrase(adain.KIND)}; give a "
                            "style image with --style IMAGE (repeat it to mix).")  # fmt: skip
    style_size = STYLE_SIZE if args.style_size is None else args.style_size
    if not 16 <= style_size <= 4096:
        raise BadInputError(f"--style-size {style_size}: use 16 .. 4096 pixels.")
    alpha = 1.0 if args.alpha is None else args.alpha
    if not 0 <= alpha <= 1:
        raise BadInputError(f"--alpha {alpha:g}: give a number in 0 .. 1 (1: full style).")
    count = len(args.style)
    if args.mask is not None and args.style_blend is not None:
        raise BadInputError("--mask and --style-blend: give one of them (a mask says which "
                            "style goes where, a blend mixes them everywhere).")  # fmt: skip
    if args.mask is not None and count < 2:
        raise BadInputError(f"--mask {args.mask}: a mask chooses between styles; give two or "
                            "more --style images.")  # fmt: skip
    blend = _blend(args.style_blend, count, "--style image") if args.style_blend else None
    styles = [as_tensor(s, style_size, name=f"--style {s}") for s in args.style]
    for path, image in zip(args.style, styles, strict=True):
        if min(image.shape[-2:]) < adain.MIN_SIDE:
            raise BadInputError(f"--style {path}: {image.shape[-1]}x{image.shape[-2]} px at "
                                f"--style-size {style_size}; each side needs at least "
                                f"{adain.MIN_SIDE} px.")  # fmt: skip
    grey = _read_mask(args.mask) if args.mask is not None else None
    if grey is not None and video:
        _check_mask_size(grey, args.mask, _video_size(args.input), args.input)
    color = args.preserve_color
    if runner is not None:
        changed = [flag for flag, given in (("several --style", count > 1), ("--alpha", alpha != 1),
                                            ("--mask", grey is not None)) if given]  # fmt: skip
        if changed:
            raise BadInputError(f"{changed[0]}: {args.model} is an ONNX export, which runs the "
                                "plain pass (one style, alpha 1); use the .pth model.")  # fmt: skip
        style = styles[0]

        def apply_onnx(images: torch.Tensor) -> torch.Tensor:
            outs = []
            for image in images.split(1):
                s = match_histogram(style, image) if color == "histogram" else style
                out = runner(image, s)
                outs.append(preserve_luminance(out, image) if color == "luminance" else out)
            return torch.cat(outs)

        return apply_onnx, (1, 64), torch.device("cpu"), None
    if args.compile:
        raise BadInputError("--compile applies to fast style and multi-style models; an AdaIN "
                            "model runs uncompiled.")  # fmt: skip
    net, record = adain.load(args.model, device, weights=args.weights)
    net = prepare_for_inference(net)
    stats = styles if color == "histogram" else adain.style_stats(net, styles)  # once

    def apply(images: torch.Tensor) -> torch.Tensor:
        mask = None if grey is None else _mask_weights(grey, images.shape[-2:], count)
        weights = None if mask is not None or count == 1 else blend or [1 / count] * count
        return adain.stylize_tensor(net, images, stats, weights=weights, alpha=alpha,
                                    mask=mask, preserve_color=color).cpu()  # fmt: skip

    def load(src: Path) -> torch.Tensor:
        image = as_tensor(src)
        _check_mask_size(grey, args.mask, tuple(image.shape[-2:]), src)
        return image if args.size is None else as_tensor(image, args.size)

    return apply, _footprint(record["network"]), device, (load if grey is not None else None)


def _check_mask_size(grey: torch.Tensor, mask: Path, size: Sequence[int], source: Path) -> None:
    if tuple(grey.shape[-2:]) != tuple(size):
        raise BadInputError(f"--mask {mask} is {grey.shape[-1]}x{grey.shape[-2]} px but {source} "
                            f"is {size[1]}x{size[0]} px; give a mask of the input's size "
                            "(--size resizes both).")  # fmt: skip


def _video_size(source: Path) -> tuple[int, int]:
    """(height, width) of a video's frames."""
    from .video import require_av

    av = require_av()
    try:
        with av.open(str(source)) as reader:
            if not reader.streams.video:
                raise BadInputError(f"--input {source}: no video stream in this file.")
            stream = reader.streams.video[0]
            return stream.height, stream.width
    except av.FFmpegError as err:
        raise BadInputError(f"--input {source}: not a video PyAV can read ({err}).") from None


def _plan_video(args: argparse.Namespace, others: Sequence[Path]) -> Path:
    """Check a video run's input and output before any work; return the output path."""
    from .video import CONTAINERS, require_av

    require_av()
    if not args.input.is_file():
        raise BadInputError(f"--input {args.input}: no such video file.")
    if args.format is not None:
        raise BadInputError("--format applies to folders of images; a video's output format "
                            "is its name's suffix.")  # fmt: skip
    if args.batch_size is not None and not 1 <= args.batch_size <= 256:
        raise BadInputError(f"--batch-size {args.batch_size}: use 1 .. 256 frames.")
    return check_output(args.output, inputs=[args.input, args.model, *others],
                        suffixes=CONTAINERS)  # fmt: skip


def _transform_video(
    args: argparse.Namespace,
    output: Path,
    apply: Callable[[torch.Tensor], torch.Tensor],
    footprint: tuple[int | None, int | None],
    device: torch.device,
) -> None:
    """Stylise a video's frames in batches (:func:`nst_utils.video.stylize_video`): the
    original frame rate and sound, a progress bar; report the flicker."""
    from .video import stylize_video

    batch = VIDEO_BATCH if args.batch_size is None else args.batch_size

    def frames(images: torch.Tensor) -> torch.Tensor:
        _check_fits(images[:1], args.input, footprint, device)
        return apply(images)

    report = stylize_video(args.input, output, frames, batch_size=batch, max_size=args.size,
                           progress=not args.quiet)  # fmt: skip
    sound = "sound kept" if report.audio else "no sound in the input"
    print(f"wrote {output} ({report.frames} frames, {report.size[1]}x{report.size[0]} px, "
          f"{report.fps:g} fps, {sound}; flicker {report.output_flicker:.4f}, the input's "
          f"{report.input_flicker:.4f})")  # fmt: skip


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
    p.set_defaults(run=run)


def _check_size(size: int | None) -> None:
    if size is not None and not 16 <= size <= 8192:
        raise BadInputError(f"--size {size}: use 16 .. 8192 pixels.")


def _run_model(args: argparse.Namespace, kind: str | tuple[str, ...]) -> None:
    _check_size(args.size)
    pairs, folder = _plan_images(args.input, args.output, args.model, args.format)
    loaded = _load_any_model(args.model, kind, pick_device(args.device), args.compile)
    _apply_to_images(loaded[0], pairs, folder, args, *loaded[1:])


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
    p.add_argument("--weights", default=None, metavar="SPEC",
                   help="AdaIN model: VGG weights of its encoder, imagenet | random | FILE.pth: "
                   "those it was trained with (default: NST_WEIGHTS)")  # fmt: skip
    p.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> None:
    from .checkpoints import load_model, read_file
    from .export import export_onnx

    output = check_output(args.output, inputs=[args.model], suffixes={".onnx"})
    kind = read_file(args.model)["kind"]
    if args.weights is not None and kind != adain.KIND:
        raise BadInputError(f"--weights: {args.model} is {kind_phrase(kind)}, which holds all "
                            "its weights; --weights is for an AdaIN model's encoder.")  # fmt: skip
    if kind == adain.KIND:
        net, record = adain.load(args.model, weights=args.weights)
    else:
        net, record = load_model(args.model)
    export_onnx(net, output, kind=record["kind"], styles=record["extra"].get("styles"))
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
    _add_train_multistyle(sub)
    _add_train_adain(sub)
    _add_train_sr(sub)
    _add_train_document(sub)
    _add_enhance(sub)
    _add_export(sub)
    return parser


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on the command line: one line each, without the source line."""
    _warn(str(message))


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
        with warnings.catch_warnings():  # restores the display of warnings afterwards
            warnings.showwarning = _warning_line
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
