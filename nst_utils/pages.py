"""Synthetic text pages for the document-enhancement notebook: clean pages with their text,
scan-like degradations and aligned training crops (OCR and its character error rate are in
:mod:`nst_utils.metrics`).

Pages are grey, but they are stored like every image in the course, as (N, 3, H, W) RGB
floats in [0, 1], so the same networks and VGG perceptual losses apply to them unchanged.
Everything random is drawn from generators seeded by a ``seed`` argument: the same seed
gives the same page, pixel for pixel, and no global random state is read or changed.

Why not a degradation library (``augraphy``: heavier, slower, globally seeded; measured in
benchmarks/README.md): :func:`degrade_page` is short, seeded per call and aligned by
construction (``degrade_page(page, seed, rotation=1)`` is the clean page turned exactly as
``degrade_page(page, seed)`` turns it).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import Dataset
from torchvision.transforms.functional import InterpolationMode, gaussian_blur, rotate

from .errors import BadInputError
from .metrics import character_error_rate as character_error_rate  # notebook 06's import
from .metrics import ocr_engine as ocr_engine  # notebook 06's import
from .options import check_number
from .settings import MAX_STRENGTH, PAGE_SIZE

FONT_SIZE = (14, 18)  # pixels, smallest and largest; each page draws one size in between
# TrueType fonts that ship inside matplotlib, so every install has them
FONTS = {
    "sans": "DejaVuSans.ttf",
    "serif": "DejaVuSerif.ttf",
    "mono": "DejaVuSansMono.ttf",
}
WORDS = """
a about above after again against air all almost along also always among an and animal
another answer any are around as ask at away back be because been before began begin being
below between big book both boy but by call came can car carry change children city close
cold come could country cross day did different do does dog done door down draw during each
early earth east eat end enough even ever every example eye face fact fall family far farm
father few field find fire first fish five follow food foot for form found four free friend
from full gave get girl give go good got great green ground group grow hand hard has have he
head hear heard heart heavy help her here high him his hold home horse hot house how however
idea if important in into is island it just keep kind king know land language large last
late later learn leave left less letter life light like line list little live long look made
make man many map mark may me mean measure men might mile mind miss money more morning most
mother mountain move much music must my name near need never new next night no north not
note nothing now number of off often old on once one only open or order other our out over
own page paper part pass people picture place plant play point port power press problem
question quick rain read ready real record red remember rest right river road rock room round
rule run said same saw say school science sea second see seem sentence set several shall she
ship short should show side simple since sing size sleep small snow so some song soon sound
south space stand star start state still stone stood stop story street strong study such sun
sure surface system table take talk teacher tell than that the their them then there these
they thing think this those though thought three through time to together told too took top
toward town tree true try turn under until up upon us use very voice wait walk want warm was
watch water way we week well went were west what wheel when where which while white who whole
why will wind winter with without wood word work world would write year yes yet you young
""".split()  # noqa: SIM905 (a word list reads better as a paragraph)


def _rng(*seeds: int) -> np.random.Generator:
    """A NumPy generator for one use, mixed from ``seeds`` (e.g. page seed and effect index)."""
    return np.random.default_rng(np.random.SeedSequence(seeds))


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise BadInputError(f"seed must be a whole number >= 0, got {seed!r}.")


def _check_size(size: Sequence[int], name: str = "size") -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(s, int) and s >= 48 for s in size):
        raise BadInputError(f"{name} must be (height, width) in whole pixels >= 48, got {size!r}.")
    return int(size[0]), int(size[1])


def _largest_font(size: tuple[int, int]) -> int:
    """The largest font size in pixels that fits a line in the height, a long word in the width."""
    return min(size[0] // 3, size[1] // 8)


def _check_font_size(font_size: int | tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    low, high = (font_size, font_size) if isinstance(font_size, int) else font_size
    largest = _largest_font(size)
    if not 6 <= low <= high <= largest:
        raise BadInputError(
            f"font_size must be pixels (or a (low, high) range) between 6 and {largest} "
            f"for a page of {size[0]} x {size[1]} pixels, got {font_size!r}."
        )
    return low, high


def _check_scale(value: float, name: str) -> float:
    """A degradation strength: 0 (none) .. below MAX_STRENGTH, 1 the default level."""
    return check_number(name, value, low=0, below=MAX_STRENGTH)


def font_path(name: str) -> str:
    """The path of one of :data:`FONTS` (``"sans"``, ``"serif"``, ...) inside matplotlib."""
    if name not in FONTS:
        raise BadInputError(f"font {name!r} is unknown; choose one of {sorted(FONTS)}.")
    return f"{matplotlib.get_data_path()}/fonts/ttf/{FONTS[name]}"


def _words(rng: np.random.Generator) -> Iterator[str]:
    """Words of plausible-looking sentences, without end: numbers, commas, full stops..."""
    while True:
        words = [str(word) for word in rng.choice(WORDS, size=int(rng.integers(4, 13)))]
        if rng.random() < 0.5:  # a number: a year, a count, a decimal, a time or a share
            words[int(rng.integers(len(words)))] = str(
                rng.choice(
                    [
                        f"{rng.integers(1700, 2030)}",
                        f"{rng.integers(2, 1000)}",
                        f"{rng.integers(0, 100)}.{rng.integers(0, 100):02d}",
                        f"{rng.integers(1, 13)}:{rng.integers(0, 60):02d}",
                        f"{rng.integers(1, 100)}%",
                    ]
                )
            )
        for i in range(len(words) - 2):
            if rng.random() < 0.08:
                words[i] += str(rng.choice([",", ",", ";", ":"]))
        if len(words) > 5 and rng.random() < 0.15:
            start = int(rng.integers(1, len(words) - 3))
            words[start] = "(" + words[start]
            words[start + 2] += ")"
        words[0] = words[0].capitalize()
        words[-1] += str(rng.choice([".", ".", ".", ".", "?", "!"]))
        yield from words


def render_page(
    seed: int,
    size: tuple[int, int] = PAGE_SIZE,
    font_size: int | tuple[int, int] = FONT_SIZE,
    fonts: Sequence[str] = tuple(FONTS),
) -> tuple[torch.Tensor, str]:
    """A clean page of text, black on white, and the text it shows.

    ``seed`` picks the words, the font (one of ``fonts``), the font size (a whole number of
    pixels in ``font_size``, or exactly ``font_size``), the margins and the line spacing.
    ``size``: (H, W) pixels. Returns the page as a (1, 3, H, W) float tensor in [0, 1]
    (grey, stored as RGB) and its text, one line of the page per line of the string.
    """
    _check_seed(seed)
    height, width = _check_size(size)
    low, high = _check_font_size(font_size, (height, width))
    if not fonts:
        raise BadInputError(f"fonts must name at least one of {sorted(FONTS)}.")
    rng = _rng(seed)
    font = ImageFont.truetype(
        font_path(str(rng.choice(list(fonts)))), int(rng.integers(low, high + 1))
    )
    margin_x = int(width * rng.uniform(0.04, 0.1))
    margin_y = int(height * rng.uniform(0.04, 0.08))
    ascent, descent = font.getmetrics()
    line_step = int((ascent + descent) * rng.uniform(1.1, 1.5))
    words = _words(rng)
    word = next(words)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    lines: list[str] = []
    for top in range(margin_y, height - margin_y - ascent - descent + 1, line_step):
        line, word = word, next(words)
        while font.getlength(f"{line} {word}") <= width - 2 * margin_x:
            line, word = f"{line} {word}", next(words)
        draw.text((margin_x, top), line, font=font, fill=0)
        lines.append(line)
    tensor = torch.from_numpy(np.asarray(page, dtype=np.float32) / 255.0)
    return tensor.expand(1, 3, height, width).contiguous(), "\n".join(lines)


def _smooth_field(rng: np.random.Generator, size: tuple[int, int], cells: int) -> torch.Tensor:
    """(H, W) smooth random field, zero mean and unit std, with about ``cells`` bumps a side."""
    coarse = torch.from_numpy(rng.standard_normal((1, 1, cells + 3, cells + 3)).astype(np.float32))
    field = F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)[0, 0]
    return (field - field.mean()) / field.std().clamp_min(1e-6)


def _grid(size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W) coordinates y and x, each from -1 to 1."""
    return torch.meshgrid(
        torch.linspace(-1, 1, size[0]), torch.linspace(-1, 1, size[1]), indexing="ij"
    )


def _rotation(page: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """A sheet put on the scanner slightly askew: 1 to 2 degrees per unit of ``amount``."""
    angle = amount * rng.uniform(1.0, 2.0) * rng.choice([-1.0, 1.0])
    return rotate(page, angle, InterpolationMode.BILINEAR, fill=[1.0, 1.0, 1.0])


def _bleed(page: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """The back of the sheet showing through: another page, mirrored, faint and blurred."""
    height, width = page.shape[-2:]
    size = (max(height, 48), max(width, 48))  # render_page's smallest page; cut to fit below
    largest = _largest_font(size)
    font_size = (min(FONT_SIZE[0], largest), min(FONT_SIZE[1], largest))
    back, _ = render_page(int(rng.integers(2**31)), size, font_size)
    back = gaussian_blur(back[0, :, :height, :width].flip(-1), kernel_size=7, sigma=1.5)
    return page * (1 - min(1.0, amount * rng.uniform(0.12, 0.2)) * (1 - back))


def _stains(page: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """One to three brownish blotches with ragged edges and a darker rim (coffee, water)."""
    size = tuple(page.shape[-2:])
    y, x = _grid(size)
    aspect = size[1] / size[0]
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(-1, 1, size=2)
        radius = rng.uniform(0.1, 0.3)
        dist = torch.sqrt((y - cy) ** 2 + ((x - cx) * aspect) ** 2) / radius
        dist = dist * torch.exp(0.25 * _smooth_field(rng, size, 6))  # a ragged outline
        inside = torch.sigmoid((1 - dist) / 0.05)
        rim = torch.exp(-(((dist - 1) / 0.06) ** 2))
        absorb = torch.tensor(rng.uniform([0.15, 0.3, 0.5], [0.25, 0.45, 0.7]), dtype=page.dtype)
        strength = min(1.0, amount * rng.uniform(0.2, 0.4))
        page = page * (1 - strength * (0.6 * inside + 0.4 * rim) * absorb[:, None, None])
    return page


def _paper(page: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """Yellowed paper with fibres and mottling: a tint that takes blue most, and grain."""
    size = tuple(page.shape[-2:])
    loss = rng.uniform([0.0, 0.03, 0.1], [0.03, 0.07, 0.18]) * amount
    tint = torch.tensor(1 - np.minimum(loss, 0.9), dtype=page.dtype)[:, None, None]
    grain = 0.025 * _smooth_field(rng, size, max(size) // 3) + 0.03 * _smooth_field(rng, size, 8)
    return page * tint * (1 - amount * grain.abs())


def _lighting(page: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """Uneven light, as on a phone photo: a gradient, a vignette and maybe a soft shadow."""
    y, x = _grid(tuple(page.shape[-2:]))
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(theta) * x + np.sin(theta) * y + 1) / 2
    dark = rng.uniform(0.15, 0.35) * ramp + rng.uniform(0.1, 0.2) * (x**2 + y**2) / 2
    if rng.random() < 0.5:  # the edge of a shadow crosses the page
        phi = rng.uniform(0, 2 * np.pi)
        edge = np.cos(phi) * x + np.sin(phi) * y - rng.uniform(0.2, 0.8)
        dark = dark + rng.uniform(0.15, 0.35) * torch.sigmoid(edge / rng.uniform(0.05, 0.2))
    return page * (1 - amount * dark).clamp_min(0.05)


def _contrast(page: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """Faded ink and a grey exposure: black lifts towards grey, white drops a little."""
    low = min(0.45, amount * rng.uniform(0.17, 0.28))
    high = max(0.55, 1 - amount * rng.uniform(0.05, 0.13))
    return low + (high - low) * page


def _blur(page: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """Out of focus: a gaussian (sigma 1.25-1.8 px) or a defocus disc (radius 1.7-2.5 px)."""
    if rng.random() < 0.5:
        sigma = amount * rng.uniform(1.25, 1.8)
        half = max(1, int(np.ceil(3 * sigma)))
        t = np.arange(-half, half + 1)
        kernel = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
    else:
        radius = amount * rng.uniform(1.7, 2.5)
        half = int(np.ceil(radius))
        t = np.arange(-half, half + 1)
        kernel = np.clip(radius + 0.5 - np.hypot(t[:, None], t[None, :]), 0, 1)
    weights = torch.tensor(kernel / kernel.sum(), dtype=page.dtype).expand(3, 1, *kernel.shape)
    padded = F.pad(page[None], [half] * 4, mode="replicate")
    return F.conv2d(padded, weights, groups=3)[0]


def _noise(page: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """Sensor noise: gaussian, std 0.045-0.09 per unit of ``amount``, each pixel and channel."""
    sigma = amount * rng.uniform(0.045, 0.09)
    return page + sigma * torch.from_numpy(rng.standard_normal(page.shape).astype(np.float32))


def _jpeg(page: torch.Tensor, amount: float, rng: np.random.Generator) -> torch.Tensor:
    """A real JPEG round trip through Pillow: quality 6-16 at ``amount`` 1, 25-40 at 0.5."""
    quality = max(5, round(100 * rng.uniform(0.25, 0.4) ** (2 * amount)))
    pixels = (page.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(decoded).permute(2, 0, 1)


_EFFECTS: dict[str, Callable[[torch.Tensor, float, np.random.Generator], torch.Tensor]] = {
    "rotation": _rotation,
    "bleed": _bleed,
    "stains": _stains,
    "paper": _paper,
    "lighting": _lighting,
    "contrast": _contrast,
    "blur": _blur,
    "noise": _noise,
    "jpeg": _jpeg,
}
DEGRADATIONS = tuple(_EFFECTS)  # in the order degrade_page applies them: the sheet, then the camera


def degrade_page(
    clean: torch.Tensor, seed: int, strength: float = 1.0, **which: float
) -> torch.Tensor:
    """``clean`` as a worn page, scanned or photographed, with the effects in
    :data:`DEGRADATIONS`.

    ``clean``: (N, 3, H, W) float in [0, 1]. ``strength`` scales every effect: 1 is the
    default level (a person still reads the text, OCR errors rise clearly), 0 changes nothing.
    ``which`` picks effects and scales each: ``degrade_page(page, 0, blur=2, noise=1)``
    applies only those two, blur twice as hard; without ``which``, all of them at 1. Each
    effect on image n draws from its own generator seeded with (seed, n, effect), so the
    blur of a page is the same whichever other effects are on. Returns a new tensor, same
    shape, in [0, 1].
    Runs on the CPU, about 0.1 s for a 512 x 384 page.
    """
    _check_seed(seed)
    if not isinstance(clean, torch.Tensor) or clean.dim() != 4 or clean.shape[1] != 3:
        shape = tuple(clean.shape) if isinstance(clean, torch.Tensor) else type(clean).__name__
        raise BadInputError(f"clean must be an (N, 3, H, W) tensor in [0, 1], got {shape}.")
    if not (torch.isfinite(clean).all() and clean.min() >= 0 and clean.max() <= 1):
        raise BadInputError("clean must hold finite values in [0, 1]; clamp or rescale it first.")
    unknown = sorted(set(which) - set(DEGRADATIONS))
    if unknown:
        raise BadInputError(f"unknown degradation {unknown}; choose from {list(DEGRADATIONS)}.")
    strength = _check_scale(strength, "strength")
    scales = {
        name: strength * _check_scale(which.get(name, 0 if which else 1), name)
        for name in DEGRADATIONS
    }
    out = []
    for n, image in enumerate(clean.detach().float().cpu()):
        for k, name in enumerate(DEGRADATIONS):
            if scales[name] > 0:
                image = _EFFECTS[name](image, scales[name], _rng(seed, n, k)).clamp(0, 1)
        out.append(image)
    return torch.stack(out).to(clean.device, clean.dtype)


degrade = degrade_page  # notebook 06's name


class PageCrops(Dataset):
    """(clean, degraded) crops of synthetic pages, for training an enhancement network.

    Item ``index`` renders a page (``page_size`` and ``font_size`` as in :func:`render_page`),
    degrades it with :func:`degrade_page` at ``strength`` and cuts the same ``crop`` x ``crop``
    square, centred on a random piece of ink, out of both: two (3, crop, crop) floats in
    [0, 1], always the same for the same (seed, index). The clean crop is turned like the
    degraded one, so the pair is aligned pixel for pixel: the network learns to clean, not
    to straighten. About 0.1 s an item: use ``DataLoader(..., num_workers=2)`` or more.
    """

    def __init__(
        self,
        length: int,
        crop: int = 128,
        seed: int = 0,
        strength: float = 1.0,
        page_size: tuple[int, int] = PAGE_SIZE,
        font_size: int | tuple[int, int] = FONT_SIZE,
    ) -> None:
        _check_seed(seed)
        height, width = _check_size(page_size, "page_size")
        _check_font_size(font_size, (height, width))
        _check_scale(strength, "strength")
        if not isinstance(length, int) or length < 1:
            raise BadInputError(f"length must be a whole number of crops >= 1, got {length!r}.")
        if not isinstance(crop, int) or not 8 <= crop <= min(height, width):
            raise BadInputError(
                f"crop must be whole pixels between 8 and {min(height, width)} (the page's "
                f"shorter side), got {crop!r}."
            )
        self.length, self.crop, self.seed = length, crop, seed
        self.strength, self.page_size, self.font_size = strength, (height, width), font_size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} is out of range for {self.length} crops.")
        rng = _rng(self.seed, index)
        page_seed = int(rng.integers(2**31))
        page, _ = render_page(page_seed, self.page_size, self.font_size)
        degraded = degrade_page(page, page_seed, self.strength)[0]
        clean = degrade_page(page, page_seed, self.strength, rotation=1)[0]
        ink = torch.nonzero(clean[0] < 0.5)
        centre = ink[int(rng.integers(len(ink)))] if len(ink) else torch.tensor(self.page_size) // 2
        top, left = (
            int(min(max(int(c) - self.crop // 2, 0), side - self.crop))
            for c, side in zip(centre, self.page_size, strict=True)
        )
        window = (..., slice(top, top + self.crop), slice(left, left + self.crop))
        return clean[window], degraded[window]
