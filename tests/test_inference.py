"""Applying any model file from Python (nst_utils.inference), as ``nst transform`` does."""

import pytest
import torch

from nst_utils import fast_style, superres
from nst_utils.errors import BadInputError, CheckpointError
from nst_utils.inference import check_fits, load_any_model, network_footprint
from nst_utils.paths import REPO_ROOT

MODELS = REPO_ROOT / "models"


def test_load_any_model_gives_what_the_method_module_gives():
    image = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    apply, footprint, device = load_any_model(str(MODELS / "starry_night_lite.pth"), "fast_style")
    net, _ = fast_style.load(MODELS / "starry_night_lite.pth")
    assert device == torch.device("cpu") and footprint == (1, 8)
    assert torch.allclose(apply(image), fast_style.stylize_tensor(net, image), atol=1e-5)


def test_load_any_model_reads_the_scale_of_a_super_resolution_model():
    apply, footprint, _ = load_any_model(MODELS / "sr_x4_feature.pth", ("super_resolution",))
    net, _ = superres.load(MODELS / "sr_x4_feature.pth")
    assert footprint == (4, 64)
    small = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(1))
    assert apply(small).shape == (1, 3, 48, 40)
    assert torch.allclose(apply(small), superres.upscale(net, small), atol=1e-5)


def test_load_any_model_refuses_another_kind():
    with pytest.raises(CheckpointError, match="super-resolution"):
        load_any_model(MODELS / "starry_night_lite.pth", "super_resolution")


@pytest.mark.parametrize(
    ("spec", "scale", "expected"),
    [
        ({"name": "transformer", "kwargs": {"channels": [16, 32, 64]}}, None, (1, 16)),
        ({"name": "super_resolution", "kwargs": {"scale": 8, "channels": 32}}, None, (8, 32)),
        ({"name": "adain_decoder", "kwargs": {}}, None, (1, 64)),
        (None, 4, (4, None)),  # an ONNX file without metadata: only its scale is known
    ],
)
def test_network_footprint(spec, scale, expected):
    assert network_footprint(spec, scale) == expected


def test_check_fits_refuses_tiny_and_huge_outputs():
    cpu = torch.device("cpu")
    check_fits(torch.zeros(1, 3, 8, 8), "a.png", (4, None), cpu)  # fits: no error
    with pytest.raises(BadInputError, match="a.png: 4x3 px is smaller than the 5x5 px"):
        check_fits(torch.zeros(1, 3, 3, 4), "a.png", (1, 16), cpu)
    with pytest.raises(BadInputError, match="x8 output would be 8000x8008 px, more than the 64 MP"):
        check_fits(torch.zeros(1, 3, 1001, 1000), "a.png", (8, None), cpu)
