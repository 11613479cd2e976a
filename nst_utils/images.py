"""Images in and out: load (any mode, EXIF-aware), resize, tensors, save atomically, show.

Tensors follow one convention everywhere: shape (N, C, H, W), float in [0, 1], RGB.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import NSTError

ImageSource = str | os.PathLike | BinaryIO

MAX_PIXELS = 64_000_000  # a 8000 x 8000 photo; bigger is a decompression bomb or a mistake
MAX_SIDE = 20_000  # pixels; a longer side cannot be a picture meant for this course
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Files read by load_image in this process: save_image refuses to write over them.
_inputs_seen: set[Path] = set()


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


def _open(source: ImageSource, name: str) -> Image.Image:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise NSTError(f"{name}: no such file. Check the path (cwd is {Path.cwd()}).")
        if path.is_dir():
            raise NSTError(f"{name}: is a directory; pass the path of one image file in it.")
        if path.stat().st_size == 0:
            raise NSTError(f"{name}: the file is empty (0 bytes); it is no image.")
    else:
        pos = source.tell()
        if not source.read(1):
            raise NSTError(f"{name}: the file object is empty (0 bytes left to read).")
        source.seek(pos)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise NSTError(
            f"{name}: refused as a decompression bomb ({err}). Downscale the image first."
        ) from err
    except UnidentifiedImageError as err:
        raise NSTError(
            f"{name}: not an image Pillow can read (JPEG, PNG, WebP, BMP, TIFF, ...)."
        ) from err
    except OSError as err:
        raise NSTError(
            f"{name}: the image data is broken or truncated ({err}). Re-export the file."
        ) from err
    width, height = img.size
    if width < 1 or height < 1 or max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise NSTError(
            f"{name}: absurd size {width}x{height} pixels (limits: sides 1..{MAX_SIDE}, "
            f"{MAX_PIXELS:,} pixels). Resize it with an image editor first."
        )
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise NSTError(
            f"{name}: the image data is broken or truncated ({err}). Re-export the file."
        ) from err
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}:  # 16/32-bit grayscale
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in {"RGBA", "LA", "PA"} or (img.mode == "RGB" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(source: ImageSource, max_size: int | None = None) -> Image.Image:
    """Read an image file (path or binary file object) as an upright 8-bit RGB PIL image.

    EXIF orientation is applied; grayscale, palette, alpha (composited on white), CMYK and
    16-bit images become RGB. ``max_size`` resizes so the longest side is at most that many
    pixels. Any problem raises :class:`NSTError` naming the file.
    """
    name = _describe(source)
    img = _open(source, name)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception as err:  # broken EXIF must not stop the course; keep the pixels
        warnings.warn(f"{name}: ignoring unreadable EXIF orientation ({err})", stacklevel=2)
    img = _to_rgb(img)
    if isinstance(source, (str, os.PathLike)):
        _inputs_seen.add(Path(source).resolve())
    if max_size is not None:
        img = resize_longest(img, max_size)
    return img


def resize_longest(img: Image.Image, size: int) -> Image.Image:
    """Resize (Lanczos) so the longest side is ``size`` pixels, keeping the aspect ratio."""
    if size < 1:
        raise NSTError(f"size must be a positive number of pixels, got {size}.")
    width, height = img.size
    scale = size / max(width, height)
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    return img if new == img.size else img.resize(new, Image.Resampling.LANCZOS)


def image_to_tensor(img: Image.Image, device: torch.device | str | None = None) -> torch.Tensor:
    """PIL image -> tensor of shape (1, 3, H, W), float32 in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous().to(device)


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """Tensor (1, 3, H, W) or (3, H, W) in [0, 1] -> PIL RGB image (values clamped)."""
    t = tensor.detach()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise NSTError(f"expected one image, got a batch of {t.shape[0]}; index it first.")
        t = t[0]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise NSTError(f"expected shape (1, 3, H, W) or (3, H, W), got {tuple(tensor.shape)}.")
    arr = (t.float().clamp(0, 1) * 255.0 + 0.5).byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr.squeeze(2) if arr.shape[2] == 1 else arr)


def load_tensor(
    source: ImageSource, max_size: int | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """:func:`load_image` then :func:`image_to_tensor`: (1, 3, H, W) float in [0, 1]."""
    return image_to_tensor(load_image(source, max_size), device)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> ImageNet-normalised input for torchvision's VGG."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize`."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x * std + mean


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_image(image: Image.Image | torch.Tensor, path: str | os.PathLike) -> Path:
    """Write an image atomically (temp file, then rename); the format follows the suffix.

    Refuses to overwrite a file that :func:`load_image` read in this process, so an
    output can never replace its own input.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise NSTError(f"{path}: unknown image suffix {path.suffix!r}; use .png or .jpg.")
    if path.resolve() in _inputs_seen:
        raise NSTError(f"{path}: this file was loaded as an input; choose another output name.")
    if isinstance(image, torch.Tensor):
        image = tensor_to_image(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def concat_images(images: Sequence[Image.Image | torch.Tensor], height: int = 256) -> Image.Image:
    """Put images side by side, each resized to ``height`` pixels, on one canvas."""
    pils = [tensor_to_image(i) if isinstance(i, torch.Tensor) else i for i in images]
    pils = [p.resize((max(1, round(p.width * height / p.height)), height)) for p in pils]
    canvas = Image.new("RGB", (sum(p.width for p in pils), height), "white")
    x = 0
    for p in pils:
        canvas.paste(p, (x, 0))
        x += p.width
    return canvas


def show_images(
    images: Sequence[Image.Image | torch.Tensor],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 3.5,
    suptitle: str | None = None,
):
    """Show images in a matplotlib grid with optional titles; returns the figure."""
    import matplotlib.pyplot as plt

    pils = [tensor_to_image(i) if isinstance(i, torch.Tensor) else i for i in images]
    ncols = ncols or len(pils)
    nrows = -(-len(pils) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, img) in enumerate(zip(axes.flat, pils, strict=False)):
        ax.imshow(img)
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
