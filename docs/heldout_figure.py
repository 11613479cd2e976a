"""Draw the README's figure of the shipped style models on photos no model saw in training.

    python docs/heldout_figure.py                      # writes docs/fast_style_heldout.jpg
    python docs/heldout_figure.py --size 512 -o fig.jpg
    python docs/heldout_figure.py --multistyle models/four_styles_lite.pth \\
        -o docs/four_styles_heldout.jpg

One row per model (``models/*.pth`` of kind fast_style, or ``--models``; with
``--multistyle``, one row per style of that multi-style model), its painting
first (from ``data/styles``, the model's record names it), then one column per photo:
``data/content/astronaut.jpg`` (a person), ``coffee.jpg`` and ``data/test_photos``. None of
them was in the shipped models' training photos (``models/README.md``). Each photo is
stylised at ``--size`` px (longest side), the size the README speaks of, then every picture
is scaled to one row height.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageOps

from nst_utils import fast_style, multistyle
from nst_utils.checkpoints import read_file
from nst_utils.images import as_tensor, tensor_to_image
from nst_utils.networks import prepare_for_inference
from nst_utils.paths import REPO_ROOT

PHOTOS = ("content/astronaut.jpg", "content/coffee.jpg", "test_photos/bridge.jpg",
          "test_photos/friends.jpg")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="photos' longest side, px")
    parser.add_argument("--height", type=int, default=200, help="row height in the figure, px")
    parser.add_argument("--models", nargs="*", type=Path, help="default: every style model")
    parser.add_argument("--multistyle", type=Path, help="a multi-style model: a row per style")
    parser.add_argument(
        "-o", "--output", type=Path, default=REPO_ROOT / "docs" / "fast_style_heldout.jpg"
    )
    args = parser.parse_args(argv)
    models = args.models or sorted(
        p for p in (REPO_ROOT / "models").glob("*.pth") if read_file(p)["kind"] == fast_style.KIND
    )
    photos = [as_tensor(REPO_ROOT / "data" / name, args.size) for name in PHOTOS]
    blank = torch.ones(1, 3, args.height, args.height)  # above the paintings' column
    rows = [[blank, *photos]]
    styles = REPO_ROOT / "data" / "styles"
    if args.multistyle:
        net, record = multistyle.load(args.multistyle)
        models = record["extra"]["styles"]
        for index, name in enumerate(models):
            with torch.no_grad():
                pictures = [multistyle.stylize_tensor(net, p, index) for p in photos]
            rows.append([as_tensor(styles / name, 512), *pictures])
    for path in [] if args.multistyle else models:
        net, record = fast_style.load(path)
        net = prepare_for_inference(net)
        painting = as_tensor(styles / record["config"]["style"], 512)
        with torch.no_grad():
            rows.append([painting, *(fast_style.stylize_tensor(net, p) for p in photos)])
    pictures = [[tensor_to_image(t) for t in row] for row in rows]
    widths = [args.height] + [round(p.width * args.height / p.height) for p in pictures[0][1:]]
    gap = 4
    width = sum(widths) + gap * (len(widths) - 1)
    sheet = Image.new("RGB", (width, len(rows) * (args.height + gap) - gap), "white")
    for r, row in enumerate(pictures):
        x = 0
        for picture, width in zip(row, widths, strict=True):
            # the paintings are cropped to a square from their centre; photos are scaled
            picture = ImageOps.fit(picture, (width, args.height), Image.Resampling.LANCZOS)
            sheet.paste(picture, (x, r * (args.height + gap)))
            x += width + gap
    sheet.save(args.output, quality=88)
    print(f"wrote {args.output}: {len(models)} rows x {len(photos)} photos")


if __name__ == "__main__":
    main()
