"""Helpers for the neural style transfer course.

The data path, module by module: ``images`` (file <-> tensor) -> ``models`` (VGG features
by layer name) -> ``losses`` -> ``optimize`` (pixels by gradient descent) -> ``images``.
``config`` reads the environment switches, ``device`` picks CUDA/MPS/CPU and seeds.
"""

from .config import by_mode, default_arch, quick_mode, weights_setting
from .device import describe, pick_device, seed_everything, setup
from .errors import NSTError
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
    "optimize_image",
    "pick_device",
    "quick_mode",
    "resize_longest",
    "save_image",
    "seed_everything",
    "setup",
    "show_images",
    "style_loss",
    "tensor_to_image",
    "total_variation",
    "weights_setting",
]
