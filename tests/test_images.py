import io
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from nst_utils import (
    NSTError,
    as_tensor,
    concat_images,
    image_to_tensor,
    load_image,
    resize_longest,
    save_image,
    tensor_to_image,
)
from nst_utils.images import MAX_SIDE


def gradient_image(width: int = 40, height: int = 20) -> Image.Image:
    return Image.fromarray(
        np.array(
            [[(x * 6 % 256, y * 12 % 256, 100) for x in range(width)] for y in range(height)],
            dtype=np.uint8,
        )
    )


def png_with_header(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header claims the given size (the data is a 1x1 image)."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data[12:29]  # chunk type + 13 bytes of header data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def test_tensor_round_trip_is_exact():
    img = gradient_image()
    t = image_to_tensor(img)
    assert t.shape == (1, 3, 20, 40) and t.dtype == torch.float32
    assert t.min() >= 0.0 and t.max() <= 1.0
    assert np.array_equal(np.asarray(tensor_to_image(t)), np.asarray(img))


def test_tensor_to_image_clamps_and_checks_shape():
    t = torch.full((1, 3, 2, 2), 2.0)
    t[..., 0, 0] = -1.0
    img = tensor_to_image(t)
    assert img.getpixel((0, 0)) == (0, 0, 0) and img.getpixel((1, 1)) == (255, 255, 255)
    with pytest.raises(NSTError, match="batch of 2"):
        tensor_to_image(torch.rand(2, 3, 4, 4))
    with pytest.raises(NSTError, match="shape"):
        tensor_to_image(torch.rand(5, 4, 4))


def test_load_from_path_and_file_object(tmp_path):
    path = tmp_path / "g.png"
    gradient_image().save(path)
    assert load_image(path).size == (40, 20)
    assert load_image(str(path)).mode == "RGB"
    with open(path, "rb") as f:
        assert np.array_equal(np.asarray(load_image(f)), np.asarray(gradient_image()))
    assert as_tensor(path, max_size=10).shape == (1, 3, 5, 10)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    gradient_image(40, 20).save(path, exif=exif)
    assert load_image(path).size == (20, 40)


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("L", 128, (128, 128, 128)),
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("RGBA", (255, 0, 0, 0), (255, 255, 255)),  # fully transparent -> white background
        ("LA", (0, 255), (0, 0, 0)),
        ("I;16", 65535, (255, 255, 255)),
        ("I;16", 32896, (128, 128, 128)),
    ],
)
def test_modes_become_rgb(tmp_path, mode, value, expected):
    suffix = ".jpg" if mode == "CMYK" else ".png"
    path = tmp_path / f"img{suffix}"
    Image.new(mode, (4, 4), value).save(path)
    img = load_image(path)
    assert img.mode == "RGB"
    assert all(abs(a - b) <= 2 for a, b in zip(img.getpixel((1, 1)), expected, strict=True))


def test_palette_image_becomes_rgb(tmp_path):
    path = tmp_path / "p.png"
    gradient_image().convert("P").save(path)
    assert load_image(path).mode == "RGB"


def test_resize_longest_keeps_aspect():
    assert resize_longest(gradient_image(40, 20), 10).size == (10, 5)
    assert resize_longest(gradient_image(20, 40), 10).size == (5, 10)
    with pytest.raises(NSTError, match="positive"):
        resize_longest(gradient_image(), 0)


def test_missing_file(tmp_path):
    with pytest.raises(NSTError, match=r"nope\.jpg: no such file"):
        load_image(tmp_path / "nope.jpg")


def test_directory(tmp_path):
    with pytest.raises(NSTError, match="is a folder"):
        load_image(tmp_path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is text, not a picture")
    with pytest.raises(NSTError, match=r"notes\.jpg: not an image in a format"):
        load_image(path)


def test_truncated_file(tmp_path):
    full = tmp_path / "full.jpg"
    gradient_image(200, 200).save(full, quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[:600])
    with pytest.raises(NSTError, match=r"cut\.jpg: the image data is broken or truncated"):
        load_image(cut)


def test_zero_size_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(NSTError, match=r"empty\.png: the file is empty"):
        load_image(path)
    with pytest.raises(NSTError, match="empty"):
        load_image(io.BytesIO(b""))


def test_decompression_bomb(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_header(19_000, 19_000))  # 361 megapixels claimed
    with pytest.raises(NSTError, match=r"bomb\.png: refused as a decompression bomb"):
        load_image(path)


def test_absurd_size(tmp_path):
    path = tmp_path / "strip.png"
    path.write_bytes(png_with_header(MAX_SIDE + 1, 2))
    with pytest.raises(NSTError, match=r"strip\.png: unusable size 20001x2"):
        load_image(path)


def test_save_is_atomic_and_round_trips(tmp_path):
    out = save_image(image_to_tensor(gradient_image()), tmp_path / "sub" / "out.png")
    assert np.array_equal(np.asarray(load_image(out)), np.asarray(gradient_image()))
    assert [p.name for p in out.parent.iterdir()] == ["out.png"]  # no temp files left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_save_rejects_unknown_suffix(tmp_path):
    with pytest.raises(NSTError, match="unknown image suffix"):
        save_image(gradient_image(), tmp_path / "out.xyz")


def test_concat_images_side_by_side():
    canvas = concat_images([gradient_image(40, 20), torch.rand(1, 3, 10, 10)], height=20)
    assert canvas.size == (40 + 20, 20)
