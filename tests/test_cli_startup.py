"""The command line starts at once: which heavy modules each ``nst`` call imports.

``nst --help`` and every ``nst COMMAND --help`` must not import PyTorch at all; applying a
fast style model must not import what only training, metrics or plots need. Each call runs
in a fresh interpreter (``sys.modules`` of this test process holds everything already).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nst_utils.cli import build_parser
from nst_utils.paths import REPO_ROOT

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)
NEVER_FOR_HELP = ("torch", "torchvision", "matplotlib", "torchmetrics", "numpy", "PIL")
NOT_FOR_TRANSFORM = ("torchvision", "torchmetrics", "matplotlib", "nst_utils.training")

PROBE = """
import json, sys
from nst_utils.__main__ import run
argv, wanted = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["nst", *argv]
try:
    code = run()
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "loaded": [m for m in wanted if m in sys.modules]}))
"""


def imports_of(argv: list[str], watched: tuple[str, ...]) -> tuple[int, list[str]]:
    """(exit code, the ``watched`` modules loaded) of ``nst ARGV`` in a new interpreter."""
    run = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(watched)],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )  # fmt: skip
    report = json.loads(run.stdout.strip().splitlines()[-1])
    return report["code"], report["loaded"]


def test_every_command_is_probed():
    assert {"stylize", "train", "transform", "enhance", "export"} <= set(COMMANDS)


@pytest.mark.parametrize("argv", [["--help"], *([c, "--help"] for c in COMMANDS)], ids=" ".join)
def test_help_imports_no_pytorch(argv):
    code, loaded = imports_of(argv, NEVER_FOR_HELP)
    assert code == 0 and loaded == []


def test_a_usage_error_imports_no_pytorch():
    code, loaded = imports_of(["transform", "--model"], NEVER_FOR_HELP)
    assert code == 2 and loaded == []


def test_transform_with_a_fast_style_model_stays_lean(tmp_path):
    watched = (*NOT_FOR_TRANSFORM, "torch")
    argv = ["transform", "-m", str(REPO_ROOT / "models" / "starry_night_lite.pth"), "-i",
            str(REPO_ROOT / "data" / "content" / "chelsea.jpg"), "-o", str(tmp_path / "o.png"),
            "--size", "64", "--quiet"]  # fmt: skip
    code, loaded = imports_of(argv, watched)
    assert code == 0 and (tmp_path / "o.png").is_file()
    assert loaded == ["torch"]  # the probe sees a real run, and nothing heavier than PyTorch
