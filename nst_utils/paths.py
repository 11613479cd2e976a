"""Where the course's data lives: ``data/`` at the repository root."""

from __future__ import annotations

from pathlib import Path

from .errors import BadInputError
from .files import SUFFIXES

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"


def data_path(*parts: str) -> Path:
    """Path of a file under ``data/``, e.g. ``data_path("styles", "wave.jpg")``."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        raise BadInputError(
            f"{path} does not exist. The course data ships with the repository: clone it "
            "and install with `pip install -e .` from its root, so that data/ sits beside "
            "nst_utils/."
        )
    return path


def list_images(folder: str) -> list[Path]:
    """The image files in ``data/<folder>`` (e.g. 'styles', 'content'), sorted by name."""
    return sorted(p for p in data_path(folder).iterdir() if p.suffix.lower() in SUFFIXES)
