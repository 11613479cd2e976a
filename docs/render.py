"""Render the course's notebooks into browsable Markdown pages under docs/notebooks/.

    python docs/render.py --weights /path/to/vgg16_hed.pth --arch vgg16      # every notebook
    python docs/render.py --weights imagenet notebooks/03_gatys_style_transfer.ipynb
    python docs/render.py --weights FILE --arch vgg16 --ref HEAD   # the committed versions

Each notebook runs headless in a fresh kernel at the full settings (``NST_QUICK=0``) with
the given VGG weights (``NST_WEIGHTS``, ``NST_ARCH``). The render stops with an error
naming the notebook and the cell when a cell fails, runs longer than ``--timeout`` seconds,
or stalls: the kernel has answered but the client never took the answer (nbclient's known
race with output inside ipywidgets, jupyter/nbclient#312; without this check such a cell
waits until the timeout and then carries on silently). Figures are downscaled and saved
as JPEG; every page starts with a line saying which network and which machine rendered
it, when, and how long it took. The notebooks themselves are not modified.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import ipykernel.kernelspec
import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.util import ensure_async
from nbconvert import MarkdownExporter
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
THIS_PYTHON = "nst-render-this-python"
WIDGET = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CONTROL_REPRS = ("interactive(", "VBox(", "HBox(", "IntSlider(", "Image(")
STALL_SECONDS = 15.0  # an unclaimed reply for this long is a stall, not a slow cell


class RenderError(RuntimeError):
    """A notebook could not be rendered: which one, which cell, why."""


class ThisPythonKernels(KernelSpecManager):
    """Kernel specs plus one, ``THIS_PYTHON``, that runs ipykernel with the Python running
    this process (tests/test_colab.py uses it too)."""

    def get_kernel_spec(self, kernel_name):
        if kernel_name == THIS_PYTHON:
            return self.kernel_spec_class(
                resource_dir=ipykernel.kernelspec.RESOURCES,
                **ipykernel.kernelspec.get_kernel_dict(),
            )
        return super().get_kernel_spec(kernel_name)


class _Client(NotebookClient):
    """nbclient with a stall watchdog around every cell."""

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        task = asyncio.ensure_future(
            super().async_execute_cell(cell, cell_index, execution_count, store_history)
        )
        unclaimed = 0.0
        while True:
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if done:
                return task.result()
            # The reply sits in the shell socket but the client was never woken for it.
            unclaimed = (
                unclaimed + 1.0 if await ensure_async(self.kc.shell_channel.msg_ready()) else 0.0
            )
            if unclaimed >= STALL_SECONDS:
                task.cancel()
                raise RenderError(
                    f"cell {cell_index} stalled: the kernel answered {unclaimed:.0f} s ago but the "
                    "client was not woken (nbclient's output-widget race, jupyter/nbclient#312). "
                    "Do not print, plt.show or display inside an ipywidgets callback that runs "
                    "while the cell executes: draw into a widget (nst_utils.visualize."
                    f"picture_widget) instead. Cell source:\n{cell.source[:400]}"
                )


def _network_label(weights: str, arch: str) -> str:
    name = Path(weights).name.lower()
    if "hed" in name:
        return f"the HED {arch.upper()} (trained features, not ImageNet's)"
    if weights == "imagenet":
        return f"torchvision's ImageNet {arch.upper()}"
    if weights == "random":
        return f"a {arch.upper()} with random weights (the pictures mean nothing)"
    return f"the {arch.upper()} weights in {Path(weights).name}"


def _machine_label() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"an {torch.cuda.get_device_name(0)} GPU"
    except ImportError:
        pass
    return f"a {os.cpu_count()}-core CPU"


def _read(path: Path, ref: str | None) -> nbformat.NotebookNode:
    if ref is None:
        return nbformat.read(path, as_version=4)
    rel = path.resolve().relative_to(ROOT).as_posix()
    text = subprocess.run(
        ["git", "show", f"{ref}:{rel}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return nbformat.reads(text, as_version=4)


def execute(nb: nbformat.NotebookNode, path: Path, env: dict[str, str], timeout: int) -> None:
    """Run every cell of ``nb`` in place; raise RenderError naming the cell on any failure."""
    manager = AsyncKernelManager(kernel_name=THIS_PYTHON, kernel_spec_manager=ThisPythonKernels())
    client = _Client(
        nb, km=manager, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute(env=env)
    except RenderError:
        raise
    except Exception as error:  # CellExecutionError, CellTimeoutError, DeadKernelError ...
        raise RenderError(f"{path.name}: {type(error).__name__}: {error}") from error


def _widget_picture(nb: nbformat.NotebookNode, model_id: str) -> bytes | None:
    """The PNG held by an Image widget at or under ``model_id`` in the saved widget state."""
    states = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    todo, seen = [model_id], set()
    while todo:
        current = todo.pop()
        if current in seen or current not in states:
            continue
        seen.add(current)
        model = states[current]
        if model.get("model_name") == "ImageModel":
            for buffer in model.get("buffers", []):
                if buffer.get("path") == ["value"]:
                    return base64.b64decode(buffer["data"])
        todo += [c.removeprefix("IPY_MODEL_") for c in model.get("state", {}).get("children", [])]
    return None


def tidy(nb: nbformat.NotebookNode) -> None:
    """Progress bars out; widgets replaced by their picture (if any) and a note."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET not in data:
                outputs.append(output)
                continue
            if not data.get("text/plain", "").startswith(CONTROL_REPRS):
                continue  # a tqdm progress bar
            picture = _widget_picture(nb, data[WIDGET]["model_id"])
            if picture is not None:
                outputs.append(
                    nbformat.v4.new_output(
                        "display_data", {"image/png": base64.b64encode(picture).decode()}
                    )
                )
            note = "*(An interactive widget: open the notebook to use it.)*"
            outputs.append(nbformat.v4.new_output("display_data", {"text/markdown": note}))
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)


def to_markdown(nb, stem: str, out: Path, header: str, max_width: int, quality: int) -> int:
    """Write ``out/stem.md`` and its JPEG figures; returns the bytes written."""
    files_dir = f"{stem}_files"
    body, resources = MarkdownExporter().from_notebook_node(
        nb, resources={"output_files_dir": files_dir}
    )
    target = out / files_dir
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        old.unlink()
    written = 0
    for name, data in resources.get("outputs", {}).items():
        image = Image.open(io.BytesIO(data))
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            background = Image.new("RGB", image.size, "white")
            background.paste(image, mask=image.getchannel("A"))
            image = background
        image = image.convert("RGB")
        if image.width > max_width:
            height = round(image.height * max_width / image.width)
            image = image.resize((max_width, height), Image.Resampling.LANCZOS)
        new_name = Path(name).with_suffix(".jpg").name
        image.save(target / new_name, quality=quality, optimize=True)
        written += (target / new_name).stat().st_size
        body = body.replace(name, f"{files_dir}/{new_name}")
    page = out / f"{stem}.md"
    page.write_text(header + "\n\n" + body, encoding="utf-8")
    return written + page.stat().st_size


def write_index(out: Path) -> None:
    """docs/notebooks/README.md: one line per rendered page, with its label."""
    lines = [
        "# The course, rendered",
        "",
        "Every notebook executed at its default settings by `python docs/render.py`; "
        "each page says with which network and machine. Run the notebooks themselves "
        "(folder `notebooks/`) to change anything.",
        "",
    ]
    for page in sorted(out.glob("*.md")):
        if page.name == "README.md":
            continue
        first = page.read_text(encoding="utf-8").splitlines()[0].lstrip("> ").strip()
        lines.append(f"- [{page.stem}]({page.name}): {first}")
    (out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="notebooks to render (default: every notebooks/*.ipynb)",
    )
    parser.add_argument(
        "--weights",
        default=os.environ.get("NST_WEIGHTS", "imagenet"),
        help="NST_WEIGHTS for the run: imagenet | random | FILE.pth",
    )
    parser.add_argument(
        "--arch",
        default=os.environ.get("NST_ARCH", "vgg19"),
        choices=("vgg19", "vgg16"),
        help="NST_ARCH for the run",
    )
    parser.add_argument("--network", help="how the pages name the network (default: guessed)")
    parser.add_argument("--machine", help="how the pages name the machine (default: guessed)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    parser.add_argument("--ref", help="render the notebooks as committed at this git ref")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads of the kernel (OMP_NUM_THREADS); 1 helps on a busy machine",
    )
    parser.add_argument(
        "--save-executed",
        type=Path,
        metavar="DIR",
        help="also keep the executed notebooks (with outputs) in DIR",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "notebooks")
    parser.add_argument("--max-width", type=int, default=900, help="figure width limit, px")
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality of the figures")
    args = parser.parse_args(argv)

    weights = args.weights
    if weights not in ("imagenet", "random"):
        weights = str(Path(weights).expanduser().resolve())
        if not Path(weights).is_file():
            parser.error(f"--weights {args.weights}: no such file")
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    network = args.network or _network_label(weights, args.arch)
    machine = args.machine or _machine_label()
    env = os.environ | {"NST_QUICK": "0", "NST_WEIGHTS": weights, "NST_ARCH": args.arch}
    if args.threads:
        env |= {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        machine += f", {args.threads} thread{'s' if args.threads > 1 else ''}"
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in paths:
        path = path.resolve()
        nb = _read(path, args.ref)
        print(f"rendering {path.name} ...", flush=True)
        start, load = time.monotonic(), os.getloadavg()[0]
        execute(nb, path, env, args.timeout)
        seconds = time.monotonic() - start
        load = max(load, os.getloadavg()[0])
        if args.save_executed:
            args.save_executed.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, args.save_executed / path.name)
        tidy(nb)
        rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
        source = f"`{rel}`" + (f" as committed at `{args.ref}`" if args.ref else "")
        header = (
            f"> Rendered with {network}, on {machine} (load average up to {load:.1f}), "
            f"{datetime.date.today():%Y-%m-%d}: {source} executed at its default settings in "
            f"{seconds // 60:.0f} min {seconds % 60:.0f} s by `python docs/render.py`. "
            "Timings printed below come from that machine."
        )
        size = to_markdown(nb, path.stem, args.out, header, args.max_width, args.quality)
        total += size
        print(f"  {seconds / 60:.1f} min, {size / 1e6:.2f} MB -> {args.out / (path.stem + '.md')}")
    write_index(args.out)
    print(f"done: {len(paths)} notebook(s), {total / 1e6:.2f} MB written under {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RenderError as error:
        sys.exit(f"render failed: {error}")
