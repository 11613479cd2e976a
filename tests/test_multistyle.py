"""Conditional instance normalisation (nst_utils.multistyle) on tiny crops with random VGG
weights: blending is mixing parameters, one style is 04's network, per-sample styles give
each style its own loss, bad choices are refused, training learns, resumes exactly and
its files round-trip."""

import shutil
from collections import defaultdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from nst_utils import BadInputError, CheckpointError, fast_style
from nst_utils.datasets import PhotoFolder
from nst_utils.images import as_tensor
from nst_utils.models import load_vgg_state
from nst_utils.multistyle import (
    ConditionalInstanceNorm2d,
    MultiStyleConfig,
    MultiStyleNet,
    StyledPhotos,
    build_network,
    load,
    make_loss,
    style_weights,
    stylize_tensor,
    train,
)
from nst_utils.networks import TransformerNet, prepare_for_inference
from nst_utils.training import initialized

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**changes) -> MultiStyleConfig:
    base = dict(steps=6, batch_size=2, crop_size=32, style_size=32, weights="random",
                log_every=1, sample_every=3, checkpoint_every=3, device="cpu", lr=2e-3,
                loss_precision="float32")  # fmt: skip
    return MultiStyleConfig(**(base | changes))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Five photo-like images and a folder of two striped styles."""
    root = tmp_path_factory.mktemp("multistyle")
    rng = np.random.default_rng(0)
    (root / "photos").mkdir()
    for i in range(5):
        low = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
        Image.fromarray(low).resize((80, 60), Image.BICUBIC).save(root / "photos" / f"p{i}.png")
    (root / "styles").mkdir()
    for name, freq, colour in (("a.png", 1.1, [1.0, 0.4, 0.1]), ("b.png", 0.3, [0.1, 0.5, 1.0])):
        stripes = (np.sin(np.arange(48) * freq)[None, :, None] * 0.5 + 0.5) * colour
        Image.fromarray((np.repeat(stripes, 48, 0) * 255).astype(np.uint8)).save(
            root / "styles" / name
        )
    return root / "photos", root / "styles"


def randomised(net: MultiStyleNet, seed: int = 0) -> MultiStyleNet:
    """``net`` with random per-style scales and shifts, so that styles differ."""
    generator = torch.Generator().manual_seed(seed)
    for norm in net.modules():
        if isinstance(norm, ConditionalInstanceNorm2d):
            norm.weight.data = 0.5 + torch.rand(norm.weight.shape, generator=generator)
            norm.bias.data = torch.randn(norm.bias.shape, generator=generator)
    return net.eval()


def test_conditional_norm_mixes_scale_and_shift():
    norm = ConditionalInstanceNorm2d(4, styles=3)
    norm.weight.data, norm.bias.data = torch.rand(3, 4) + 0.5, torch.randn(3, 4)
    x, mix = torch.randn(2, 4, 5, 6), torch.tensor([[1.0, 0, 0], [0.2, 0.3, 0.5]])
    expected = F.instance_norm(x) * (mix @ norm.weight)[..., None, None]
    expected = expected + (mix @ norm.bias)[..., None, None]
    assert torch.allclose(norm(x, mix), expected, atol=1e-6)


def test_a_blend_is_the_network_with_interpolated_parameters():
    net = randomised(MultiStyleNet.lite(3, output="tanh"))
    weights = [0.2, 0.5, 0.3]
    single = MultiStyleNet.lite(1, output="tanh").eval()
    state = {k: (torch.tensor(weights) @ v)[None] if k.endswith(("norm.weight", "norm.bias"))
             and v.dim() == 2 else v for k, v in net.state_dict().items()}  # fmt: skip
    single.load_state_dict(state)
    x = torch.rand(2, 3, 21, 30)
    blended = stylize_tensor(net, x, weights)
    assert torch.allclose(blended, stylize_tensor(single, x, 0), atol=1e-5)
    assert not torch.allclose(blended, stylize_tensor(net, x, 0), atol=1e-2)
    # weights are scaled to sum 1; per-image styles; the prepared copy agrees
    assert torch.allclose(stylize_tensor(net, x, [2.0, 5.0, 3.0]), blended, atol=1e-6)
    per_image = stylize_tensor(net, x, torch.tensor([2, 0]))
    assert torch.allclose(per_image[1], stylize_tensor(net, x[1:], 0)[0], atol=1e-5)
    from nst_utils.multistyle import FixedStyle

    fast = prepare_for_inference(FixedStyle(net, weights))
    assert torch.allclose(fast(x).clamp(0, 1), blended, atol=1e-5)


def test_with_one_style_it_is_the_transformer_of_notebook_04():
    plain = initialized(lambda: TransformerNet.lite(output="tanh"), 3).eval()
    conditional = MultiStyleNet.lite(1, output="tanh").eval()
    state = {k: v[None] if k.endswith(("norm.weight", "norm.bias")) else v
             for k, v in plain.state_dict().items()}  # fmt: skip
    conditional.load_state_dict(state)
    x = torch.rand(1, 3, 19, 26)
    assert torch.allclose(conditional(x, torch.tensor([0])), plain(x), atol=1e-6)


@pytest.mark.parametrize(
    "style, message",
    [
        (3, r"style index \[3\] is out of range: this model holds 3 styles, 0 \.\. 2"),
        (-1, "out of range"),
        (torch.tensor([0, 5]), "out of range"),
        ([0.5, 0.5], r"shape \(1, 2\): give 3 weights"),
        ([0.5, -0.1, 0.6], "must be finite and >= 0 with a positive sum"),
        ([0.0, 0.0, 0.0], "positive sum"),
        ([float("nan"), 1.0, 0.0], "finite"),
        (True, "give a style index"),
        ("wave", "give a style index"),
    ],
)
def test_bad_style_choices_are_refused_in_one_line(style, message):
    with pytest.raises(BadInputError, match=message) as info:
        style_weights(style, 3)
    assert "\n" not in str(info.value)


def test_other_networks_and_batch_mismatches_are_refused():
    net = MultiStyleNet.lite(2)
    with pytest.raises(BadInputError, match="net is a TransformerNet, not a multi-style network"):
        stylize_tensor(TransformerNet.lite(), torch.rand(1, 3, 16, 16), 0)
    with pytest.raises(BadInputError, match="gives 2 styles for 3 images"):
        stylize_tensor(net, torch.rand(3, 3, 16, 16), torch.tensor([0, 1]))
    with pytest.raises(BadInputError, match="styles=0"):
        MultiStyleNet.lite(0)


def test_each_run_of_keys_holds_every_style_once():
    data = StyledPhotos(defaultdict(lambda: torch.zeros(3, 4, 4)), styles=4, seed=0)
    for run in range(3):
        assert sorted(int(data[4 * run + k][1]) for k in range(4)) == [0, 1, 2, 3]
    assert [int(data[k][1]) for k in range(8)] != [0, 1, 2, 3] * 2  # shuffled per run


@pytest.mark.slow
def test_per_sample_styles_give_each_image_its_own_styles_loss(photos):
    _, styles = photos
    config = tiny_config()
    images = [as_tensor(p, 32) for p in sorted(styles.iterdir())]
    loss = make_loss(config, images)
    content, output = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    terms = loss(output, content, torch.tensor([1, 0]))
    alone = [fast_style.make_loss(config, images[k])(output[i : i + 1], content[i : i + 1])
             for i, k in enumerate([1, 0])]  # fmt: skip
    for name in ("content", "style"):  # the batch's term is the mean of the images' terms
        assert torch.allclose(terms[name], (alone[0][name] + alone[1][name]) / 2, rtol=1e-4)


@pytest.mark.slow
def test_training_loss_falls_and_the_model_file_round_trips(photos, tmp_path):
    folder, styles = photos
    config = tiny_config(steps=40, sample_every=20, checkpoint_every=20)
    net, result = train(config, styles, folder, tmp_path / "m.pth", progress=False)
    assert len(result.history) == 40
    loss = make_loss(config, [as_tensor(p, 32) for p in sorted(styles.iterdir())])
    crops = torch.stack([PhotoFolder(folder, 32, seed=5)[k] for k in range(4)])  # not trained on
    untrained = initialized(lambda: build_network(config, 2), config.seed)
    with torch.no_grad():
        for k in (0, 1):  # each style's loss falls
            index = torch.full((4,), k)
            before = sum(loss(untrained(crops, index), crops, index).values())
            after = sum(loss(net(crops, index), crops, index).values())
            assert after < 0.75 * before, (k, before, after)
    loaded, record = load(tmp_path / "m.pth")
    assert record["extra"]["styles"] == ["a.png", "b.png"]
    assert record["config"]["style"] == "a.png, b.png"
    assert [t.dtype for t in record["extra"]["style_thumbnails"]] == [torch.uint8] * 2
    x = torch.rand(2, 3, 37, 45)
    for style in (0, 1, [0.3, 0.7]):
        assert torch.allclose(stylize_tensor(loaded, x, style), stylize_tensor(net, x, style))
    assert (tmp_path / "m.run" / "samples" / "step_000040.png").is_file()
    with pytest.raises(CheckpointError, match="is a multi-style model"):
        fast_style.load(tmp_path / "m.pth")
    torch.save(torch.load(tmp_path / "m.pth", weights_only=True) | {"kind": "fast_style"},
               tmp_path / "other.pth")  # fmt: skip
    with pytest.raises(CheckpointError, match="but a multi-style model .* is needed"):
        load(tmp_path / "other.pth")


@pytest.mark.slow
def test_resume_continues_bit_for_bit(photos, tmp_path):
    folder, styles = photos
    _, whole = train(tiny_config(), styles, folder, tmp_path / "a.pth", progress=False)
    train(tiny_config(steps=3), styles, folder, tmp_path / "b.pth", progress=False)
    _, resumed = train(tiny_config(), styles, folder, tmp_path / "b.pth",
                       run_dir=tmp_path / "b.run", resume=True, progress=False)  # fmt: skip
    assert resumed.history == whole.history
    a, _ = load(tmp_path / "a.pth")
    b, _ = load(tmp_path / "b.pth")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_style_lists_and_bad_style_folders(photos, tmp_path):
    folder, styles = photos
    images = [as_tensor(styles / "a.png"), styles / "b.png"]
    train(tiny_config(steps=2), images, folder, tmp_path / "l.pth", progress=False)
    assert load(tmp_path / "l.pth")[1]["extra"]["styles"] == ["style 0", "b.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no image files in this folder"):
        train(tiny_config(), tmp_path / "empty", folder, tmp_path / "x.pth")
    with pytest.raises(BadInputError, match="styles is empty"):
        train(tiny_config(), [], folder, tmp_path / "x.pth")


@pytest.mark.slow
def test_resume_refuses_other_styles_or_photos_and_inputs_are_never_replaced(photos, tmp_path):
    folder, styles = photos
    train(tiny_config(steps=3), styles, folder, tmp_path / "m.pth", progress=False)
    changed = tmp_path / "changed"
    shutil.copytree(styles, changed / "styles")
    Image.new("RGB", (48, 48), "red").save(changed / "styles" / "b.png")  # same names
    shutil.copytree(folder, changed / "photos")
    (changed / "photos" / "p0.png").unlink()
    for inputs, message in (
        ((changed / "styles", folder), "cannot resume with another style images: the run "
                                       r"started with 2 style images \(a.png, b.png; content"),
        ((styles, changed / "photos"), "cannot resume with another --data: the run started "
                                       "with 5 photos"),
    ):  # fmt: skip
        with pytest.raises(CheckpointError, match=message):
            train(tiny_config(), *inputs, tmp_path / "m.pth", resume=True, progress=False)
    assert torch.load(tmp_path / "m.run" / "checkpoint.pth", weights_only=True)["step"] == 3
    with pytest.raises(CheckpointError, match="holds the checkpoint of an earlier run"):
        train(tiny_config(), styles, folder, tmp_path / "m.pth", progress=False)
    vgg = tmp_path / "vgg.pth"
    torch.save(load_vgg_state("vgg16", "random", seed=5), vgg)
    with pytest.raises(BadInputError, match="is also an input"):
        train(tiny_config(weights=str(vgg)), styles, folder, vgg)
    with pytest.raises(BadInputError, match="lies in --styles"):
        train(tiny_config(), styles, folder, tmp_path / "n.pth", run_dir=styles / "run")
    assert sorted(p.name for p in styles.iterdir()) == ["a.png", "b.png"]
