"""Helpers for the neural style transfer course.

The data path, module by module: ``images`` (file <-> tensor) -> ``models`` (VGG features
by layer name) -> ``losses`` (one :class:`PerceptualLoss`) -> an optimiser over pixels
(``optimize``, used by ``gatys``) or a trained network -> ``images``. README's "The
package" lists every module and where each method lives.

Names are imported lazily (on first use), so ``import nst_utils`` and ``nst --help`` start
fast and an interrupted start-up leaves no traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

# public name -> module that defines it
_EXPORTS = {
    "luminance_only": "color",
    "match_histogram": "color",
    "match_mean_and_covariance": "color",
    "preserve_luminance": "color",
    "rgb_to_yiq": "color",
    "yiq_to_rgb": "color",
    "by_mode": "config",
    "default_arch": "config",
    "quick_mode": "config",
    "weights_setting": "config",
    "describe": "device",
    "pick_device": "device",
    "seed_everything": "device",
    "setup": "device",
    "BadInputError": "errors",
    "CheckpointError": "errors",
    "DivergenceError": "errors",
    "NSTError": "errors",
    "WeightsError": "errors",
    "StyleTransferConfig": "gatys",
    "StyleTransferResult": "gatys",
    "stylize": "gatys",
    "as_tensor": "images",
    "concat_images": "images",
    "image_to_tensor": "images",
    "load_image": "images",
    "resize_longest": "images",
    "save_image": "images",
    "show_images": "images",
    "tensor_to_image": "images",
    "PerceptualLoss": "losses",
    "content_loss": "losses",
    "gram_matrix": "losses",
    "style_loss": "losses",
    "total_variation": "losses",
    "VGGFeatures": "models",
    "describe_layers": "models",
    "layer_names": "models",
    "load_vgg_state": "models",
    "OptimizeResult": "optimize",
    "LossPlot": "visualize",
    "optimize_image": "optimize",
    "data_path": "paths",
    "list_images": "paths",
    "check_install": "setup_check",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nst_utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
