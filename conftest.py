"""Test defaults: quick mode and seeded random VGG weights, unless the caller chose.

Set here (before any notebook kernel starts) so that nbval's kernels inherit them.
Run ``NST_WEIGHTS=/path/vgg16.pth pytest`` to test with real weights instead.
Every notebook cell nbval collects is marked ``slow``: ``pytest -m "not slow"`` runs none.
"""

import os

import pytest

os.environ.setdefault("NST_QUICK", "1")
os.environ.setdefault("NST_WEIGHTS", "random")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a test module (``pytestmark = pytest.mark.usefixtures(
    "one_thread")``): small tensors gain nothing from threads, and on a busy shared CPU
    several threads are far slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the notebooks' cells (nbval items) slow: each notebook starts a kernel and runs."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
