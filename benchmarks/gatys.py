"""Benchmark: the Gatys engine (``nst_utils.gatys.stylize``) against a tutorial-style baseline.

Both sides get the same content and style tensors, size, VGG weights, layers (the paper's:
content relu4_2; style relu1_1, relu2_1, relu3_1, relu4_1, relu5_1) and loss definition
(Gram / (C*H*W), content weight 1, style weight 1e6, style layers summed, no TV term).
Every run happens in a fresh subprocess, baseline and engine alternating, with the same
thread count and a small warm-up. See benchmarks/README.md for the columns.

    python benchmarks/gatys.py --quick                  # smoke test, seconds
    python benchmarks/gatys.py --size 256 512 --steps 300 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # for tutorial_baseline
sys.path.insert(1, str(ROOT))  # nst_utils, also when not installed

CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 1e6


# ----------------------------------------------------------------------------- workers
# Each worker runs in its own process and prints one line "RESULT {json}" on stdout.


def _rss_mb(field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident set size of this process, MiB.

    Reads /proc/self/status (Linux); elsewhere falls back to getrusage's ru_maxrss.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale / 1024


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so the peak measures the run alone
    and not, e.g., torchvision building the whole VGG with its 400 MB classifier first."""
    import gc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _now() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> list[float]:
    wall, cpu = _now()
    return [wall - start[0], cpu - start[1]]


def _count_evaluations(stamps: list, start: list) -> object:
    """Timestamp (wall, CPU) whenever a VGG's first conv runs on an input that needs
    gradients, i.e. one loss evaluation of the image being optimised; returns the handle."""
    import torch
    from torch import nn

    def hook(module: nn.Module, args: tuple) -> None:
        if (
            isinstance(module, nn.Conv2d)
            and module.in_channels == 3
            and torch.is_grad_enabled()
            and args[0].requires_grad
        ):
            stamps.append(_since(start[0]))

    return nn.modules.module.register_module_forward_pre_hook(hook)


def _inputs(args: argparse.Namespace) -> tuple:
    """Content with longest side ``size``; style stretched to the content's exact H x W,
    as the tutorial does (its loss modules need equal sizes). Both sides get these tensors."""
    from PIL import Image

    from nst_utils.images import image_to_tensor, load_image

    content = load_image(args.content, args.size)
    style = load_image(args.style).resize(content.size, Image.Resampling.LANCZOS)
    return image_to_tensor(content), image_to_tensor(style)


def _warm_up(arch: str, seed: int) -> None:
    """Load the weights (cached per process, so neither side pays for the disk read) and
    run two small forward/backward passes so thread pools and kernels are initialised."""
    import torch

    from nst_utils.models import VGGFeatures

    net = VGGFeatures(["relu5_1"], arch=arch, seed=seed)
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    for _ in range(2):
        net(x)["relu5_1"].square().mean().backward()


def _progress(method: str, size: int, total: int) -> object:
    every = max(1, total // 10)

    def report(i: int) -> None:
        if i % every == 0:
            print(f"  [{method} {size}px] {i}/{total}", file=sys.stderr, flush=True)

    return report


def _engine_config(args: argparse.Namespace, arch: str, steps: int) -> object:
    from tutorial_baseline import CONTENT_LAYERS, STYLE_LAYERS

    from nst_utils.gatys import StyleTransferConfig

    return StyleTransferConfig(
        relative_losses=False,  # the tutorial's raw losses, so both minimise the same thing
        arch=arch,
        weights=None,
        pooling="max",
        content_layers={name: 1.0 for name in CONTENT_LAYERS},
        style_layers={name: 1.0 for name in STYLE_LAYERS},  # summed, like the tutorial
        content_weight=CONTENT_WEIGHT,
        style_weight=STYLE_WEIGHT,
        tv_weight=0.0,
        gram_normalize="chw",
        optimizer="lbfgs",
        steps=steps,
        size=args.size,
        style_scale=1.0,
        init="content",
        scales=args.engine_scales,
        seed=args.seed,
        device="cpu",
    )


def worker(args: argparse.Namespace) -> dict:
    import torch

    from nst_utils.config import default_arch, weights_setting
    from nst_utils.device import seed_everything

    torch.set_num_threads(args.threads)
    arch = default_arch()
    out: dict = {"method": args.worker, "size": args.size, "arch": arch, "threads": args.threads}
    out["weights"] = weights_setting()
    out["load_before"] = os.getloadavg()[0]

    if args.worker == "matmul":
        n = 2048 if args.size <= 64 else 4096
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        times = [_timed(lambda: torch.mm(a, b)) for _ in range(5)]
        out["gflops"] = 2 * n**3 / min(t[0] for t in times) / 1e9  # per wall second
        out["gflops_cpu"] = 2 * n**3 / min(t[1] for t in times) / 1e9  # per CPU second
        out["n"] = n
        return out

    content, style = _inputs(args)
    out["hw"] = list(content.shape[-2:])
    out["style_hw"] = list(style.shape[-2:])
    seed_everything(args.seed)
    _warm_up(arch, args.seed)

    if args.worker.startswith("flops"):
        out["flops_per_eval"] = _flops(args, arch, content, style)
        return out

    from tutorial_baseline import run_baseline, tutorial_loss, vgg_features

    cnn = vgg_features(arch, seed=args.seed) if args.worker == "baseline" else None
    out["peak_reset"] = _reset_peak_rss()
    out["rss_before_mb"] = _rss_mb("VmRSS")
    start: list = [_now()]
    evals: list = []
    steps: list = []  # (wall, CPU) after each baseline evaluation
    handle = _count_evaluations(evals, start)
    seed_everything(args.seed)
    start[0] = _now()
    if args.worker == "baseline":
        report = _progress("baseline", args.size, args.steps)

        def on_eval(i: int) -> None:
            steps.append(_since(start[0]))
            report(i)

        res = run_baseline(
            cnn, content, style, arch, steps=args.steps, content_weight=CONTENT_WEIGHT,
            style_weight=STYLE_WEIGHT, on_eval=on_eval,
        )  # fmt: skip
        total = _since(start[0])
        image, history = res.image, res.history
    else:
        from nst_utils.gatys import stylize

        # no callback: the evaluation hook gives the timestamps
        res = stylize(content, style, _engine_config(args, arch, args.steps), progress=False)
        total = _since(start[0])
        image, history = res.image, res.history
        # with coarse-to-fine scales only the last level's losses are at the full size
        out["final_level_start"] = args.steps - args.steps // args.engine_scales
    handle.remove()
    out["rss_peak_mb"] = _rss_mb()
    out["total"] = total
    out["eval_starts"] = evals
    out["step_times"] = steps
    out["history"] = {k: [float(v) for v in vals] for k, vals in history.items()}
    if cnn is None:
        cnn = vgg_features(arch, seed=args.seed)
    out["final"] = tutorial_loss(
        cnn, image, content, style, arch, content_weight=CONTENT_WEIGHT, style_weight=STYLE_WEIGHT
    )
    if args.out:
        from nst_utils.images import save_image

        path = Path(args.out) / f"{args.worker}_{args.size}px_r{args.repeat}.png"
        save_image(image, path)
        out["image"] = str(path)
    return out


def _timed(fn: object) -> list[float]:
    start = _now()
    fn()
    return _since(start)


def _flops(args: argparse.Namespace, arch: str, content: object, style: object) -> float:
    """Forward+backward FLOPs of one loss evaluation, by torch.utils.flop_counter (convs,
    matmuls/bmm for the Grams); the engine's is the difference between 2 steps and 1 step."""
    from torch.utils.flop_counter import FlopCounterMode

    if args.worker == "flops-baseline":
        from tutorial_baseline import build_model, vgg_features

        model, content_losses, style_losses = build_model(
            vgg_features(arch, seed=args.seed), arch, content, style
        )  # fmt: skip
        image = content.clone().requires_grad_(True)
        with FlopCounterMode(display=False) as counter:
            model(image)
            loss = STYLE_WEIGHT * sum(m.loss for m in style_losses) + CONTENT_WEIGHT * sum(
                m.loss for m in content_losses
            )
            loss.backward()
        return float(counter.get_total_flops())

    from nst_utils.gatys import stylize

    totals = []
    for steps in (1, 2):
        with FlopCounterMode(display=False) as counter:
            stylize(content, style, _engine_config(args, arch, steps), progress=False)
        totals.append(counter.get_total_flops())
    return float(totals[1] - totals[0])


# ----------------------------------------------------------------------------- parent


def spawn(args: argparse.Namespace, method: str, size: int, repeat: int = 0) -> dict:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", method,
        "--size", str(size), "--steps", str(args.engine_steps if method == "engine" else
                                             args.steps),
        "--threads", str(args.threads), "--seed", str(args.seed), "--repeat", str(repeat),
        "--engine-scales", str(args.engine_scales),
        "--content", str(args.content), "--style", str(args.style),
    ]  # fmt: skip
    if args.out:
        cmd += ["--out", str(args.out)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONWARNINGS="ignore")
    print(f"-> {method} {size}px (repeat {repeat + 1})", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"worker {method} at {size}px failed (exit {proc.returncode})")
    line = next(x for x in proc.stdout.splitlines()[::-1] if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def tutorial_evaluations(steps: int, max_iter: int = 20) -> int:
    """Evaluations the tutorial loop makes: it calls ``.step`` while its count is <= steps."""
    return max_iter * (steps // max_iter + 1)


def _per_eval(run: dict, clock: int) -> float:
    """Median seconds between the starts of consecutive loss evaluations (0 wall, 1 CPU)."""
    s = [stamp[clock] for stamp in run["eval_starts"]]
    return statistics.median(b - a for a, b in zip(s, s[1:], strict=False)) if len(s) > 1 else 0.0


def time_to_reach(run: dict, target: float) -> tuple[list[float] | None, int | None]:
    """(wall, CPU) seconds from the call's start, and the step, when the engine's per-step
    total loss first drops to ``target``; stamped when the next evaluation starts (after
    that step's backward pass and update), or at the end for the last step."""
    first = run.get("final_level_start", 0)
    ends = run["eval_starts"][1:] + [run["total"]]
    for i, (loss, t) in enumerate(zip(run["history"]["total"], ends, strict=False)):
        if i >= first and loss <= target:
            return t, i + 1
    return None, None


def summarise(args: argparse.Namespace, runs: dict, flops: dict, peak: tuple[float, float]) -> str:
    med = statistics.median
    lines = [
        "| size (HxW) | implementation | evals | s/eval wall | s/eval CPU | total s wall (CPU) "
        "| final loss | to baseline loss s wall (CPU) | speed-up wall (CPU) | peak RSS MiB "
        "| peak - start RSS MiB | GFLOP/eval | GFLOP/s wall (per CPU-s) "
        "| % of mm peak wall (CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for size in args.size:
        base, eng = runs[(size, "baseline")], runs[(size, "engine")]
        target = med(r["final"]["total"] for r in base)
        base_wall, base_cpu = (med(r["total"][k] for r in base) for k in (0, 1))
        hw = "x".join(map(str, base[0]["hw"]))
        reach = [time_to_reach(r, target) for r in eng]
        h0b, h0e = base[0]["history"]["total"][0], eng[0]["history"]["total"][0]
        hb = base[0]["history"]["total"]
        notes.append(
            f"{size}px: loss at the content image (first evaluation): baseline {h0b:.6g}, "
            f"engine {h0e:.6g} (rel. diff {abs(h0b - h0e) / max(abs(h0b), 1e-30):.1e}: "
            f"~0 means the same loss definition). Target = the baseline's final image's loss "
            f"{target:.6g} (its last evaluated loss {hb[-1]:.6g}, lowest {min(hb):.6g}). "
            f"Engine reached it at step {reach[0][1] or 'never'} of "
            f"{len(eng[0]['history']['total'])} "
            f"(engine final loss {eng[0]['final']['total']:.6g}). "
            f"Load average before each run: {[round(r['load_before'], 1) for r in base + eng]}."
        )
        for name, rs in (("baseline (tutorial)", base), ("engine", eng)):
            is_base = rs is base
            wall, cpu = (med(r["total"][k] for r in rs) for k in (0, 1))
            per_wall, per_cpu = med(_per_eval(r, 0) for r in rs), med(_per_eval(r, 1) for r in rs)
            if is_base:
                ttr, speed = "(its own end)", "1.00x"
            elif all(t is not None for t, _ in reach):
                rw, rc = (med(t[k] for t, _ in reach) for k in (0, 1))
                ttr = f"{rw:.1f} ({rc:.1f})"
                speed = f"**{base_wall / rw:.2f}x** ({base_cpu / rc:.2f}x)"
            else:
                ttr, speed = "not reached", "-"
            fl = flops.get((size, "baseline" if is_base else "engine"))
            rate = fl / 1e9 / per_wall if fl and per_wall else None
            rate_cpu = fl / 1e9 / per_cpu if fl and per_cpu else None
            share = (
                f"{100 * rate / peak[0]:.0f}% ({100 * rate_cpu / peak[1]:.0f}%)" if rate else "-"
            )
            lines.append(
                f"| {size} ({hw}) | {name} | {med(len(r['eval_starts']) for r in rs):.0f} "
                f"| {per_wall:.3f} | {per_cpu:.3f} | {wall:.1f} ({cpu:.1f}) "
                f"| {med(r['final']['total'] for r in rs):.5g} | {ttr} | {speed} "
                f"| {med(r['rss_peak_mb'] for r in rs):.0f} "
                f"| {med(r['rss_peak_mb'] - r['rss_before_mb'] for r in rs):.0f} "
                f"| {f'{fl / 1e9:.1f}' if fl else '-'} "
                f"| {f'{rate:.1f} ({rate_cpu:.1f})' if rate else '-'} "
                f"| {share} |"
            )
    r0 = runs[(args.size[0], "baseline")][0]
    head = (
        f"weights: {r0['weights']} ({r0['arch']}); threads: {args.threads}; steps: baseline "
        f"{args.steps} (tutorial loop: {tutorial_evaluations(args.steps)} evaluations), engine "
        f"budget {args.engine_steps}, scales {args.engine_scales}; repeats: {args.repeats} "
        f"(medians); fp32 matmul peak: {peak[0]:.1f} GFLOP/s wall, {peak[1]:.1f} GFLOP per "
        f"CPU-second; content {Path(args.content).name}, style {Path(args.style).name} "
        f"(stretched to the content's size); python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
    )
    return "\n".join([head, "", *lines, "", *(f"- {n}" for n in notes)])


def main(argv: list[str] | None = None) -> None:
    from nst_utils.paths import data_path

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny size, few steps: a smoke test")
    p.add_argument("--size", type=int, nargs="+", default=[256, 512], help="longest side, px")
    p.add_argument("--steps", type=int, default=300, help="baseline steps (tutorial counting)")
    p.add_argument(
        "--engine-steps", type=int, default=None, help="engine budget (default: baseline's evals)"
    )
    p.add_argument(
        "--engine-scales", type=int, default=1, help="engine coarse-to-fine levels (default 1)"
    )
    p.add_argument("--repeats", type=int, default=1, help="A/B pairs per size; medians")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--content", default=str(data_path("content", "astronaut.jpg")))
    p.add_argument("--style", default=str(data_path("styles", "starry_night.jpg")))
    p.add_argument("--out", default=None, help="folder for raw JSON and final images")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP counting runs")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        args.size = args.size[0]
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return
    if args.quick:
        args.size, args.steps, args.repeats = [64], 10, 1
    args.engine_steps = args.engine_steps or tutorial_evaluations(args.steps)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)

    print(
        f"benchmark: weights {os.environ.get('NST_WEIGHTS') or 'imagenet'}, arch "
        f"{os.environ.get('NST_ARCH') or 'vgg19'}, sizes {args.size}, steps {args.steps}, "
        f"repeats {args.repeats}, threads {args.threads}",
        file=sys.stderr,
    )
    mm = spawn(args, "matmul", args.size[0])
    peak = (mm["gflops"], mm["gflops_cpu"])
    runs: dict = {}
    flops: dict = {}
    for size in args.size:
        for r in range(args.repeats):
            for method in ("baseline", "engine"):  # A B A B ...
                runs.setdefault((size, method), []).append(spawn(args, method, size, r))
        if not args.no_flops:
            for method in ("baseline", "engine"):
                flops[(size, method)] = spawn(args, f"flops-{method}", size)["flops_per_eval"]
    if args.out:
        raw = {f"{s}_{m}": v for (s, m), v in runs.items()}
        Path(args.out, "raw.json").write_text(json.dumps(raw))
    print()
    print(summarise(args, runs, flops, peak))


if __name__ == "__main__":
    main()
