"""Test defaults: quick mode and seeded random VGG weights, unless the caller chose.

Set here (before any notebook kernel starts) so that nbval's kernels inherit them.
Run ``NST_WEIGHTS=/path/vgg16.pth pytest`` to test with real weights instead.
"""

import os

os.environ.setdefault("NST_QUICK", "1")
os.environ.setdefault("NST_WEIGHTS", "random")
os.environ.setdefault("MPLBACKEND", "Agg")
