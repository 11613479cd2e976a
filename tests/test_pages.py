"""Synthetic pages, their degradations and training crops (nst_utils.pages)."""

import pytest
import torch

from nst_utils import pages
from nst_utils.errors import BadInputError
from nst_utils.pages import DEGRADATIONS, PageCrops, degrade_page, render_page

SIZE = (128, 96)  # small pages keep the tests fast


def ink_box(page: torch.Tensor) -> tuple[int, int, int, int]:
    """Top, left, bottom, right of the pixels darker than mid-grey in a (1, 3, H, W) page."""
    rows, cols = torch.nonzero(page[0, 0] < 0.5, as_tuple=True)
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def detail(image: torch.Tensor) -> float:
    """High-frequency energy: the mean squared difference of horizontal neighbours."""
    return float(((image[..., 1:] - image[..., :-1]) ** 2).mean())


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def page() -> torch.Tensor:
    return render_page(3, SIZE, font_size=10)[0]


def test_render_page_same_seed_same_page_and_text():
    first, text = render_page(5, SIZE, font_size=(8, 12))
    again, text_again = render_page(5, SIZE, font_size=(8, 12))
    other, other_text = render_page(6, SIZE, font_size=(8, 12))
    assert torch.equal(first, again) and text == text_again
    assert not torch.equal(first, other) and text != other_text
    assert first.shape == (1, 3, *SIZE) and first.dtype == torch.float32
    assert first.min() == 0 and first.max() == 1  # black ink on white paper
    assert torch.equal(first[:, 0], first[:, 1]) and torch.equal(first[:, 0], first[:, 2])


def test_render_page_text_has_lines_digits_and_punctuation():
    texts = [render_page(seed, (256, 192), font_size=12)[1] for seed in range(4)]
    assert all(text.count("\n") >= 5 for text in texts)
    joined = "".join(texts)
    assert any(c.isdigit() for c in joined) and all(mark in joined for mark in ".,?")


def test_render_page_follows_font_size():
    _, small = render_page(0, (256, 192), font_size=10)
    _, large = render_page(0, (256, 192), font_size=20)
    assert small.count("\n") > large.count("\n")
    assert len(small) > 2 * len(large)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"seed": 0, "size": (10, 10)},
        {"seed": 0, "font_size": (12, 8)},
        {"seed": 0, "font_size": 13},  # too large for a page 96 pixels wide
        {"seed": 0, "fonts": ("comic",)},
        {"seed": 0, "fonts": ()},
    ],
)
def test_render_page_refuses_bad_arguments(kwargs):
    with pytest.raises(BadInputError):
        render_page(**{"size": SIZE, "font_size": 10, **kwargs})


def test_degrade_is_notebook_06s_name_for_degrade_page():
    assert pages.degrade is degrade_page


def test_degrade_is_deterministic_and_keeps_shape_and_range(page):
    batch = page.repeat(2, 1, 1, 1)
    out = degrade_page(batch, 7)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, degrade_page(batch, 7))
    assert not torch.equal(out, degrade_page(batch, 8))
    assert not torch.equal(out[0], out[1])  # each image of a batch has its own draw
    assert torch.equal(batch, page.repeat(2, 1, 1, 1))  # the input is left alone


def test_degrade_strength_zero_changes_nothing(page):
    assert torch.equal(degrade_page(page, 0, strength=0), page)


def test_degrade_effect_is_the_same_whatever_else_is_on(page):
    # each effect draws from its own generator: blur first, then noise and JPEG on the blurred
    # pages, gives what all three at once give; a shared generator would shift the later draws
    batch = page.repeat(2, 1, 1, 1)
    blurred = degrade_page(batch, 1, blur=1)
    together = degrade_page(batch, 1, blur=1, noise=1, jpeg=1)
    assert not torch.equal(together, blurred)
    assert torch.equal(together, degrade_page(blurred, 1, noise=1, jpeg=1))


def test_degrade_refuses_bad_arguments(page):
    with pytest.raises(BadInputError, match="smudge"):
        degrade_page(page, 0, smudge=1)
    with pytest.raises(BadInputError, match="strength"):
        degrade_page(page, 0, strength=-1)
    with pytest.raises(BadInputError, match="blur"):
        degrade_page(page, 0, blur="yes")
    with pytest.raises(BadInputError, match=r"\(N, 3, H, W\)"):
        degrade_page(page[0], 0)
    with pytest.raises(BadInputError, match=r"\[0, 1\]"):
        degrade_page(page * 255, 0)


def test_every_degradation_changes_the_page(page):
    for name in DEGRADATIONS:
        assert not torch.equal(degrade_page(page, 0, **{name: 1}), page), name


def test_blur_removes_fine_detail(page):
    assert detail(degrade_page(page, 0, blur=1)) < 0.6 * detail(page)


def test_noise_roughens_white_paper():
    white = torch.ones(1, 3, *SIZE)
    assert degrade_page(white, 0, noise=1).std() > 0.01


def test_lighting_makes_white_paper_uneven_and_darker():
    lit = degrade_page(torch.ones(1, 3, *SIZE), 0, lighting=1)
    assert lit.max() <= 1 and lit.max() - lit.min() > 0.1


def test_paper_yellows_more_in_blue_than_in_red():
    paper = degrade_page(torch.ones(1, 3, *SIZE), 0, paper=1)
    assert paper[:, 2].mean() < paper[:, 0].mean() - 0.03


def test_contrast_lifts_black_and_dims_white(page):
    faded = degrade_page(page, 0, contrast=1)
    assert faded.min() > 0.1 and faded.max() < 0.97


def test_stains_and_bleed_darken_parts_of_white_paper():
    white = torch.ones(1, 3, *SIZE)
    for name in ("stains", "bleed"):
        marked = degrade_page(white, 0, **{name: 1})
        assert marked.min() < 0.97 and (marked == 1).float().mean() > 0.05, name
    assert degrade_page(white, 0, bleed=1).min() > 0.6  # the back shows through, faintly


def test_jpeg_changes_the_page_by_a_bounded_amount(page):
    difference = (degrade_page(page, 0, jpeg=1) - page).abs()
    assert 0.005 < difference.mean() < 0.05


def test_rotation_moves_the_text_but_keeps_the_ink(page):
    turned = degrade_page(page, 0, rotation=3)  # 3 to 6 degrees
    assert ink_box(turned) != ink_box(page)
    ink = (1 - page).sum()
    assert abs((1 - turned).sum() - ink) < 0.1 * ink  # some may turn off the page
    assert turned[..., 0, 0].min() > 0.99  # corners filled with white paper


def test_page_crops_are_deterministic_aligned_and_inked():
    crops = PageCrops(length=3, crop=48, seed=2, page_size=SIZE, font_size=10)
    clean, degraded = crops[1]
    assert len(crops) == 3 and clean.shape == degraded.shape == (3, 48, 48)
    assert degraded.min() >= 0 and degraded.max() <= 1
    again_clean, again_degraded = PageCrops(
        length=3, crop=48, seed=2, page_size=SIZE, font_size=10
    )[1]
    assert torch.equal(clean, again_clean) and torch.equal(degraded, again_degraded)
    assert not torch.equal(clean, crops[2][0])
    assert (clean < 0.5).any()  # the crop holds text
    ink = 1 - clean[0].flatten()
    dark = 1 - degraded[0].flatten()
    assert torch.corrcoef(torch.stack([ink, dark]))[0, 1] > 0.5  # pixel-aligned pair
    with pytest.raises(IndexError):
        crops[3]


def test_page_crops_refuse_bad_sizes():
    with pytest.raises(BadInputError, match="crop"):
        PageCrops(length=1, crop=200, page_size=SIZE, font_size=10)
    with pytest.raises(BadInputError, match="length"):
        PageCrops(length=0)
    with pytest.raises(BadInputError, match="font_size"):
        PageCrops(length=1, page_size=SIZE)  # the default font is too large for it
    with pytest.raises(BadInputError, match="strength"):
        PageCrops(length=1, strength=-1)
