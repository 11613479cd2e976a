"""What each ``nst`` command does (:mod:`nst_utils.cli` builds the parser and calls
:func:`run`): check every input and output before any work starts, then run the method,
whose module is imported only by the command that needs it (so ``nst transform`` with a
fast style model loads neither torchvision nor the training code). Outputs are written
atomically, never over an input.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .checkpoints import kind_phrase
from .color import match_mean_and_covariance, preserve_luminance
from .device import pick_device
from .errors import BadInputError
from .files import SAVE_SUFFIXES, SUFFIXES, check_output, find_files, remove_stale_partials
from .images import as_tensor, save_image
from .inference import (
    Footprint,
    applier,
    check_fits,
    load_any_model,
    network_footprint,
    refuse_compile_onnx,
)
from .networks import prepare_for_inference
from .options import config_from_args
from .settings import (
    STYLE_SIZE,
    VIDEO_BATCH,
    AdaINConfig,
    DocumentConfig,
    FastStyleConfig,
    GatysConfig,
    MultiStyleConfig,
    SuperResolutionConfig,
)


def _run_stylize(args: argparse.Namespace) -> None:
    from . import gatys

    inputs = [args.content, *args.style, *([args.init_image] if args.init_image else [])]
    output = check_output(args.output, inputs=inputs, suffixes=SAVE_SUFFIXES)
    config = config_from_args(GatysConfig, args)
    config.check()
    result = gatys.stylize(
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


def _apply_to_images(
    apply: Callable[[torch.Tensor], torch.Tensor],
    pairs: list[tuple[Path, Path]],
    folder: bool,
    args: argparse.Namespace,
    footprint: Footprint,
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
                check_fits(image, src, footprint, device)
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


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
FAST_STYLE, MULTISTYLE, ADAIN = FastStyleConfig.KIND, MultiStyleConfig.KIND, AdaINConfig.KIND
TRANSFORM_KINDS = (FAST_STYLE, MULTISTYLE, ADAIN)
# option -> the kinds of model that take it
STYLE_OPTIONS = {
    "style_index": (MULTISTYLE,),
    "style_blend": (MULTISTYLE, ADAIN),
    "style": (ADAIN,),
    "style_size": (ADAIN,),
    "alpha": (ADAIN,),
    "preserve_color": (ADAIN,),
    "mask": (ADAIN,),
    "weights": (ADAIN,),
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
        refuse_compile_onnx(args.model, args.compile)
        from .export import OnnxNetwork

        runner = OnnxNetwork(args.model, TRANSFORM_KINDS)
        kind = runner.kind or FAST_STYLE
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
    if kind == MULTISTYLE:
        apply, footprint, device = _multistyle_model(args, runner, device)
    elif kind == ADAIN:
        apply, footprint, device, load = _adain_model(args, runner, device, is_video)
    else:
        apply, footprint, device = load_any_model(args.model, kind, device, args.compile, runner)
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
) -> tuple[Callable, Footprint, torch.device]:
    """``(apply, footprint, device)`` for a multi-style model with the style that
    ``--style-index`` or ``--style-blend`` chooses."""
    from . import multistyle

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
    return applier(fixed, args.model, device, args.compile), network_footprint(spec), device


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
) -> tuple[Callable, Footprint, torch.device, Callable | None]:
    """``(apply, footprint, device, load)`` for an AdaIN model and the style options; the
    styles' statistics are computed here, once for every image or frame. ``load`` reads
    an image and checks it against ``--mask`` (None without a mask)."""
    from . import adain

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
                s = match_mean_and_covariance(style, image) if color == "histogram" else style
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

    spec = record["network"]
    return apply, network_footprint(spec), device, (load if grey is not None else None)


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
    footprint: Footprint,
    device: torch.device,
) -> None:
    """Stylise a video's frames in batches (:func:`nst_utils.video.stylize_video`): the
    original frame rate and sound, a progress bar; report the flicker."""
    from .video import stylize_video

    batch = VIDEO_BATCH if args.batch_size is None else args.batch_size

    def frames(images: torch.Tensor) -> torch.Tensor:
        check_fits(images[:1], args.input, footprint, device)
        return apply(images)

    report = stylize_video(args.input, output, frames, batch_size=batch, max_size=args.size,
                           progress=not args.quiet)  # fmt: skip
    sound = "sound kept" if report.audio else "no sound in the input"
    print(f"wrote {output} ({report.frames} frames, {report.size[1]}x{report.size[0]} px, "
          f"{report.fps:g} fps, {sound}; flicker {report.output_flicker:.4f}, the input's "
          f"{report.input_flicker:.4f})")  # fmt: skip


def _check_size(size: int | None) -> None:
    if size is not None and not 16 <= size <= 8192:
        raise BadInputError(f"--size {size}: use 16 .. 8192 pixels.")


def _run_model(args: argparse.Namespace, kind: str | tuple[str, ...]) -> None:
    _check_size(args.size)
    pairs, folder = _plan_images(args.input, args.output, args.model, args.format)
    loaded = load_any_model(args.model, kind, pick_device(args.device), args.compile)
    _apply_to_images(loaded[0], pairs, folder, args, *loaded[1:])


def _run_enhance(args: argparse.Namespace) -> None:
    _run_model(args, (SuperResolutionConfig.KIND, DocumentConfig.KIND))


def _run_export(args: argparse.Namespace) -> None:
    from .checkpoints import load_model, read_file
    from .export import export_onnx

    output = check_output(args.output, inputs=[args.model], suffixes={".onnx"})
    kind = read_file(args.model)["kind"]
    if args.weights is not None and kind != ADAIN:
        raise BadInputError(f"--weights: {args.model} is {kind_phrase(kind)}, which holds all "
                            "its weights; --weights is for an AdaIN model's encoder.")  # fmt: skip
    if kind == ADAIN:
        from .adain import load

        net, record = load(args.model, weights=args.weights)
    else:
        net, record = load_model(args.model)
    export_onnx(net, output, kind=record["kind"], styles=record["extra"].get("styles"))
    print(f"wrote {output} ({record['kind']} model, checked against PyTorch)")


def warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on the command line: one line each, without the source line."""
    _warn(str(message))


def _run_train(args: argparse.Namespace) -> None:
    from .fast_style import train

    _train(args, FastStyleConfig, train, args.style, args.data)


def _run_train_multistyle(args: argparse.Namespace) -> None:
    from .multistyle import train

    _train(args, MultiStyleConfig, train, args.styles or args.style, args.data)


def _run_train_adain(args: argparse.Namespace) -> None:
    from .adain import train

    _train(args, AdaINConfig, train, args.styles, args.data)


def _run_train_sr(args: argparse.Namespace) -> None:
    from .superres import train

    _train(args, SuperResolutionConfig, train, args.data)


def _run_train_document(args: argparse.Namespace) -> None:
    from .documents import train

    _train(args, DocumentConfig, train)


RUNNERS: dict[str, Callable[[argparse.Namespace], None]] = {
    "stylize": _run_stylize,
    "train": _run_train,
    "transform": _run_transform,
    "train-multistyle": _run_train_multistyle,
    "train-adain": _run_train_adain,
    "train-sr": _run_train_sr,
    "train-document": _run_train_document,
    "enhance": _run_enhance,
    "export": _run_export,
}


def run(args: argparse.Namespace) -> None:
    """Run the command ``args.command`` with the parsed arguments ``args``."""
    RUNNERS[args.command](args)
