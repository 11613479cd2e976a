"""Images in and out: load (the formats a course needs, any mode, EXIF-aware), resize,
tensors, save atomically, show.

Tensors follow one convention everywhere: shape (N, C, H, W), float in [0, 1], RGB.
Every input, whatever its type (path, bytes, file object, NumPy array, PIL image, tensor),
goes through one conversion path: :func:`load_image` for pictures, :func:`as_tensor`
when a tensor is wanted; :func:`check_images` checks a batch that functions are given.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BadInputError
from .files import SAVE_SUFFIXES, atomic_write

ImageSource = str | os.PathLike | bytes | BinaryIO | np.ndarray | Image.Image
ImageLike = ImageSource | torch.Tensor

# Pillow picks a decoder from a file's content, not its name: only these are ever tried,
# so PostScript (which can run Ghostscript), SVG, PDF and exotic formats are refused.
# (Pillow's JPEG decoder also opens MPO, the multi-picture JPEG of some cameras.)
# The file names of those formats (SUFFIXES, and SAVE_SUFFIXES written) are in nst_utils.files.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
MAX_PIXELS = 64_000_000  # a 8000 x 8000 photo; bigger is a decompression bomb or a mistake
MAX_SIDE = 20_000  # pixels; a longer side cannot be a picture meant for this course
JPEG_OPTIONS = {"quality": 95, "subsampling": 0}  # keeps brush strokes and colour edges


def describe(source: Any) -> str:
    """How a source is named in messages: its path, its file name, or its type."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


def _check_size(img: Image.Image, name: str) -> None:
    width, height = img.size
    if width < 1 or height < 1 or max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise BadInputError(
            f"{name}: unusable size {width}x{height} pixels (limits: sides 1..{MAX_SIDE}, "
            f"{MAX_PIXELS:,} pixels). Resize it with an image editor first."
        )


def _readable(source: str | os.PathLike | bytes | BinaryIO, name: str) -> BinaryIO | Path:
    """A path or seekable binary stream Pillow can open, after the checks that name causes."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise BadInputError(f"{name}: no such file. Check the path (cwd is {Path.cwd()}).")
        if path.is_dir():
            raise BadInputError(f"{name}: is a folder; pass the path of one image file in it.")
        if not os.access(path, os.R_OK):
            raise BadInputError(f"{name}: permission denied; make the file readable.")
        if path.stat().st_size == 0:
            raise BadInputError(f"{name}: the file is empty (0 bytes); it is no image.")
        return path
    if not hasattr(source, "read"):
        raise BadInputError(f"{name}: not an image source; give a path, bytes or a file object.")
    mode = getattr(source, "mode", "b")
    if isinstance(source, io.TextIOBase) or (isinstance(mode, str) and "b" not in mode):
        raise BadInputError(f"{name}: the file is open in text mode; open it with 'rb'.")
    if not (getattr(source, "seekable", lambda: False)()):
        source = io.BytesIO(source.read())  # pipes and sockets: read once, then seek freely
    pos = source.tell()
    first = source.read(1)
    if not isinstance(first, bytes):
        raise BadInputError(f"{name}: the file object gives text, not bytes; open it with 'rb'.")
    if not first:
        raise BadInputError(f"{name}: the file object is empty (0 bytes left to read).")
    source.seek(pos)
    return source


def _open(source: str | os.PathLike | bytes | BinaryIO, name: str) -> Image.Image:
    stream = _readable(source, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(stream, formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadInputError(
            f"{name}: refused as a decompression bomb ({err}). Downscale the image first."
        ) from err
    except UnidentifiedImageError as err:
        raise BadInputError(
            f"{name}: not an image in a format the course reads ({', '.join(FORMATS)}); "
            "convert it to PNG or JPEG."
        ) from err
    except PermissionError as err:
        raise BadInputError(f"{name}: permission denied; make the file readable.") from err
    except OSError as err:
        raise BadInputError(
            f"{name}: the image data is broken or truncated ({err}). Re-export the file."
        ) from err
    try:
        _check_size(img, name)
        if getattr(img, "is_animated", False):
            img.seek(0)  # GIF/MPO: the first frame
        img.load()
    except BadInputError:
        img.close()
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        img.close()
        raise BadInputError(
            f"{name}: the image data is broken or truncated ({err}). Re-export the file."
        ) from err
    return img


def _from_array(array: np.ndarray, name: str) -> Image.Image:
    """(H, W), (H, W, 1|3|4) uint8 (or uint16, 0 .. 65535; other integers holding
    0 .. 255; bool), or float in [0, 1] -> PIL image."""
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or 0 in arr.shape:
        raise BadInputError(
            f"{name}: an array image must have shape (H, W), (H, W, 3) or (H, W, 4), "
            f"got {arr.shape}."
        )
    if arr.dtype == np.uint8:
        return Image.fromarray(arr)
    if arr.dtype.kind not in "fiub":
        raise BadInputError(f"{name}: array of {arr.dtype} is no image; use uint8 or float.")
    if arr.dtype == np.uint16:
        arr = arr / 65535.0
    elif arr.dtype.kind in "iu":
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high > 255:
            raise BadInputError(
                f"{name}: an array of {arr.dtype} with values {low} .. {high}; integer arrays "
                "must hold 0 .. 255 (uint16: 0 .. 65535). Convert it, e.g. to floats in [0, 1]."
            )
        return Image.fromarray(arr.astype(np.uint8))
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise BadInputError(f"{name}: float arrays must hold finite values in [0, 1].")
    return Image.fromarray((arr * 255 + 0.5).astype(np.uint8))


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    if img.mode in {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}:  # 16/32-bit or float grey
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise BadInputError(f"{name}: a float image with NaN or infinite pixels.")
        if img.mode == "F" and arr.min() >= 0 and arr.max() <= 1:
            top = 1.0  # float images usually hold [0, 1]
        elif img.mode.startswith("I;16") or arr.max() > 255:
            top = 65535.0
        else:
            top = 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or (
        img.mode == "RGB" and "transparency" in img.info
    ):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(source: ImageSource, max_size: int | None = None) -> Image.Image:
    """Any image source -> an upright 8-bit RGB PIL image.

    ``source``: a path (``~`` expanded), bytes, a binary file object (pipes too), a NumPy
    array ((H, W[, 3|4]) uint8, or float in [0, 1]) or a PIL image. Files are decoded only
    as JPEG/MPO, PNG, WebP, BMP, TIFF or GIF (first frame), whatever their name. EXIF
    orientation is applied; grey, palette, alpha (composited on white), CMYK, 16-bit and
    float images become RGB. ``max_size`` resizes so the longest side is at most that many
    pixels. Any problem raises :class:`BadInputError` naming the source.
    """
    name = describe(source)
    if source is None:
        raise BadInputError("no image given (None); pass a path, bytes, an array or an image.")
    if isinstance(source, Image.Image):
        img = source
        _check_size(img, name)
    elif isinstance(source, np.ndarray):
        img = _from_array(source, name)
    elif isinstance(source, torch.Tensor):
        raise BadInputError(f"{name}: a tensor is already decoded; use as_tensor() instead.")
    else:
        img = _open(source, name)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception as err:  # broken EXIF must not stop the course; keep the pixels
        warnings.warn(f"{name}: ignoring unreadable EXIF orientation ({err})", stacklevel=2)
    img = _to_rgb(img, name)
    if max_size is not None:
        img = resize_longest(img, max_size)
    return img


def resize_longest(img: Image.Image, size: int) -> Image.Image:
    """Resize (Lanczos) so the longest side is ``size`` pixels, keeping the aspect ratio."""
    if not isinstance(size, int) or size < 1:
        raise BadInputError(f"size must be a positive number of pixels, got {size!r}.")
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
            raise BadInputError(f"expected one image, got a batch of {t.shape[0]}; index it first.")
        t = t[0]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise BadInputError(f"expected shape (1, 3, H, W) or (3, H, W), got {tuple(tensor.shape)}.")
    arr = (t.float().clamp(0, 1) * 255.0 + 0.5).byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr.squeeze(2) if arr.shape[2] == 1 else arr)


def check_tensor(t: torch.Tensor, name: str = "image") -> torch.Tensor:
    """A (1, 3, H, W) or (3, H, W) float image in [0, 1] -> (1, 3, H, W) float32 on the CPU."""
    if t.device.type == "meta":
        raise BadInputError(f"{name}: a tensor on the 'meta' device holds no values; give one "
                            "with pixels (on the CPU or a GPU).")  # fmt: skip
    if not (t.is_floating_point() or t.dtype == torch.bool):
        raise BadInputError(f"{name}: a {t.dtype} tensor; images are floats in [0, 1] (for "
                            "0 .. 255 values: tensor.float() / 255).")  # fmt: skip
    t = t.detach().float().cpu()
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[:2] != (1, 3) or 0 in t.shape:
        raise BadInputError(f"{name}: a tensor must have shape (1, 3, H, W), got {tuple(t.shape)}.")
    if not torch.isfinite(t).all() or t.min() < -1e-3 or t.max() > 1 + 1e-3:
        raise BadInputError(f"{name}: tensor values must be finite and in [0, 1] (RGB).")
    return t.clamp(0, 1)


def check_images(
    images: object, who: str, min_side: int = 1, *, values: bool = False
) -> torch.Tensor:
    """``images`` if it is an (N, 3, H, W) tensor, N >= 1, with H, W >= ``min_side``, that
    holds values (not on the ``meta`` device); else BadInputError naming ``who``.
    ``values=True`` also checks the values: floats, finite, in [0, 1] (one pass over them)."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise BadInputError(f"{who} takes (N, 3, H, W) image tensors; got {shape}.")
    if images.shape[0] == 0:
        raise BadInputError(f"{who}: an empty batch (N = 0); give at least one image.")
    if images.device.type == "meta":
        raise BadInputError(f"{who}: the images are on the 'meta' device, which holds no "
                            "values; give a tensor with pixels (CPU or GPU).")  # fmt: skip
    if min(images.shape[-2:]) < min_side:
        raise BadInputError(
            f"{who} needs images of at least {min_side}x{min_side} px; got "
            f"{tuple(images.shape[-2:])}. Resize the image up first."
        )
    if values:
        if not images.is_floating_point():
            raise BadInputError(
                f"{who}: a {images.dtype} tensor; images are floats in [0, 1] (for 0 .. 255 "
                "values: images.float() / 255, or load them with nst_utils.as_tensor)."
            )
        if not torch.isfinite(images).all():
            raise BadInputError(f"{who}: the images hold NaN or infinite values.")
        low, high = images.min().item(), images.max().item()
        if low < -1e-3 or high > 1 + 1e-3:
            raise BadInputError(
                f"{who}: image values lie in [{low:.4g}, {high:.4g}]; give RGB in [0, 1]."
            )
    return images


def as_tensor(
    source: ImageLike,
    max_size: int | None = None,
    device: torch.device | str | None = None,
    name: str | None = None,
) -> torch.Tensor:
    """Any image source, or a tensor, -> (1, 3, H, W) float32 in [0, 1].

    Non-tensors go through :func:`load_image`; tensors are checked (shape, range) and, like
    pictures, resized so the longest side is ``max_size`` (bicubic, antialiased).
    """
    name = name or describe(source)
    if not isinstance(source, torch.Tensor):
        return image_to_tensor(load_image(source, max_size), device)
    t = check_tensor(source, name)
    if max_size is not None:
        if not isinstance(max_size, int) or max_size < 1:
            raise BadInputError(f"size must be a positive number of pixels, got {max_size!r}.")
        h, w = t.shape[-2:]
        scale = max_size / max(h, w)
        t = resize_tensor(t, (max(1, round(h * scale)), max(1, round(w * scale))))
    return t.to(device)


def resize_tensor(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> (N, 3, *size), bicubic with antialiasing, clamped."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = torch.nn.functional.interpolate(image, size=size, mode="bicubic", antialias=True)
    return out.clamp(0, 1)


def save_image(image: Image.Image | torch.Tensor, path: str | os.PathLike) -> Path:
    """Write an image atomically (temp file, then rename); the format follows the suffix.

    JPEGs are saved at quality 95 without chroma subsampling, so strokes and colour edges
    survive. A missing folder is created. To protect inputs, check the path first with
    :func:`nst_utils.files.check_output` (the command line does).
    """
    path = Path(path).expanduser()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or path.suffix.lower() not in SAVE_SUFFIXES:
        raise BadInputError(
            f"{path}: unknown image suffix {path.suffix or '(none)'!r}; use .png or .jpg."
        )
    if isinstance(image, torch.Tensor):
        image = tensor_to_image(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **(JPEG_OPTIONS if fmt == "JPEG" else {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
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
    # constrained layout keeps every title (one line or several) and the suptitle clear of
    # the pictures, where tight_layout let long titles run into the row above
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, img) in enumerate(zip(axes.flat, pils, strict=False)):
        ax.imshow(img)
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    return fig
