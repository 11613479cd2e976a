import sys

import pytest
import torch

from nst_utils.errors import BadInputError, CheckpointError
from nst_utils.networks import LITE, TransformerNet, infer

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
def test_onnx_runtime_matches_pytorch(exported, shape):
    net, path = exported
    x = torch.rand(shape)
    out = OnnxNetwork(path)(x)
    assert out.shape == shape
    assert (out - infer(net, x)).abs().max() <= 1e-3
    assert out.min() >= 0 and out.max() <= 1


def test_export_writes_only_the_file(exported):
    net, path = exported
    assert [p.name for p in path.parent.iterdir()] == ["net.onnx"]  # no temp files left
    assert net.training  # the network's mode is left alone


def test_export_refuses_bad_sizes(tmp_path):
    with pytest.raises(BadInputError, match=r"example_size=\(4, 64\): give \(height, width\)"):
        export_onnx(TransformerNet.lite(), tmp_path / "x.onnx", example_size=(4, 64))
    assert not list(tmp_path.iterdir())


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
