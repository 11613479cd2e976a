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


def test_relative_weights_divide_by_the_targets_mean_square():
    from nst_utils.losses import relative_weights

    targets = {"a": torch.full((1, 2, 2), 3.0), "b": torch.full((1, 4, 4), 0.5)}
    got = relative_weights({"a": 2.0, "b": 1.0}, targets)
    assert got == pytest.approx({"a": 2.0 / 9.0, "b": 1.0 / 0.25})
