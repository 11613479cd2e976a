import urllib.error

import pytest
import torch
from torchvision.models import vgg16, vgg19

from nst_utils import (
    BadInputError,
    NSTError,
    VGGFeatures,
    WeightsError,
    describe_layers,
    layer_names,
    load_vgg_state,
)
from nst_utils.models import RandomWeightsWarning, _pink_noise

PAPER_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]


def torchvision_state(arch: str, seed: int = 1) -> dict[str, torch.Tensor]:
    """A full torchvision VGG state dict (features + classifier), as users save them."""
    torch.manual_seed(seed)
    return (vgg16() if arch == "vgg16" else vgg19()).state_dict()


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "vgg16_features.pth"
    state = {k: v for k, v in torchvision_state("vgg16").items() if k.startswith("features.")}
    torch.save(state, path)
    return path


@pytest.mark.slow
def test_layer_names_follow_the_papers():
    names16, names19 = layer_names("vgg16"), layer_names("vgg19")
    assert len(names16) == 31 and len(names19) == 37  # torchvision's features lengths
    convs = [sum(n.startswith("conv") for n in names) for names in (names16, names19)]
    assert convs == [13, 16]
    assert names19[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names19.index("relu4_2") == 22 and names19[-1] == "pool5"
    assert len(vgg19().features) == len(names19)


def test_describe_layers_shapes_and_receptive_fields():
    rows = {r["layer"]: r for r in describe_layers("vgg16", size=224)}
    assert rows["relu1_1"]["receptive_field"] == 3
    assert rows["relu3_1"]["receptive_field"] == 24
    assert rows["conv5_3"]["receptive_field"] == 196  # the well-known VGG16 figure
    assert rows["pool5"]["shape"] == (512, 7, 7)


@pytest.mark.slow
def test_features_shapes_truncation_and_frozen():
    with pytest.warns(RandomWeightsWarning, match="RANDOM"):
        net = VGGFeatures(PAPER_LAYERS, arch="vgg19", weights="random")
    names = [name for name, _ in net.net.named_children()]
    assert names[-1] == "relu5_1"  # cut after the deepest requested layer
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    out = net(torch.rand(2, 3, 64, 48))
    assert list(out) == PAPER_LAYERS
    assert out["relu1_1"].shape == (2, 64, 64, 48)
    assert out["relu4_2"].shape == (2, 512, 8, 6)
    assert out["relu5_1"].shape == (2, 512, 4, 3)


@pytest.mark.slow
def test_gradients_flow_to_the_input():
    net = VGGFeatures(["relu3_1"], arch="vgg16", weights="random")
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    net(x)["relu3_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_average_pooling_option():
    net = VGGFeatures(["relu2_1"], arch="vgg16", weights="random", pooling="avg")
    assert isinstance(net.net.pool1, torch.nn.AvgPool2d)
    with pytest.raises(NSTError, match="pooling"):
        VGGFeatures(["relu2_1"], weights="random", pooling="median")


def test_unknown_layer_and_arch():
    with pytest.raises(NSTError, match=r"unknown VGG16 layer\(s\) \['relu5_4'\]"):
        VGGFeatures(["relu5_4"], arch="vgg16", weights="random")
    with pytest.raises(NSTError, match="not supported"):
        VGGFeatures(["relu1_1"], arch="resnet50", weights="random")


@pytest.mark.slow
def test_arch_and_weights_come_from_the_environment(monkeypatch, vgg16_file):
    monkeypatch.setenv("NST_ARCH", "vgg16")
    monkeypatch.setenv("NST_WEIGHTS", str(vgg16_file))
    net = VGGFeatures(["conv5_3"])
    assert net.arch == "vgg16"
    expected = torch.load(vgg16_file, weights_only=True)["features.28.weight"]
    assert torch.equal(net.net.conv5_3.weight, expected)


@pytest.mark.slow
def test_random_weights_are_seeded_and_keep_activation_scale():
    a = load_vgg_state("vgg19", "random", seed=0)
    b = load_vgg_state("vgg19", "random", seed=0)
    c = load_vgg_state("vgg19", "random", seed=1)
    assert torch.equal(a["features.34.weight"], b["features.34.weight"])
    assert not torch.equal(a["features.34.weight"], c["features.34.weight"])
    net = VGGFeatures(["relu1_1", "relu3_1", "relu5_1"], weights="random")
    image = _pink_noise(1, 128, torch.Generator().manual_seed(7))  # not the calibration images
    stds = [v.std().item() for v in net(image).values()]
    assert all(0.3 < s < 3.0 for s in stds), stds  # no shrinking with depth


@pytest.mark.slow
def test_file_with_full_torchvision_state_dict(tmp_path):
    state = torchvision_state("vgg19", seed=2)
    path = tmp_path / "vgg19_full.pth"
    torch.save(state, path)
    net = VGGFeatures(["relu5_1"], arch="vgg19", weights=path)
    assert torch.equal(net.net.conv5_1.weight, state["features.28.weight"])
    assert torch.equal(net.net.conv1_1.bias, state["features.0.bias"])


@pytest.mark.slow
def test_file_output_matches_torchvision(vgg16_file):
    reference = vgg16()
    state = torch.load(vgg16_file, weights_only=True)
    reference.load_state_dict(state, strict=False)
    net = VGGFeatures(["relu2_2"], arch="vgg16", weights=vgg16_file)
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = reference.features[:9]((x - mean) / std)
    assert torch.allclose(net(x)["relu2_2"], expected, atol=1e-5)


@pytest.mark.slow
def test_rescaling_gives_every_layer_unit_mean_activation():
    net = VGGFeatures(["relu1_1", "relu3_3", "relu5_3"], arch="vgg16", weights="random")
    calibration = _pink_noise(4, 128, torch.Generator().manual_seed(0))
    means = [v.mean().item() for v in net(calibration).values()]
    assert means == pytest.approx([1.0, 1.0, 1.0], rel=1e-4)  # exact on what it calibrated on
    fresh = _pink_noise(4, 128, torch.Generator().manual_seed(11))  # images it never saw
    means = [v.mean().item() for v in net(fresh).values()]
    assert means == pytest.approx([1.0, 1.0, 1.0], rel=0.2)


@pytest.mark.slow
def test_file_for_the_wrong_network_names_both(vgg16_file):
    with pytest.raises(NSTError, match=r"vgg16_features\.pth do not fit VGG19.*look like VGG16"):
        VGGFeatures(["relu1_1"], arch="vgg19", weights=vgg16_file)


@pytest.mark.slow
def test_file_with_wrong_shapes(tmp_path):
    state = {k: v for k, v in torchvision_state("vgg16").items() if k.startswith("features.")}
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    path = tmp_path / "gray.pth"
    torch.save(state, path)
    with pytest.raises(NSTError, match=r"gray\.pth do not fit VGG16: features\.0"):
        VGGFeatures(["relu1_1"], arch="vgg16", weights=path)


def test_bad_weight_files(tmp_path):
    with pytest.raises(NSTError, match=r"missing\.pth does not exist"):
        VGGFeatures(["relu1_1"], weights=tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(NSTError, match=r"junk\.pth could not be read"):
        VGGFeatures(["relu1_1"], weights=junk)
    other = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(2)}, other)
    with pytest.raises(NSTError, match="no 'features.N.weight' keys"):
        VGGFeatures(["relu1_1"], weights=other)


def test_failed_download_explains_the_ways_out(monkeypatch):
    from torchvision.models import VGG19_Weights

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(VGG19_Weights, "get_state_dict", offline)
    with pytest.raises(NSTError) as info:
        load_vgg_state("vgg19", "imagenet", seed=123)
    message = str(info.value)
    assert "no network" in message and "NST_WEIGHTS=random" in message
    assert "NST_WEIGHTS=/path/to/file.pth" in message and "cached" in message


@pytest.mark.slow
def test_imagenet_weights_are_requested_by_default(monkeypatch):
    from torchvision.models import VGG16_Weights

    calls = []

    def fake_download(self, *args, **kwargs):
        calls.append((self, kwargs))
        return torchvision_state("vgg16", seed=3)

    monkeypatch.delenv("NST_WEIGHTS", raising=False)
    monkeypatch.setattr(VGG16_Weights, "get_state_dict", fake_download)
    from nst_utils.models import _cached_state

    _cached_state.cache_clear()
    net = VGGFeatures(["relu1_1"], arch="vgg16")
    _cached_state.cache_clear()
    assert calls == [(VGG16_Weights.IMAGENET1K_V1, {"progress": True, "check_hash": True,
                                                    "weights_only": True})]  # fmt: skip
    assert torch.equal(
        net.net.conv1_1.weight, torchvision_state("vgg16", seed=3)["features.0.weight"]
    )


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda w: w.fill_(float("nan")), "NaN or infinite"),
        (lambda w: w.zero_(), "all zeros"),
    ],
)
@pytest.mark.slow
def test_damaged_weight_files_are_refused(tmp_path, damage, message):
    state = {k: v for k, v in torchvision_state("vgg16").items() if k.startswith("features.")}
    damage(state["features.2.weight"])
    path = tmp_path / "damaged.pth"
    torch.save(state, path)
    with pytest.raises(
        WeightsError, match=rf"damaged\.pth do not fit VGG16: features\.2.*{message}"
    ):
        VGGFeatures(["relu1_1"], arch="vgg16", weights=path)


@pytest.mark.slow
def test_cached_weights_are_handed_out_as_copies():
    first = load_vgg_state("vgg16", "random", seed=5)
    first["features.0.weight"].zero_()  # a careless caller
    second = load_vgg_state("vgg16", "random", seed=5)
    assert second["features.0.weight"].abs().sum() > 0


@pytest.mark.slow
def test_normalisation_lives_in_the_network():
    net = VGGFeatures(["conv1_1"], arch="vgg16", weights="random")
    x = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    by_hand = torch.nn.functional.conv2d((x - mean) / std, net.net.conv1_1.weight,
                                         net.net.conv1_1.bias, padding=1)  # fmt: skip
    assert torch.allclose(net(x)["conv1_1"], by_hand, atol=1e-5)


def test_any_layer_up_to_the_deepest_and_no_further():
    net = VGGFeatures(["relu2_1"], arch="vgg16", weights="random")
    x = torch.rand(1, 3, 16, 16)
    out = net(x, layers=["conv1_2", "relu1_1"])
    assert set(out) == {"conv1_2", "relu1_1"} and out["conv1_2"].shape == (1, 64, 16, 16)
    with pytest.raises(BadInputError, match="stops at relu2_1"):
        net(x, layers=["relu3_1"])
