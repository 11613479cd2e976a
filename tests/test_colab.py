"""The notebooks' first two cells: the Colab badge and the Colab set-up cell.

The set-up cell is run the Colab way without Colab: in a fresh kernel with ``NST_COLAB=1``
it clones the repository (here a local clone of the committed HEAD, so uncommitted changes
are not in it), "installs" it with pip and makes the clone importable in the running kernel.
``PIP_DRY_RUN=1`` makes pip resolve everything without installing anything; with
``PIP_NO_INDEX=1`` and build isolation off it needs no network either (pip reads an
environment variable for a ``--no-...`` option inverted: ``PIP_NO_BUILD_ISOLATION=0`` means
``--no-build-isolation``). The test checks that the test environment is unchanged afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import pytest
from jupyter_client import KernelManager

ROOT = Path(__file__).resolve().parent.parent
_RENDER = importlib.util.spec_from_file_location("nst_docs_render", ROOT / "docs" / "render.py")
render = importlib.util.module_from_spec(_RENDER)  # the notebook renderer: its kernel specs
_RENDER.loader.exec_module(render)
NOTEBOOKS = sorted(
    p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
BADGE = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
COLAB_URL = "https://colab.research.google.com/github/nst-course/nst-course/blob/main/"


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _setup_sources() -> dict[str, list[Path]]:
    """Each distinct set-up cell (cell 1) -> the notebooks holding it."""
    found: dict[str, list[Path]] = {}
    for path in NOTEBOOKS:
        found.setdefault(_source(_cells(path)[1]), []).append(path)
    return found


def _label(paths: list[Path]) -> str:
    names = [p.relative_to(ROOT / "notebooks").as_posix() for p in paths]
    return names[0] + (f"+{len(names) - 1}" if len(names) > 1 else "")


SETUP_SOURCES = _setup_sources()


def test_every_notebook_found():
    assert len(NOTEBOOKS) >= 4, "expected the course's notebooks under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_badge_opens_this_very_notebook(path):
    cell = _cells(path)[0]
    rel = path.relative_to(ROOT).as_posix()
    assert cell["cell_type"] == "markdown", f"{rel}: cell 0 must be the markdown title cell"
    text = _source(cell)
    assert f"{BADGE}({COLAB_URL}{rel})" in text, (
        f"{rel}: cell 0 needs the Colab badge pointing at this notebook: {BADGE}({COLAB_URL}{rel})"
    )


def test_setup_cells_are_identical():
    cells = [_cells(path)[1] for path in NOTEBOOKS]
    assert all(c["cell_type"] == "code" for c in cells), "cell 1 must be the set-up code cell"
    common, _ = Counter(_source(c) for c in cells).most_common(1)[0]
    different = [
        p.relative_to(ROOT).as_posix()
        for p, c in zip(NOTEBOOKS, cells, strict=True)
        if _source(c) != common
    ]
    assert not different, f"set-up cell (cell 1) differs from the other notebooks' in {different}"


def _environment_snapshot() -> dict[str, str]:
    """What an install would change in this environment: its distributions and .pth files."""
    site = Path(sysconfig.get_paths()["purelib"])
    snapshot = {}
    for entry in sorted(site.iterdir()):
        if entry.suffix in {".pth", ".dist-info", ".egg-link"} or entry.name.startswith(
            "__editable__"
        ):
            files = [entry] if entry.is_file() else sorted(entry.iterdir())
            snapshot[entry.name] = "|".join(f"{f.name}:{f.stat().st_mtime_ns}" for f in files)
    return snapshot


@pytest.fixture(scope="session")
def source_repo(tmp_path_factory) -> Path:
    """A clone of the repository's committed HEAD: what Colab would clone from GitHub."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the course")
    dest = tmp_path_factory.mktemp("origin") / "nst-course"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    return dest


def _run(client, code: str, timeout: float = 300) -> str:
    """Execute ``code``; return its text output, or fail with the kernel's error."""
    texts: list[str] = []

    def keep(msg):
        content = msg["content"]
        if msg["msg_type"] == "stream":
            texts.append(content["text"])
        elif msg["msg_type"] in {"execute_result", "display_data"}:
            texts.append(content["data"].get("text/plain", ""))
        elif msg["msg_type"] == "error":
            texts.append("\n".join(content["traceback"]))

    reply = client.execute_interactive(code, timeout=timeout, output_hook=keep)
    output = "".join(texts)
    assert reply["content"]["status"] == "ok", f"the cell failed:\n{output}"
    return output


@pytest.mark.parametrize(
    "source", list(SETUP_SOURCES), ids=[_label(p) for p in SETUP_SOURCES.values()]
)
@pytest.mark.slow
def test_setup_cell_installs_the_course_the_colab_way(source, source_repo, tmp_path):
    colab_dir = tmp_path / "content" / "nst-course"
    env = os.environ | {
        "NST_COLAB": "1",
        "NST_REPO_URL": source_repo.as_uri(),
        "NST_COLAB_DIR": str(colab_dir),
        "PIP_DRY_RUN": "1",  # resolve, install nothing
        "PIP_NO_INDEX": "1",  # offline: everything needed is installed already
        "PIP_NO_BUILD_ISOLATION": "0",  # sic: pip reads it inverted -> --no-build-isolation
    }
    before = _environment_snapshot()
    manager = KernelManager(
        kernel_name=render.THIS_PYTHON, kernel_spec_manager=render.ThisPythonKernels()
    )
    manager.start_kernel(env=env, cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        for attempt in ("first", "second"):  # the cell must be safe to run twice
            output = _run(client, source)
            assert "Course ready" in output, f"{attempt} run printed:\n{output}"
        probe = "import json, os, sys, nst_utils\n" + (
            "print(json.dumps([nst_utils.__file__, os.getcwd(), sys.executable]))"
        )
        module_file, cwd, python = json.loads(_run(client, probe).strip().splitlines()[-1])
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert Path(python).resolve() == Path(sys.executable).resolve()
    assert Path(module_file).resolve().is_relative_to(colab_dir.resolve()), (
        f"nst_utils came from {module_file}, not from the clone in {colab_dir}"
    )
    assert Path(cwd).resolve() == (colab_dir / "notebooks").resolve()
    assert (colab_dir / ".git").is_dir()
    assert _environment_snapshot() == before, "the set-up cell changed the test environment"
