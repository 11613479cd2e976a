"""Helpers for the neural style transfer course.

The data path, module by module: ``images`` (file <-> tensor) -> ``models`` (VGG features
by layer name) -> ``losses`` -> ``optimize`` (pixels by gradient descent) -> ``images``.
``gatys`` is the style transfer engine built on them (``stylize``), ``color`` keeps a
photo's colours, ``cli`` is the command line (``python -m nst_utils stylize``).
``config`` reads the environment switches, ``device`` picks CUDA/MPS/CPU and seeds.
"""

from .color import luminance_only, match_histogram, preserve_luminance, rgb_to_yiq, yiq_to_rgb
from .config import by_mode, default_arch, quick_mode, weights_setting
from .device import describe, pick_device, seed_everything, setup
from .errors import NSTError
from .gatys import StyleTransferConfig, StyleTransferResult, stylize
from .images import (
    concat_images,
    image_to_tensor,
    load_image,
    load_tensor,
    resize_longest,
    save_image,
    show_images,
    tensor_to_image,
)
from .losses import content_loss, gram_matrix, style_loss, total_variation
from .models import VGGFeatures, describe_layers, layer_names, load_vgg_state
from .optimize import OptimizeResult, optimize_image
from .paths import data_path, list_images

__version__ = "0.1.0"

__all__ = [
    "NSTError",
    "OptimizeResult",
    "StyleTransferConfig",
    "StyleTransferResult",
    "VGGFeatures",
    "by_mode",
    "concat_images",
    "content_loss",
    "data_path",
    "describe",
    "default_arch",
    "describe_layers",
    "gram_matrix",
    "image_to_tensor",
    "layer_names",
    "list_images",
    "load_image",
    "load_tensor",
    "load_vgg_state",
    "luminance_only",
    "match_histogram",
    "optimize_image",
    "pick_device",
    "preserve_luminance",
    "quick_mode",
    "resize_longest",
    "rgb_to_yiq",
    "save_image",
    "seed_everything",
    "setup",
    "show_images",
    "style_loss",
    "stylize",
    "tensor_to_image",
    "total_variation",
    "weights_setting",
    "yiq_to_rgb",
]
