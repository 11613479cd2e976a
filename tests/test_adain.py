"""AdaIN (nst_utils.adain) with random VGG16 weights: the layer gives the style's
statistics, alpha 0 keeps the content, blends and masks are region-wise AdaIN, bad controls
are refused in one line, training learns, resumes exactly (and refuses changed inputs), and
a model file holds the decoder and the identity of its VGG weights, not the encoder."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from nst_utils import BadInputError, CheckpointError, fast_style
from nst_utils.adain import (
    AdaINConfig,
    AdaINNet,
    Decoder,
    StyleStats,
    adain,
    load,
    style_stats,
    stylize_tensor,
    stylized_features,
    train,
)
from nst_utils.color import match_mean_and_covariance, preserve_luminance
from nst_utils.losses import PerceptualLoss, feature_stats
from nst_utils.models import VGGFeatures, load_vgg_state
from nst_utils.networks import count_parameters, prepare_for_inference
from nst_utils.training import initialized

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**changes) -> AdaINConfig:
    base = dict(steps=6, batch_size=2, crop_size=32, weights="random", arch="vgg16",
                log_every=1, sample_every=3, checkpoint_every=3, device="cpu", lr=1e-3,
                loss_precision="float32")  # fmt: skip
    return AdaINConfig(**(base | changes))


@pytest.fixture(scope="module")
def net() -> AdaINNet:
    encoder = VGGFeatures(["relu4_1"], arch="vgg16", weights="random")
    return AdaINNet(encoder, initialized(lambda: Decoder("vgg16"), 0)).eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Five photo-like images and three striped styles, in two folders."""
    root = tmp_path_factory.mktemp("adain")
    rng = np.random.default_rng(0)
    for folder, count in (("photos", 5), ("styles", 3)):
        (root / folder).mkdir()
        for i in range(count):
            if folder == "photos":
                low = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
                image = Image.fromarray(low).resize((80, 60), Image.BICUBIC)
            else:
                wave = np.sin(np.arange(64) * (0.3 + 0.4 * i))[None, :, None] * 0.5 + 0.5
                image = Image.fromarray(
                    (np.repeat(wave * rng.random(3), 64, 0) * 255).astype(np.uint8)
                )
            image.save(root / folder / f"{folder}{i}.png")
    return root / "photos", root / "styles"


def test_the_adain_layer_gives_the_style_statistics():
    content = torch.randn(2, 8, 6, 7) * 3 + 1
    mean, std = torch.randn(2, 8), torch.rand(2, 8) + 0.5
    out_mean, out_std = feature_stats(adain(content, mean, std))
    assert torch.allclose(out_mean, mean, atol=1e-5)
    assert torch.allclose(out_std, std, atol=1e-4)


def test_the_decoder_mirrors_the_encoder():
    assert count_parameters(Decoder("vgg19")) == 3_505_219
    features = torch.rand(1, 512, 3, 5)
    assert Decoder("vgg16")(features).shape == (1, 3, 24, 40)


def test_alpha_zero_gives_the_content_features_and_alpha_one_adain():
    content = torch.randn(2, 512, 4, 5)
    styles = StyleStats(torch.randn(1, 512), torch.rand(1, 512) + 0.1)
    everywhere = torch.ones(1, 1, 1, 1)
    assert torch.equal(stylized_features(content, styles, everywhere, alpha=0), content)
    full = stylized_features(content, styles, everywhere, alpha=1)
    assert torch.allclose(full, adain(content, styles.mean, styles.std), atol=1e-5)
    half = stylized_features(content, styles, everywhere, alpha=0.5)
    assert torch.allclose(half, (full + content) / 2, atol=1e-5)


def test_interpolation_is_adain_with_mixed_statistics():
    content = torch.randn(1, 512, 4, 5)
    styles = StyleStats(torch.randn(2, 512), torch.rand(2, 512) + 0.1)
    weights = torch.tensor([0.3, 0.7]).view(1, 2, 1, 1)
    mixed = adain(content, weights.flatten() @ styles.mean, weights.flatten() @ styles.std)
    assert torch.allclose(stylized_features(content, styles, weights), mixed, atol=1e-5)


def test_a_mask_applies_adain_per_region():
    content = torch.randn(1, 512, 4, 6)
    styles = StyleStats(torch.randn(2, 512), torch.rand(2, 512) + 0.1)
    regions = torch.zeros(1, 2, 4, 6)
    regions[:, 0, :, :3], regions[:, 1, :, 3:] = 1, 1  # left: style 0, right: style 1
    t = stylized_features(content, styles, regions)
    for k, cols in ((0, slice(0, 3)), (1, slice(3, 6))):
        mean, std = feature_stats(t[..., cols])
        assert torch.allclose(mean, styles.mean[k : k + 1], atol=1e-4)
        assert torch.allclose(std, styles.std[k : k + 1], atol=1e-3)


def test_stylize_sizes_controls_and_cached_statistics(net):
    photos = torch.rand(2, 3, 37, 45)
    styles = [torch.rand(1, 3, 40, 40), torch.rand(1, 3, 33, 50)]
    stats = style_stats(net, styles)
    assert stats.mean.shape == (2, 512) and len(stats) == 2
    one = stylize_tensor(net, photos, styles[0])
    assert one.shape == photos.shape and one.min() >= 0 and one.max() <= 1
    assert torch.allclose(one, net(photos, styles[0]).clamp(0, 1), atol=1e-5)
    blend = stylize_tensor(net, photos, stats, weights=[1, 3])
    assert torch.allclose(blend, stylize_tensor(net, photos, styles, weights=[0.25, 0.75]))
    fast = prepare_for_inference(net)
    assert torch.allclose(stylize_tensor(fast, photos, stats, weights=[1, 3]), blend, atol=1e-5)
    # masks: labels, per-style maps and a single map for two styles are one thing
    labels = torch.zeros(37, 45, dtype=torch.long)
    labels[:, 20:] = 1
    maps = torch.stack([labels == 0, labels == 1]).float()
    by_labels = stylize_tensor(net, photos, stats, mask=labels)
    assert torch.allclose(stylize_tensor(net, photos, stats, mask=maps), by_labels)
    assert torch.allclose(stylize_tensor(net, photos, stats, mask=maps[0]), by_labels)
    everywhere = stylize_tensor(net, photos, stats, mask=torch.zeros(37, 45, dtype=torch.long))
    assert torch.allclose(everywhere, stylize_tensor(net, photos, stats, weights=[1, 0]), atol=1e-5)
    # colours: luminance keeps the photo's chroma; histogram recolours the styles
    kept = stylize_tensor(net, photos, stats, weights=[1, 1], preserve_color="luminance")
    assert torch.allclose(
        kept, preserve_luminance(stylize_tensor(net, photos, stats, weights=[1, 1]), photos)
    )
    matched = stylize_tensor(net, photos, styles, weights=[1, 1], preserve_color="histogram")
    recoloured = [match_mean_and_covariance(s, photos[1:]) for s in styles]  # the second photo's
    by_hand = stylize_tensor(net, photos[1:], recoloured, weights=[1, 1])
    assert torch.allclose(matched[1:], by_hand, atol=1e-6)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(weights=[1.0]), r"weights \[1\.0\]: give 2 finite weights"),
        (dict(weights=[1.0, -1.0]), "finite weights >= 0 with a positive sum"),
        (dict(), "2 styles: give weights"),
        (dict(weights=[1, 1], alpha=1.5), r"alpha=1\.5: give a number in 0 \.\. 1"),
        (dict(mask=torch.zeros(2, 30, 45)), r"mask is \(30, 45\) px but the photos are \(37, 45\)"),
        (dict(mask=torch.zeros(3, 37, 45)), r"mask of shape \(1, 3, 37, 45\) for 2 styles"),
        (dict(mask=torch.full((2, 37, 45), 0.7)), "sum to 1 at every pixel"),
        (dict(mask=torch.full((37, 45), 2)), "style labels: give .* 0 .. 1"),
        (dict(mask=[[0, 1]]), "mask is a list; give a tensor"),
        (dict(mask=torch.zeros(37, 45), weights=[1, 1]), "give weights or mask, not both"),
        (dict(weights=[1, 1], preserve_color="grey"), "preserve_color='grey': use None or one"),
        (dict(weights=[1, 1], preserve_color="histogram"), "pass the style images"),
    ],
)
def test_bad_controls_are_refused_in_one_line(net, changes, message):
    stats = StyleStats(torch.zeros(2, 512), torch.ones(2, 512))
    with pytest.raises(BadInputError, match=message) as info:
        stylize_tensor(net, torch.rand(1, 3, 37, 45), stats, **changes)
    assert "\n" not in str(info.value)


def test_other_networks_and_tiny_images_are_refused(net):
    with pytest.raises(BadInputError, match="net is a Decoder, not an AdaIN network"):
        stylize_tensor(net.decoder, torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    with pytest.raises(BadInputError, match="at least 16x16 px"):
        stylize_tensor(net, torch.rand(1, 3, 8, 32), torch.rand(1, 3, 32, 32))
    with pytest.raises(BadInputError, match="styles needs images of at least 16x16"):
        style_stats(net, torch.rand(1, 3, 8, 8))


def test_per_sample_statistics_targets_are_relative_per_image():
    vgg = VGGFeatures(["relu2_1"], arch="vgg16", weights="random")
    loss = PerceptualLoss(vgg, {}, stats_layers={"relu1_1": 1.0, "relu2_1": 1.0}, stats_weight=1)
    images, styles = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    feats = vgg(styles, ["relu1_1", "relu2_1"])
    stats = {n: feature_stats(f) for n, f in feats.items()}
    both = loss(images, stats=stats)["stats"]
    alone = []
    for i in (0, 1):
        loss.set_style(styles[i : i + 1])
        alone.append(loss(images[i : i + 1])["stats"])
    assert torch.allclose(both, (alone[0] + alone[1]) / 2, rtol=1e-4)
    with pytest.raises(BadInputError, match="style target of relu1_1 has batch size 2"):
        loss(torch.rand(3, 3, 32, 32), stats=stats)


@pytest.mark.slow
def test_training_loss_falls_and_the_model_file_round_trips(folders, tmp_path, monkeypatch):
    photos, styles = folders
    config = tiny_config(steps=30, sample_every=15, checkpoint_every=15)
    net, result = train(config, styles, photos, tmp_path / "a.pth", progress=False)
    assert list(result.history[0]) == ["content", "style", "total"]
    first = np.mean([h["total"] for h in result.history[:5]])
    last = np.mean([h["total"] for h in result.history[-5:]])
    assert last < 0.75 * first, (first, last)
    assert (tmp_path / "a.run" / "samples" / "step_000030.png").is_file()
    loaded, record = load(tmp_path / "a.pth", weights="random")
    assert record["config"]["styles"] == "styles" and record["extra"]["weights_dtype"] == "float16"
    assert all(k.startswith(("0.", "1.", "2.", "3.", "4.", "5.", "6.", "7.", "8."))
               for k in record["state_dict"])  # the decoder's layers only  # fmt: skip
    assert record["extra"]["encoder"] == {"arch": "vgg16", "source": "random", "id": "random:0",
                                          "what": "VGG16 random weights (seed 0)"}  # fmt: skip
    photo, style = torch.rand(1, 3, 40, 36), torch.rand(1, 3, 32, 32)
    assert torch.allclose(stylize_tensor(loaded, photo, style), stylize_tensor(net, photo, style),
                          atol=2e-2)  # fmt: skip
    with pytest.raises(CheckpointError, match="is an AdaIN any-style model"):
        fast_style.load(tmp_path / "a.pth")
    record = torch.load(tmp_path / "a.pth", weights_only=True) | {"kind": "fast_style"}
    torch.save(record, tmp_path / "fast.pth")
    with pytest.raises(CheckpointError, match="but an AdaIN any-style model .* is needed"):
        load(tmp_path / "fast.pth")
    record["kind"], record["extra"] = "adain", {}
    torch.save(record, tmp_path / "no_encoder.pth")
    with pytest.raises(CheckpointError, match="no_encoder.pth: the record of its encoder's VGG"):
        load(tmp_path / "no_encoder.pth")


@pytest.mark.slow
def test_the_encoder_is_rebuilt_from_the_weights_it_was_trained_with(folders, tmp_path):
    photos, styles = folders
    vgg_file = tmp_path / "my_vgg16.pth"
    torch.save(load_vgg_state("vgg16", "random", seed=3), vgg_file)
    train(tiny_config(steps=1, weights=str(vgg_file)), styles, photos, tmp_path / "f.pth",
          progress=False)  # fmt: skip
    copied = tmp_path / "elsewhere" / "copy.pth"  # the same weights in another file
    copied.parent.mkdir()
    layout = torch.load(vgg_file, weights_only=True) | {"classifier.0.bias": torch.zeros(4)}
    torch.save(layout, copied)
    net, record = load(tmp_path / "f.pth", weights=copied)
    assert record["extra"]["encoder"]["source"] == "file"
    assert torch.equal(net.encoder.net.conv1_1.weight,
                       load_vgg_state("vgg16", "random", seed=3)["features.0.weight"])  # fmt: skip
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "f.pth", weights="random")
    message = str(info.value)
    assert "\n" not in message
    assert "trained with VGG16 my_vgg16.pth (content " in message
    assert "the VGG weights at hand are VGG16 random weights (seed 0)" in message
    assert "python -m nst_utils.hed vgg16_hed.pth" in message
    train(tiny_config(steps=1), styles, photos, tmp_path / "r.pth", progress=False)
    with pytest.raises(
        CheckpointError,
        match=r"trained with VGG16 random weights \(seed 0\), "
        r"but the VGG weights at hand are VGG16 copy.pth .*NST_WEIGHTS=random",
    ):
        load(tmp_path / "r.pth", weights=copied)  # fmt: skip


@pytest.mark.slow
def test_resume_refuses_other_styles_photos_or_vgg_weights(folders, tmp_path, monkeypatch):
    photos, styles = folders
    config = tiny_config(steps=3, weights=None)  # NST_WEIGHTS decides: random (conftest)
    train(config, styles, photos, tmp_path / "m.pth", progress=False)
    other = tmp_path / "changed" / "styles"  # the same name: only the content differs
    shutil.copytree(styles, other)
    Image.new("RGB", (48, 48), "red").save(other / "styles9.png")
    config = tiny_config(weights=None)
    for inputs, message in (
        ((other, photos), "cannot resume with another style images: the run started with 3"),
        ((styles, other), "cannot resume with another --data"),
    ):
        with pytest.raises(CheckpointError, match=message):
            train(config, *inputs, tmp_path / "m.pth", resume=True, progress=False)
    vgg_file = tmp_path / "vgg.pth"
    torch.save(load_vgg_state("vgg16", "random", seed=5), vgg_file)
    monkeypatch.setenv("NST_WEIGHTS", str(vgg_file))
    message = r"another VGG weights: the run started with VGG16 random weights \(seed 0\)"
    with pytest.raises(CheckpointError, match=message):
        train(config, styles, photos, tmp_path / "m.pth", resume=True, progress=False)
    assert torch.load(tmp_path / "m.run" / "checkpoint.pth", weights_only=True)["step"] == 3


def test_nothing_a_user_gave_is_overwritten(folders, tmp_path):
    photos, styles = folders
    vgg_file = tmp_path / "vgg.pth"
    torch.save(load_vgg_state("vgg16", "random", seed=5), vgg_file)
    before = vgg_file.read_bytes()
    with pytest.raises(BadInputError, match="is also an input"):
        train(tiny_config(weights=str(vgg_file)), styles, photos, vgg_file)
    with pytest.raises(BadInputError, match="lies in --styles"):
        train(tiny_config(), styles, photos, tmp_path / "m.pth", run_dir=styles / "run")
    with pytest.raises(BadInputError, match="lies in the training photos --data"):
        train(tiny_config(), styles, photos, tmp_path / "m.pth", run_dir=photos / "run")
    train(tiny_config(steps=1), styles, photos, tmp_path / "m.pth", progress=False)
    with pytest.raises(CheckpointError, match="holds the checkpoint of an earlier run"):
        train(tiny_config(steps=1), styles, photos, tmp_path / "m.pth", progress=False)
    assert vgg_file.read_bytes() == before
    assert not (styles / "run").exists() and not (photos / "run").exists()


@pytest.mark.slow
def test_resume_continues_bit_for_bit(folders, tmp_path):
    photos, styles = folders
    _, whole = train(tiny_config(), styles, photos, tmp_path / "a.pth", progress=False)
    train(tiny_config(steps=3), styles, photos, tmp_path / "b.pth", progress=False)
    _, resumed = train(tiny_config(), styles, photos, tmp_path / "b.pth",
                       run_dir=tmp_path / "b.run", resume=True, progress=False)  # fmt: skip
    assert resumed.history == whole.history
    a, _ = load(tmp_path / "a.pth")
    b, _ = load(tmp_path / "b.pth")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_bad_training_settings(folders, tmp_path):
    photos, styles = folders
    with pytest.raises(BadInputError, match=r"style_layers: \['relu4_2'\]; use layers up to"):
        train(tiny_config(style_layers={"relu4_2": 1.0}), styles, photos, tmp_path / "m.pth")
    with pytest.raises(BadInputError, match="style_weight must be finite"):
        train(tiny_config(style_weight=-1.0), styles, photos, tmp_path / "m.pth")
    assert not (tmp_path / "m.run").exists()
