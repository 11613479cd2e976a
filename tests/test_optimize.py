import pytest
import torch

from nst_utils import NSTError, content_loss, optimize_image


def target_loss(target: torch.Tensor):
    return lambda image: {"pixels": content_loss(image, target)}


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
@pytest.mark.slow
def test_loss_falls_and_history_is_recorded(optimizer):
    torch.manual_seed(0)
    target = torch.rand(1, 3, 8, 8)
    steps = 20 if optimizer == "lbfgs" else 60
    result = optimize_image(
        torch.rand(1, 3, 8, 8), target_loss(target), steps, optimizer, lr=None, progress=False
    )
    history = result.history
    assert len(history["total"]) == steps and history["pixels"] == history["total"]
    assert history["total"][-1] < history["total"][0] / 10
    assert result.image.shape == (1, 3, 8, 8) and not result.image.requires_grad


def test_pixels_stay_in_range():
    target = torch.full((1, 3, 4, 4), 2.0)  # unreachable: pixels must stop at 1
    result = optimize_image(torch.rand(1, 3, 4, 4), target_loss(target), 10, progress=False)
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    assert torch.allclose(result.image, torch.ones_like(result.image), atol=1e-3)


def test_callback_sees_intermediate_images():
    seen = []
    optimize_image(
        torch.rand(1, 3, 4, 4),
        target_loss(torch.zeros(1, 3, 4, 4)),
        7,
        callback=lambda step, image: seen.append((step, image.shape)),
        callback_every=3,
        progress=False,
    )
    assert [s for s, _ in seen] == [3, 6, 7]


def test_non_finite_loss_is_reported():
    def exploding(image):
        return {"bad": image.sum() * float("inf")}

    with pytest.raises(NSTError, match="loss became"):
        optimize_image(torch.rand(1, 3, 4, 4), exploding, 3, progress=False)


def test_bad_arguments():
    with pytest.raises(NSTError, match="steps"):
        optimize_image(torch.rand(1, 3, 4, 4), target_loss(torch.rand(1, 3, 4, 4)), 0)
    with pytest.raises(NSTError, match="optimizer"):
        optimize_image(torch.rand(1, 3, 4, 4), target_loss(torch.rand(1, 3, 4, 4)), 2, "sgd")


def test_the_best_image_evaluated_is_returned():
    torch.manual_seed(0)
    target = torch.rand(1, 3, 8, 8)
    loss = target_loss(target)
    # L-BFGS with three times its usual step overshoots; the result must be its best point
    result = optimize_image(torch.rand(1, 3, 8, 8), loss, 15, "lbfgs", lr=3.0, progress=False)
    best = min(result.history["total"])
    assert best < result.history["total"][-1]
    assert loss(result.image)["pixels"].item() == pytest.approx(best, rel=1e-5)
