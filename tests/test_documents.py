"""Document enhancement (nst_utils.documents): network, loss, training, model files, scores."""

import math
import warnings

import pytest
import torch
from torch import nn

from nst_utils import documents, fast_style
from nst_utils.checkpoints import save_model
from nst_utils.documents import (
    HELDOUT_SEED,
    DocumentConfig,
    build_network,
    enhance,
    evaluate,
    heldout_page,
    image_quality,
    make_loss,
)
from nst_utils.errors import BadInputError, CheckpointError
from nst_utils.metrics import ocr_engine
from nst_utils.pages import render_page
from nst_utils.paths import REPO_ROOT
from nst_utils.settings import SIZES

SMALL_PAGE = (160, 160)  # pixels: the smallest page the default font sizes fit


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def tiny_config(**changes) -> DocumentConfig:
    settings = dict(steps=16, batch_size=2, crop_size=32, lr=3e-3, weights="random",
                    network="lite", log_every=1, sample_every=8, checkpoint_every=8)  # fmt: skip
    return DocumentConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short training run shared by the tests below: (config, model path, network, result)."""
    config = tiny_config()
    path = tmp_path_factory.mktemp("doc") / "document.pth"
    net, result = documents.train(config, path, progress=False)
    return config, path, net, result


@pytest.mark.parametrize("size", [(37, 53), (64, 101), (5, 7)])
@pytest.mark.parametrize("network", list(SIZES))
def test_enhance_keeps_any_page_size(size, network):
    net = build_network(DocumentConfig(network=network)).eval()
    page = torch.rand(2, 3, *size)
    out = enhance(net, page)
    assert out.shape == page.shape
    assert out.min() >= 0 and out.max() <= 1


def test_enhance_takes_an_image_file(tmp_path):
    from PIL import Image

    Image.new("L", (45, 31), 200).save(tmp_path / "page.png")
    out = enhance(build_network(DocumentConfig()).eval(), tmp_path / "page.png")
    assert out.shape == (1, 3, 31, 45)


@pytest.mark.slow
def test_loss_terms_are_zero_for_a_perfect_output_and_pixel_loss_matches_torch():
    clean = heldout_page(0, size=SMALL_PAGE)[0]
    degraded = heldout_page(0, size=SMALL_PAGE)[1]
    for kind, reference in (("l1", nn.functional.l1_loss), ("mse", nn.functional.mse_loss)):
        loss = make_loss(tiny_config(pixel_loss=kind, pixel_weight=2.0))
        perfect, worse = loss(clean, clean), loss(degraded, clean)
        assert set(perfect) == {"pixel", "perceptual", "tv"}
        assert perfect["pixel"] == 0 and perfect["perceptual"] < 1e-6
        assert torch.isclose(worse["pixel"], 2 * reference(degraded, clean))
        assert worse["perceptual"] > 0.1  # relative: about 1 for a badly degraded page


def test_each_loss_alone_keeps_only_its_own_term():
    """Notebook 06, Exercise 2 trains with each term alone: a weight of 0 removes its term
    and leaves the other exactly as in the sum."""
    clean, degraded, _ = heldout_page(0, size=SMALL_PAGE)
    both = make_loss(tiny_config())(degraded, clean)
    pixel_only = make_loss(tiny_config(feature_weight=0.0))(degraded, clean)
    perceptual_only = make_loss(tiny_config(pixel_weight=0.0))(degraded, clean)
    assert pixel_only["perceptual"] == 0 and torch.equal(pixel_only["pixel"], both["pixel"])
    assert perceptual_only["pixel"] == 0
    assert torch.allclose(perceptual_only["perceptual"], both["perceptual"])


def test_config_refuses_bad_settings():
    for changes, word in [
        ({"pixel_loss": "l3"}, "pixel_loss"),
        ({"feature_layers": {"relu9_9": 1.0}}, "relu9_9"),
        ({"pixel_weight": 0.0, "feature_weight": 0.0}, "nothing to train"),
        ({"network": "huge"}, "network"),
        ({"strength": -1.0}, "strength"),
        ({"crop_size": 1000}, "crop_size"),
    ]:
        with pytest.raises(BadInputError, match=word):
            tiny_config(**changes).check()


@pytest.mark.slow
def test_training_loss_falls_and_writes_samples(trained):
    config, path, _, result = trained
    totals = [terms["total"] for terms in result.history]
    assert len(totals) == config.steps
    first, last = sum(totals[:4]) / 4, sum(totals[-4:]) / 4
    assert last < 0.8 * first, f"loss did not fall: {first:.3f} -> {last:.3f}"
    assert set(result.history[0]) == {"pixel", "perceptual", "tv", "total"}
    assert sorted(p.name for p in (path.with_suffix(".run") / "samples").iterdir()) == [
        "step_000008.png",
        "step_000016.png",
    ]


@pytest.mark.slow
def test_model_round_trip(trained):
    config, path, net, _ = trained
    loaded, record = documents.load(path)
    page = heldout_page(1, size=SMALL_PAGE)[1]
    assert torch.equal(enhance(net, page), enhance(loaded, page))
    assert record["kind"] == "document" and record["config"]["crop_size"] == config.crop_size
    assert "synthetic pages" in record["extra"]["data"]


@pytest.mark.slow
def test_loading_refuses_other_kinds(trained, tmp_path):
    _, path, net, _ = trained
    with pytest.raises(CheckpointError, match="document enhancement model"):
        fast_style.load(path)
    style_model = save_model(tmp_path / "style.pth", net, kind="fast_style", config={})
    with pytest.raises(CheckpointError, match="fast style transfer model"):
        documents.load(style_model)


def test_heldout_pages_are_fixed_aligned_and_outside_the_training_seeds():
    assert HELDOUT_SEED >= 2**31  # PageCrops draws page seeds below 2**31
    clean, degraded, text = heldout_page(2, size=SMALL_PAGE)
    again = heldout_page(2, size=SMALL_PAGE)
    assert torch.equal(clean, again[0]) and torch.equal(degraded, again[1]) and text == again[2]
    straight, page_text = render_page(HELDOUT_SEED + 2, SMALL_PAGE)
    assert text == page_text
    # the clean target is turned like the degraded page: it matches it better than the straight one
    assert image_quality(degraded, clean)["ssim"] > image_quality(degraded, straight)["ssim"]


def test_image_quality_values():
    target = torch.full((1, 3, 24, 24), 0.5)
    scores = image_quality(target + 0.1, target)  # MSE 0.01: PSNR = 10 log10(1 / 0.01) = 20 dB
    assert math.isclose(scores["psnr"], 20.0, rel_tol=1e-4)
    assert math.isclose(image_quality(target, target)["ssim"], 1.0, rel_tol=1e-4)


@pytest.mark.slow
def test_evaluate_identity_network_scores_the_degraded_pages():
    result = evaluate(nn.Identity(), pages=2, size=SMALL_PAGE, progress=False)
    assert [row["page"] for row in result.rows] == [0, 1]
    for row in result.rows:
        clean, degraded, _ = heldout_page(row["page"], size=SMALL_PAGE)
        expected = image_quality(degraded, clean)
        assert row["psnr_before"] == row["psnr_after"] == pytest.approx(expected["psnr"])
        assert row["ssim_before"] == row["ssim_after"] == pytest.approx(expected["ssim"])
    mean = result.mean
    assert mean["psnr_before"] == pytest.approx(sum(r["psnr_before"] for r in result.rows) / 2)
    assert "cer_before" not in mean and "PSNR" in result.table()


@pytest.mark.slow
def test_evaluate_with_ocr_identity_network_keeps_the_error_rate():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ocr = ocr_engine()
    if ocr is None:
        pytest.skip("no OCR engine: pip install rapidocr onnxruntime (or 'nst-course[ocr]')")
    result = evaluate(nn.Identity(), pages=1, size=(200, 240), ocr=ocr, progress=False)
    row = result.rows[0]
    assert 0 <= row["cer_before"] == row["cer_after"]
    assert "character error rate" in result.table()


@pytest.mark.slow
def test_shipped_model_restores_held_out_pages():
    """The model in models/ (notebook 06, models/README.md): small, and on two held-out
    pages far closer to the clean page than the degraded input (measured on ten: PSNR
    10.1 -> 19.3 dB, SSIM 0.49 -> 0.84)."""
    path = REPO_ROOT / "models" / "document_medium.pth"
    assert path.stat().st_size < 1_000_000, f"{path.name} is larger than 1 MB"
    net, record = documents.load(path)
    assert record["config"]["network"] == "medium"
    scores = evaluate(net, 2, progress=False).mean
    assert scores["psnr_after"] > scores["psnr_before"] + 6, scores
    assert scores["ssim_after"] > scores["ssim_before"] + 0.25, scores
