"""Rules of the repository itself: clean notebooks, data with credits."""

import json
import re
from pathlib import Path

import pytest

from nst_utils import data_path, list_images, load_image

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    dirty = [
        i
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_colab_badge_and_setup(path):
    cells = json.loads(path.read_text())["cells"]
    assert "colab.research.google.com" in "".join(cells[0]["source"])
    assert "google.colab" in "".join(cells[1]["source"])


# a "?" where a number belongs ("About ? min"), or a note-to-self left in prose
PLACEHOLDER = re.compile(
    r"(?<![\w?.])\?\s*(?:min|s|ms|h|kB|MB|GB|x|%|px|steps)\b|\b(?:TBD|FIXME|XXX)\b"
)
PAGES = sorted(
    [*(ROOT / "notebooks").rglob("*.ipynb"), *(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
)


def _prose(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text()


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_placeholder_text_in_the_prose(path):
    found = [m.group(0) for m in PLACEHOLDER.finditer(_prose(path))]
    assert not found, f"{path.relative_to(ROOT)}: placeholder text {found}; put the number in"


def test_the_placeholder_check_finds_what_it_must():
    text = "**Run time.** About ? min on a CPU, about ? s in quick mode. TBD."
    assert [m.group(0) for m in PLACEHOLDER.finditer(text)] == ["? min", "? s", "TBD"]
    assert not PLACEHOLDER.findall("Why? Because 3 min. Is it? Yes (s. 4).")


def test_every_data_file_is_credited_and_readable():
    credits = data_path("README.md").read_text()
    images = list_images("content") + list_images("styles")
    assert len(images) >= 6
    for image in images:
        assert image.name in credits, f"{image.name} has no entry in data/README.md"
        assert min(load_image(image).size) >= 256
    total = sum(p.stat().st_size for p in (ROOT / "data").rglob("*") if p.is_file())
    assert total < 5_000_000, f"data/ is {total / 1e6:.1f} MB; keep it under 5 MB"


def test_missing_data_file_says_how_to_get_it():
    from nst_utils import NSTError

    with pytest.raises(NSTError, match=r"styles/nope\.jpg does not exist.*clone"):
        data_path("styles", "nope.jpg")
