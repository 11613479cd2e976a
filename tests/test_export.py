import sys

import pytest
import torch

from nst_utils import adain, multistyle
from nst_utils.adain import AdaINNet, Decoder
from nst_utils.errors import BadInputError, CheckpointError
from nst_utils.models import VGGFeatures
from nst_utils.multistyle import ConditionalInstanceNorm2d, MultiStyleNet, style_weights
from nst_utils.networks import LITE, TransformerNet, infer
from nst_utils.training import initialized

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
from nst_utils.export import OnnxNetwork, export_onnx  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module", params=[{}, LITE], ids=["paper", "lite"])
def exported(request, tmp_path_factory):
    """(network, path of its ONNX file), exported once per module."""
    torch.manual_seed(0)
    net = TransformerNet(**request.param)
    path = tmp_path_factory.mktemp("onnx") / "net.onnx"
    assert export_onnx(net, path, example_size=(32, 40)) == path
    return net, path


@pytest.mark.parametrize("shape", [(1, 3, 32, 40), (2, 3, 37, 53)])
@pytest.mark.slow
def test_onnx_runtime_matches_pytorch(exported, shape):
    net, path = exported
    x = torch.rand(shape)
    out = OnnxNetwork(path)(x)
    assert out.shape == shape
    assert (out - infer(net, x)).abs().max() <= 1e-3
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.slow
def test_export_writes_only_the_file(exported):
    net, path = exported
    assert [p.name for p in path.parent.iterdir()] == ["net.onnx"]  # no temp files left
    assert net.training  # the network's mode is left alone


def test_export_refuses_bad_sizes(tmp_path):
    with pytest.raises(BadInputError, match=r"example_size=\(4, 64\): give \(height, width\)"):
        export_onnx(TransformerNet.lite(), tmp_path / "x.onnx", example_size=(4, 64))
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_onnx_network_bad_inputs(exported, tmp_path):
    _, path = exported
    runner = OnnxNetwork(path)
    with pytest.raises(BadInputError, match=r"OnnxNetwork takes \(N, 3, H, W\) image tensors"):
        runner(torch.rand(3, 16, 16))
    with pytest.raises(BadInputError, match=r"OnnxNetwork needs images of at least 5x5 px"):
        runner(torch.rand(1, 3, 4, 16))
    with pytest.raises(BadInputError, match=r"missing.onnx does not exist"):
        OnnxNetwork(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match=r"junk.onnx is not an ONNX model"):
        OnnxNetwork(tmp_path / "junk.onnx")


@pytest.mark.parametrize("package", ["onnx", "onnxscript", "onnxruntime"])
def test_missing_packages_say_how_to_install(package, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` fail
    message = rf"optional package '{package}', which is not installed; run: pip install "
    with pytest.raises(BadInputError, match=message + r'"nst-course\[onnx\]"'):
        export_onnx(TransformerNet.lite(), tmp_path / "x.onnx")
    if package == "onnxruntime":
        with pytest.raises(BadInputError, match=message):
            OnnxNetwork(tmp_path / "x.onnx")


@pytest.fixture(scope="module")
def two_input_models(tmp_path_factory):
    """A multi-style and an AdaIN network (random weights), exported once."""
    folder = tmp_path_factory.mktemp("onnx_styles")
    multi = MultiStyleNet.lite(3, output="tanh")
    generator = torch.Generator().manual_seed(0)
    for norm in multi.modules():  # styles that differ
        if isinstance(norm, ConditionalInstanceNorm2d):
            norm.weight.data = 0.5 + torch.rand(norm.weight.shape, generator=generator)
            norm.bias.data = torch.randn(norm.bias.shape, generator=generator)
    encoder = VGGFeatures(["relu4_1"], arch="vgg16", weights="random")
    adain_net = AdaINNet(encoder, initialized(lambda: Decoder("vgg16"), 0))
    export_onnx(multi, folder / "multi.onnx", (32, 40), styles=["a", "b", "c"])
    export_onnx(adain_net, folder / "adain.onnx", (32, 40))
    return multi.eval(), adain_net.eval(), folder


@pytest.mark.slow
def test_multistyle_and_adain_exports_match_pytorch(two_input_models):
    multi, adain_net, folder = two_input_models
    runner = OnnxNetwork(folder / "multi.onnx", "multistyle")
    assert runner.kind == "multistyle" and runner.styles == 3
    assert runner.style_names == ["a", "b", "c"]
    x = torch.rand(2, 3, 37, 45)
    errors = []
    for choice in (0, 2, [0.2, 0.5, 0.3]):
        weights = style_weights(choice, 3)
        errors.append(
            (runner(x, weights) - multistyle.stylize_tensor(multi, x, choice)).abs().max()
        )
    runner = OnnxNetwork(folder / "adain.onnx", ("adain",))
    assert runner.kind == "adain" and runner.metadata["style_input"].startswith("style: float32")
    style = torch.rand(1, 3, 29, 51)
    expected = adain.stylize_tensor(adain_net, x, style)
    errors.append((runner(x, style) - expected).abs().max())
    print("ONNX parity (max |ONNX Runtime - PyTorch|):", [f"{e:.2e}" for e in errors])
    assert max(errors) <= 1e-3


@pytest.mark.slow
def test_two_input_graphs_refuse_a_missing_or_wrong_style(two_input_models):
    _, _, folder = two_input_models
    multi = OnnxNetwork(folder / "multi.onnx")
    with pytest.raises(BadInputError, match=r"multi.onnx: this ONNX graph needs style= \(style: "):
        multi(torch.rand(1, 3, 32, 32))
    with pytest.raises(BadInputError, match=r"style must be \(1, 3\) finite weights >= 0"):
        multi(torch.rand(1, 3, 32, 32), torch.tensor([[1.0, -1.0, 1.0]]))
    runner = OnnxNetwork(folder / "adain.onnx")
    with pytest.raises(BadInputError, match=r"adain.onnx \(style\) needs images of at least 16x16"):
        runner(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 8, 32))
    with pytest.raises(CheckpointError, match="is the ONNX export of an AdaIN any-style model"):
        OnnxNetwork(folder / "adain.onnx", "fast_style")


@pytest.mark.slow
def test_one_input_graphs_take_no_style(exported):
    _, path = exported
    with pytest.raises(BadInputError, match=r"this ONNX graph takes no style= \(it takes images"):
        OnnxNetwork(path)(torch.rand(1, 3, 16, 16), torch.rand(1, 3))
