"""Test defaults: quick mode and seeded random VGG weights, unless the caller chose.

Set here (before any notebook kernel starts) so that nbval's kernels inherit them.
Run ``NST_WEIGHTS=/path/vgg16.pth pytest`` to test with real weights instead.
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
