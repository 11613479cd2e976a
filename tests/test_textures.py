import pytest
import torch

import nst_utils as nst
from nst_utils import NSTError
from nst_utils.textures import shuffle_patches, synthesize_texture, target_grams


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_shuffle_patches_keeps_shape_and_pixel_multiset():
    image = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    out = shuffle_patches(image, 8, seed=1)
    assert out.shape == image.shape
    assert not torch.equal(out, image)
    for c in range(3):  # same values per channel, only moved
        assert torch.equal(out[0, c].flatten().sort().values, image[0, c].flatten().sort().values)
    # squares move whole: each 8x8 square of the output is one of the input's squares
    squares = {image[0, :, r : r + 8, c : c + 8].sum().item() for r in (0, 8) for c in (0, 8, 16)}
    for r in (0, 8):
        for c in (0, 8, 16):
            assert out[0, :, r : r + 8, c : c + 8].sum().item() in squares
    # the 4-pixel strips that hold no full square stay in place
    assert torch.equal(out[..., 16:, :], image[..., 16:, :])
    assert torch.equal(out[..., 24:], image[..., 24:])
    # input untouched, seed repeatable
    assert torch.equal(shuffle_patches(image, 8, seed=1), out)


def test_shuffle_patches_rejects_bad_arguments():
    image = torch.rand(1, 3, 16, 16)
    with pytest.raises(NSTError, match="patch"):
        shuffle_patches(image, 0)
    with pytest.raises(NSTError, match="patch"):
        shuffle_patches(image, 17)
    with pytest.raises(NSTError, match="patch"):
        shuffle_patches(image, 4.0)
    with pytest.raises(NSTError, match="N, C, H, W"):
        shuffle_patches(image[0], 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.slow
def test_gram_matrices_survive_a_patch_shuffle(seed):
    """A Gram matrix averages over positions, so moving whole patches changes it only where
    a unit's receptive field straddles a patch border. relu1_1 sees 3x3 pixels and relu2_1
    10x10 (see describe_layers); with 16-pixel patches most units see one patch only.
    Measured relative change with these random weights: 0.03-0.06, while the pixels (and the
    activations themselves) change by ~0.5 and another painting's Grams differ by > 0.5:
    a tolerance of 0.1 leaves twice the margin and still separates the cases.
    """
    net = nst.VGGFeatures(["relu1_1", "relu2_1"], arch="vgg16", weights="random")
    image = nst.as_tensor(nst.data_path("styles", "starry_night.jpg"), 64)
    other = nst.as_tensor(nst.data_path("styles", "wave.jpg"), 64)[..., : image.shape[-2], :]
    shuffled = shuffle_patches(image, 16, seed=seed)
    assert relative(shuffled, image) > 0.3
    grams = target_grams(net, image)
    moved = target_grams(net, shuffled)
    elsewhere = target_grams(net, other)
    with torch.no_grad():
        assert relative(net(shuffled)["relu2_1"], net(image)["relu2_1"]) > 0.3
    for layer in ("relu1_1", "relu2_1"):
        assert relative(moved[layer], grams[layer]) < 0.1, layer
        assert relative(elsewhere[layer], grams[layer]) > 0.4, layer


@pytest.mark.slow
def test_synthesize_texture_lowers_the_style_loss_tenfold():
    style = nst.as_tensor(nst.data_path("styles", "starry_night.jpg"), 32)
    net = nst.VGGFeatures(["relu1_1", "relu2_1"], arch="vgg16", weights="random")
    result = synthesize_texture(style, ["relu1_1", "relu2_1"], size=24, steps=30, net=net)
    assert result.image.shape == (1, 3, 24, 24)
    assert result.image.min() >= 0 and result.image.max() <= 1
    history = result.history["style"]
    assert len(history) == 30
    assert history[-1] < history[0] / 10
    # the returned image is the best one evaluated, and its loss is the style loss with each
    # layer's term divided by the mean square of its target Gram (balance=True), layers
    # weighing 1/2 each
    targets = target_grams(net, style)
    weights = {k: 0.5 / v.pow(2).mean().item() for k, v in targets.items()}
    with torch.no_grad():
        loss = nst.style_loss(net(result.image), targets, weights).item()
    assert loss == pytest.approx(min(history), rel=1e-4)


def test_synthesize_texture_balance_and_layer_weights():
    style = nst.as_tensor(nst.data_path("styles", "wave.jpg"), 24)
    net = nst.VGGFeatures(["relu1_1", "relu2_1"], arch="vgg16", weights="random")
    targets = target_grams(net, style)
    init = torch.rand(style.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = net(init)

    def first_loss(**kwargs):
        result = synthesize_texture(style, ["relu1_1", "relu2_1"], steps=1, net=net, init=init,
                                    progress=False, **kwargs)  # fmt: skip
        return result.history["style"][0]

    raw = nst.style_loss(feats, targets).item()  # equal weights 1/2, no balance
    assert first_loss(balance=False) == pytest.approx(raw, rel=1e-4)
    only_first = {"relu1_1": 1.0}
    raw_first = nst.style_loss(feats, targets, only_first).item()
    assert first_loss(balance=False, layer_weights=only_first) == pytest.approx(raw_first, rel=1e-4)
    balanced = first_loss(layer_weights=only_first)
    expected = raw_first / targets["relu1_1"].pow(2).mean().item()
    assert balanced == pytest.approx(expected, rel=1e-4)
    assert 0.05 < balanced < 5  # a noise image scores of order one per layer


def test_synthesize_texture_size_init_and_seed():
    style = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(0))
    net = nst.VGGFeatures(["relu1_1"], arch="vgg16", weights="random")
    a = synthesize_texture(style, ["relu1_1"], steps=2, net=net, progress=False)
    b = synthesize_texture(style, ["relu1_1"], steps=2, net=net, progress=False)
    assert a.image.shape == style.shape  # default size: the style's
    assert torch.equal(a.image, b.image)
    c = synthesize_texture(style, ["relu1_1"], size=(8, 12), steps=1, net=net, progress=False)
    assert c.image.shape == (1, 3, 8, 12)
    init = torch.full((1, 3, 10, 10), 0.5)
    d = synthesize_texture(style, ["relu1_1"], steps=1, net=net, init=init, progress=False)
    assert d.image.shape == init.shape


def test_synthesize_texture_rejects_bad_arguments():
    style = torch.rand(1, 3, 16, 16)
    net = nst.VGGFeatures(["relu1_1"], arch="vgg16", weights="random")
    with pytest.raises(NSTError, match="layers is empty"):
        synthesize_texture(style, [], net=net)
    with pytest.raises(NSTError, match="relu2_1"):
        synthesize_texture(style, ["relu2_1"], net=net)
    with pytest.raises(NSTError, match=r"\(1, 3, H, W\)"):
        synthesize_texture(style[0], ["relu1_1"], net=net)
    with pytest.raises(NSTError, match="size"):
        synthesize_texture(style, ["relu1_1"], size=0, net=net)
    with pytest.raises(NSTError, match="layer_weights"):
        synthesize_texture(style, ["relu1_1"], net=net, layer_weights={"relu3_1": 1.0})
    with pytest.raises(NSTError, match="steps"):
        synthesize_texture(style, ["relu1_1"], steps=0, net=net)
