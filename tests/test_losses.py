import pytest
import torch

from nst_utils import NSTError, content_loss, gram_matrix, style_loss, total_variation


def test_content_loss_is_mean_squared_difference():
    a = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    b = torch.tensor([[[[1.0, 0.0], [3.0, 8.0]]]])
    assert content_loss(a, b).item() == pytest.approx((4 + 16) / 4)


def test_gram_matrix_by_hand():
    # two channels over three positions: f0 = (1, 2, 3), f1 = (0, 1, -1)
    feats = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]).view(1, 2, 1, 3)
    raw = torch.tensor([[14.0, -1.0], [-1.0, 2.0]])
    assert torch.allclose(gram_matrix(feats, "none")[0], raw)
    assert torch.allclose(gram_matrix(feats, "hw")[0], raw / 3)
    assert torch.allclose(gram_matrix(feats, "chw")[0], raw / 6)


def test_gram_matrix_is_batched_symmetric_and_size_independent():
    torch.manual_seed(0)
    x = torch.rand(2, 4, 8, 8)
    g = gram_matrix(x)
    assert g.shape == (2, 4, 4)
    assert torch.allclose(g, g.transpose(1, 2))
    tiled = x.repeat(1, 1, 2, 2)  # same statistics on four times the area
    assert torch.allclose(gram_matrix(tiled), g, atol=1e-6)
    assert torch.allclose(gram_matrix(tiled, "none"), 4 * gram_matrix(x, "none"), rtol=1e-5)


def test_gram_matrix_rejects_bad_input():
    with pytest.raises(NSTError, match="N, C, H, W"):
        gram_matrix(torch.rand(3, 4))
    with pytest.raises(NSTError, match="normalize"):
        gram_matrix(torch.rand(1, 2, 3, 3), "max")


def test_style_loss_weights_layers():
    torch.manual_seed(0)
    feats = {"a": torch.rand(1, 3, 4, 4), "b": torch.rand(1, 5, 2, 2)}
    targets = {"a": torch.zeros(1, 3, 3), "b": torch.zeros(1, 5, 5)}
    per_layer = {k: (gram_matrix(v) ** 2).mean().item() for k, v in feats.items()}
    got = style_loss(feats, targets, {"a": 2.0, "b": 0.5}).item()
    assert got == pytest.approx(2.0 * per_layer["a"] + 0.5 * per_layer["b"], rel=1e-5)
    default = style_loss(feats, targets).item()
    assert default == pytest.approx((per_layer["a"] + per_layer["b"]) / 2, rel=1e-5)
    exact = {k: gram_matrix(v) for k, v in feats.items()}
    assert style_loss(feats, exact).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(NSTError, match="no features"):
        style_loss(feats, targets, {"c": 1.0})


def test_total_variation_by_hand():
    img = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    # horizontal diffs |1-0|, |1-1| -> mean 0.5; vertical |1-0|, |1-1| -> mean 0.5
    assert total_variation(img).item() == pytest.approx(1.0)
    assert total_variation(torch.ones(1, 3, 5, 5)).item() == 0.0


# --- PerceptualLoss: the one loss of every method


@pytest.fixture(scope="module")
def vgg():
    from nst_utils import VGGFeatures

    return VGGFeatures(["relu1_1", "relu2_1"], arch="vgg16", weights="random")


def batch(n, seed, size=24):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_perceptual_loss_is_a_mean_over_images(vgg):
    """Four images at once give the mean of their separate losses: what lets a batch be
    split over processes without changing the loss."""
    from nst_utils import PerceptualLoss

    loss = PerceptualLoss(vgg, {"relu2_1": 1.0}, {"relu1_1": 0.5, "relu2_1": 0.5},
                          style_weight=3.0, tv_weight=0.2)  # fmt: skip
    loss.set_style(batch(1, 9, 32))
    x, c = batch(4, 1), batch(4, 2)
    together = loss(x, content=c)
    alone = [loss(x[i : i + 1], content=c[i : i + 1]) for i in range(4)]
    for key in ("content", "style", "tv"):
        mean = sum(a[key] for a in alone) / 4
        assert together[key].item() == pytest.approx(mean.item(), rel=1e-5), key
        assert together[key].item() > 0


def test_fixed_content_equals_content_given_with_the_batch(vgg):
    from nst_utils import PerceptualLoss

    loss = PerceptualLoss(vgg, {"relu2_1": 1.0}, {"relu1_1": 1.0})
    loss.set_style(batch(1, 9))
    c, x = batch(1, 2), batch(1, 3)
    given = loss(x, content=c)
    loss.set_content(c)
    assert loss(x)["content"].item() == pytest.approx(given["content"].item(), rel=1e-6)


def test_relative_terms_start_near_one_whatever_the_scale(vgg):
    """Scaling every activation by 50 (a Caffe-scale VGG) leaves relative losses unchanged;
    raw losses grow by 50^2 (content) and 50^4 (Gram)."""
    from nst_utils import PerceptualLoss

    class Loud(torch.nn.Module):
        layers, available = vgg.layers, vgg.available

        def forward(self, x, layers=None):
            return {k: 50 * v for k, v in vgg(x, layers).items()}

    x, c, s = batch(2, 1), batch(2, 2), batch(1, 3)
    values = {}
    for name, net in (("quiet", vgg), ("loud", Loud())):
        for relative in (True, False):
            loss = PerceptualLoss(net, {"relu2_1": 1.0}, {"relu1_1": 1.0}, relative=relative)
            loss.set_style(s)
            values[name, relative] = loss(x, content=c)
    for key in ("content", "style"):
        assert values["loud", True][key].item() == pytest.approx(values["quiet", True][key].item(),
                                                                 rel=1e-4)  # fmt: skip
    assert values["loud", False]["content"] / values["quiet", False]["content"] == pytest.approx(
        2500, rel=1e-3
    )
    assert values["loud", False]["style"] / values["quiet", False]["style"] == pytest.approx(
        50**4, rel=1e-3
    )


def test_gram_is_float32_under_autocast(vgg):
    from nst_utils import PerceptualLoss

    features = torch.rand(1, 8, 64, 64) * 40
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = gram_matrix(features.to(torch.bfloat16))
        loss = PerceptualLoss(vgg, {}, {"relu1_1": 1.0})
        loss.set_style(batch(1, 9))
        style = loss(batch(2, 1))["style"]
    assert gram.dtype == torch.float32 and style.dtype == torch.float32
    exact = gram_matrix(features.to(torch.bfloat16).float())
    assert torch.allclose(gram, exact, rtol=1e-5)


def test_statistics_term_matches_mean_and_std(vgg):
    from nst_utils import PerceptualLoss
    from nst_utils.losses import feature_stats

    s = batch(1, 4)
    loss = PerceptualLoss(vgg, {}, {}, stats_layers={"relu1_1": 1.0}, stats_weight=2.0,
                          relative=False)  # fmt: skip
    loss.set_style(s)
    assert loss(s)["stats"].item() == pytest.approx(0.0, abs=1e-10)
    x = batch(1, 5)
    with torch.no_grad():
        (mx, sx), (ms, ss) = feature_stats(vgg(x)["relu1_1"]), feature_stats(vgg(s)["relu1_1"])
    expected = 2.0 * (torch.nn.functional.mse_loss(mx, ms) + torch.nn.functional.mse_loss(sx, ss))
    assert loss(x)["stats"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_perceptual_loss_errors(vgg):
    from nst_utils import PerceptualLoss

    with pytest.raises(NSTError, match=r"stops at relu2_1 but the loss needs layers \['relu3_1'\]"):
        PerceptualLoss(vgg, {"relu3_1": 1.0})
    loss = PerceptualLoss(vgg, {"relu2_1": 1.0}, {"relu1_1": 1.0})
    with pytest.raises(NSTError, match="set_style"):
        loss(batch(1, 1), content=batch(1, 2))
    loss.set_style(batch(1, 3))
    with pytest.raises(NSTError, match="set_content"):
        loss(batch(1, 1))
    with pytest.raises(NSTError, match="same shape"):
        loss(batch(2, 1), content=batch(1, 2))
