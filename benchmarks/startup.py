"""Benchmark: how quickly the ``nst`` command line starts, against a bare ``import torch``.

Each measurement is a fresh interpreter, timed from the outside (wall clock, start to
exit): ``python -c "import torch"`` (the floor any PyTorch program pays), ``nst --help``,
``nst COMMAND --help`` for every command, and ``nst transform`` of one photo with a lite
fast style model. The calls run side by side in one run, alternating (every call once per
round, ``--repeats`` rounds), and the table reports medians; the goals are
``--help`` under 0.5 s and ``transform`` within 1.5 s of the bare import.

    python benchmarks/startup.py                   # 7 rounds, a 512 px photo
    python benchmarks/startup.py --repeats 2 --commands train   # quick look

See benchmarks/README.md ("Start-up") for the measured table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NST = [sys.executable, "-m", "nst_utils"]


def calls(photo: Path, model: Path, out: Path, commands: list[str]) -> dict[str, list[str]]:
    """What is timed: a name -> the command line."""
    timed = {"python -c 'import torch'": [sys.executable, "-c", "import torch"],
             "nst --help": [*NST, "--help"]}  # fmt: skip
    timed |= {f"nst {c} --help": [*NST, c, "--help"] for c in commands}
    timed["nst transform (one photo)"] = [*NST, "transform", "-m", str(model), "-i", str(photo),
                                          "-o", str(out), "--quiet"]  # fmt: skip
    return timed


def seconds(argv: list[str]) -> float:
    """Wall time of one run of ``argv``, which must succeed."""
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    return time.perf_counter() - started


def main() -> None:
    from nst_utils.cli import build_parser  # light: no PyTorch

    every = sorted(build_parser()._subparsers._group_actions[0].choices)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="rounds (default: 7)")
    parser.add_argument("--size", type=int, default=512, help="the photo's longest side, px")
    parser.add_argument("--photo", type=Path, default=REPO / "data/content/chelsea.jpg")
    parser.add_argument("--model", type=Path, default=REPO / "models/starry_night_lite.pth")
    parser.add_argument("--commands", nargs="*", default=every, choices=every,
                        help="the commands whose --help is timed (default: all)")  # fmt: skip
    args = parser.parse_args()
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "photo.png"
        image = Image.open(args.photo).convert("RGB")
        image.thumbnail((args.size, args.size))
        image.save(photo)
        timed = calls(photo, args.model, Path(folder) / "out.png", args.commands)
        for argv in timed.values():  # warm the file cache once
            seconds(argv)
        runs: dict[str, list[float]] = {name: [] for name in timed}
        for _ in range(args.repeats):
            for name, argv in timed.items():
                runs[name].append(seconds(argv))
    base = statistics.median(runs["python -c 'import torch'"])
    print(f"Start-up, {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}"
          f"; {args.repeats} alternating rounds, medians; photo {image.width}x{image.height} px, "
          f"model {args.model.name}\n")  # fmt: skip
    print("| call | median s | min s | minus import torch, s |")
    print("|---|---:|---:|---:|")
    for name, values in runs.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {min(values):.2f} | {median - base:+.2f} |")


if __name__ == "__main__":
    main()
