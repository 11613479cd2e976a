import json

import pytest
import torch
import torch.nn.functional as F

from nst_utils.errors import BadInputError
from nst_utils.networks import (
    LITE,
    LowResUpsampleConv,
    SuperResolutionNet,
    TransformerNet,
    build_network,
    count_parameters,
    cxx_compiler,
    describe_network,
    infer,
    prepare_for_inference,
)

PAPER_PARAMETERS = 1_677_635  # channels 32-64-128, 5 blocks, instance norm, no bias before norms
LITE_PARAMETERS = 71_251
SR4_PARAMETERS = 400_451  # norm="none": every conv has a bias


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def seeded(cls, *args, **kwargs):
    torch.manual_seed(0)
    return cls(*args, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{}, LITE, {"upsample": "transposed"}, {"residual": True}, {**LITE, "separable": True}],
    ids=["paper", "lite", "transposed", "residual", "separable"],
)
@pytest.mark.parametrize("shape", [(2, 3, 37, 53), (1, 3, 17, 19), (1, 3, 5, 6)])
def test_transformer_returns_the_input_size(kwargs, shape):
    net = seeded(TransformerNet, **kwargs)
    with torch.no_grad():
        out = net(torch.rand(shape))
    assert out.shape == shape
    assert torch.isfinite(out).all()


def test_transformer_refuses_tiny_or_grey_images():
    with pytest.raises(BadInputError, match=r"at least 5x5 px; got \(4, 9\)"):
        TransformerNet.lite()(torch.rand(1, 3, 4, 9))
    with pytest.raises(
        BadInputError,
        match=r"TransformerNet takes \(N, 3, H, W\) image tensors; got \(1, 1, 8, 8\)",
    ):
        TransformerNet.lite()(torch.rand(1, 1, 8, 8))


def test_residual_transformer_adds_its_input():
    net = seeded(TransformerNet, residual=True, **LITE)
    torch.nn.init.zeros_(net.head.conv.weight)
    torch.nn.init.zeros_(net.head.conv.bias)
    x = torch.rand(2, 3, 21, 30)
    with torch.no_grad():
        assert torch.equal(net(x), x)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_super_resolution_scales_any_size(scale):
    net = seeded(SuperResolutionNet, scale)
    with torch.no_grad():
        out = net(torch.rand(2, 3, 7, 9))
    assert out.shape == (2, 3, 7 * scale, 9 * scale)


def test_super_resolution_residual_is_bicubic_upsampling():
    net = seeded(SuperResolutionNet, norm="instance")
    torch.nn.init.zeros_(net.head.conv.weight)
    torch.nn.init.zeros_(net.head.conv.bias)
    x = torch.rand(1, 3, 11, 13)
    with torch.no_grad():
        expected = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
        assert torch.allclose(net(x), expected)


def test_super_resolution_bad_arguments():
    with pytest.raises(BadInputError, match=r"scale must be one of \[2, 4, 8\], got 3\."):
        SuperResolutionNet(scale=3)
    with pytest.raises(BadInputError, match=r"norm must be one of .*, got 'group'"):
        SuperResolutionNet(norm="group")
    with pytest.raises(BadInputError, match=r"at least 5x5 px"):
        SuperResolutionNet()(torch.rand(1, 3, 4, 4))


def test_parameter_counts():
    assert count_parameters(TransformerNet()) == PAPER_PARAMETERS  # the paper's size: ~1.68 M
    assert count_parameters(TransformerNet.lite()) == LITE_PARAMETERS
    assert LITE_PARAMETERS * 20 < PAPER_PARAMETERS
    assert count_parameters(SuperResolutionNet()) == SR4_PARAMETERS
    # a x8 network has one more upsampling stage: 3x3 conv 64 -> 64 with bias
    assert count_parameters(SuperResolutionNet(8)) == SR4_PARAMETERS + 9 * 64 * 64 + 64


def test_describe_network_rows_follow_the_data():
    net = TransformerNet()
    rows = describe_network(net, size=64)
    assert [r["stage"] for r in rows] == [
        "stem", "down1", "down2", *(f"blocks.{i}" for i in range(5)), "up1", "up2", "head"
    ]  # fmt: skip
    shapes = {r["stage"]: r["shape"] for r in rows}
    assert shapes["stem"] == (32, 64, 64)
    assert shapes["down2"] == shapes["blocks.4"] == (128, 16, 16)
    assert shapes["up1"] == (64, 32, 32)
    assert shapes["head"] == (3, 64, 64)
    assert sum(r["parameters"] for r in rows) == PAPER_PARAMETERS
    assert net.training  # the pass ran in eval mode, the mode is restored
    sr = {r["stage"]: r["shape"] for r in describe_network(SuperResolutionNet(8), size=16)}
    assert sr["upsample.2"] == (64, 128, 128) and sr["head"] == (3, 128, 128)


@pytest.mark.parametrize(
    "net",
    [
        TransformerNet.lite(),
        TransformerNet(channels=(8, 8, 16), blocks=1, upsample="transposed", residual=True),
        SuperResolutionNet(8, norm="batch", upsample="transposed"),
    ],
    ids=["lite", "transposed", "sr8-batch"],
)
def test_spec_round_trip(net, tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"spec": net.spec, "state": net.state_dict()}, path)
    saved = torch.load(path, weights_only=True)  # the spec holds only plain Python values
    assert json.loads(json.dumps(saved["spec"])) == net.spec
    rebuilt = build_network(saved["spec"])
    rebuilt.load_state_dict(saved["state"])
    x = torch.rand(1, 3, 13, 18)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), net.eval()(x))
    assert rebuilt.spec == net.spec


def test_spec_is_a_copy():
    net = TransformerNet.lite()
    net.spec["kwargs"]["channels"].append(99)
    assert net.spec["kwargs"]["channels"] == list(LITE["channels"])


def test_bad_specs_say_what_to_do():
    with pytest.raises(BadInputError, match=r"spec name 'unet' is unknown; use one of"):
        build_network({"name": "unet", "kwargs": {}})
    with pytest.raises(BadInputError, match=r"\['depth'\] are not arguments of 'transformer'"):
        build_network({"name": "transformer", "kwargs": {"depth": 3}})
    # the multi-style network hands its network arguments on: they are allowed, others not
    spec = {"name": "multistyle_transformer", "kwargs": {"styles": 2, "channels": [4, 8, 8]}}
    assert build_network(spec).spec["kwargs"]["channels"] == [4, 8, 8]
    with pytest.raises(BadInputError, match=r"\['chanels'\] are not arguments .*'channels'"):
        build_network({"name": "multistyle_transformer", "kwargs": {"styles": 2, "chanels": 4}})
    with pytest.raises(BadInputError, match=r"give a dict like"):
        build_network(["transformer"])
    with pytest.raises(BadInputError, match=r"channels=\[8, 16\]: give three whole numbers"):
        build_network({"name": "transformer", "kwargs": {"channels": [8, 16]}})
    with pytest.raises(BadInputError, match=r"upsample must be one of .*, got 'bilinear'"):
        build_network({"name": "transformer", "kwargs": {"upsample": "bilinear"}})
    with pytest.raises(BadInputError, match=r"outer_kernel=4: use an odd size"):
        TransformerNet(outer_kernel=4)


@pytest.mark.parametrize(
    "net",
    [TransformerNet(), TransformerNet.lite(), SuperResolutionNet()],
    ids=["paper", "lite", "sr4"],
)
def test_fast_inference_matches_plain_eager(net):
    x = torch.rand(2, 3, 23, 30)
    with torch.no_grad():
        expected = net.eval()(x).clamp(0, 1)
    net.train()
    fast = prepare_for_inference(net)
    out = infer(fast, x)
    assert out.shape == expected.shape
    assert (out - expected).abs().max() < 1e-3
    assert out.min() >= 0 and out.max() <= 1
    assert net.training and all(p.requires_grad for p in net.parameters())  # untouched
    out.mul_(2)  # an ordinary tensor, not an inference-mode one


@pytest.mark.skipif(not cxx_compiler(), reason="torch.compile needs a C++ compiler on a CPU")
@pytest.mark.slow
def test_compiled_inference_matches_plain_eager():
    net = TransformerNet(channels=(4, 8, 8), blocks=1).eval()  # few kernels: quick to compile
    x = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net(x).clamp(0, 1)
    compiled = prepare_for_inference(net, compile=True)
    assert any(isinstance(m, LowResUpsampleConv) for m in compiled.modules())
    assert (infer(compiled, x) - expected).abs().max() < 1e-4


def test_compiling_without_a_compiler_says_what_to_do(monkeypatch):
    monkeypatch.setattr("nst_utils.networks.shutil.which", lambda name: None)
    with pytest.raises(BadInputError, match=r"needs a C\+\+ compiler.*g\+\+\) or leave"):
        prepare_for_inference(TransformerNet.lite(), compile=True)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (9, 14)])
def test_low_resolution_upsampling_conv_is_the_same_function(size):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 5, 3)
    plain = torch.nn.Sequential(
        torch.nn.Upsample(scale_factor=2, mode="nearest"), torch.nn.ReflectionPad2d(1), conv
    )
    x = torch.randn(2, 6, *size)
    with torch.no_grad():
        assert torch.allclose(LowResUpsampleConv(conv)(x), plain(x), atol=1e-5)


def test_prepared_networks_compute_their_upsampling_at_low_resolution():
    counts = {
        "paper": TransformerNet(),
        "sr4": SuperResolutionNet(),
        "transposed": TransformerNet(upsample="transposed"),
    }
    found = {
        name: sum(isinstance(m, LowResUpsampleConv) for m in prepare_for_inference(net).modules())
        for name, net in counts.items()
    }
    assert found == {"paper": 2, "sr4": 2, "transposed": 0}


def test_infer_refuses_non_images():
    with pytest.raises(
        BadInputError, match=r"infer takes \(N, 3, H, W\) image tensors; got \(3, 16, 16\)"
    ):
        infer(TransformerNet.lite(), torch.rand(3, 16, 16))


def overfit(net, inputs, target, steps=50, lr=3e-3):
    """Adam on the mean squared error to one target: (first loss, last loss)."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.mse_loss(net(inputs), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


def gradient_image(size: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([yy, xx, (1 - yy) * xx])[None]


def test_transformer_can_overfit_one_image():
    net = seeded(TransformerNet, **LITE)
    first, last = overfit(net, torch.rand(1, 3, 32, 32), gradient_image(32))
    assert last < first / 5


@pytest.mark.slow
def test_super_resolution_can_overfit_one_image():
    stripes = 0.5 + 0.4 * torch.sin(2.2 * torch.arange(32.0))  # a period of 2.9 px
    target = stripes.expand(1, 3, 32, 32)
    low = F.avg_pool2d(target, 4)  # 8 x 8, the stripes averaged away: bicubic cannot help
    first, last = overfit(seeded(SuperResolutionNet), low, target, lr=1e-3)
    assert last < first / 5


def test_tanh_output_stays_in_range_and_refuses_residual():
    net = seeded(TransformerNet.lite, output="tanh")
    with torch.no_grad():
        y = net(torch.rand(2, 3, 21, 30) * 50)  # an input far outside [0, 1]
    assert y.shape == (2, 3, 21, 30) and y.min() >= 0 and y.max() <= 1
    assert build_network(net.spec).output == "tanh"
    with pytest.raises(BadInputError, match="output='tanh'.*residual"):
        TransformerNet(residual=True, output="tanh")
    with pytest.raises(BadInputError, match="output"):
        TransformerNet(output="sigmoid")
