"""What a careless or hostile user tries on the trained-model commands (transform, train,
export, enhance, train-sr, train-document) and their Python API, one test per cause (issue
18): every bad input ends in one line naming the file or option (exit code 2; 1 for the
machine's limits), nothing a user gave is modified, nothing wrong is written silently, and
outputs and run folders are checked before any work. Models are built, not trained, where
training does not matter (random VGG weights, from conftest, where it does)."""

import os
import re
import shutil
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from nst_utils import (
    BadInputError,
    NSTError,
    as_tensor,
    commands,
    documents,
    fast_style,
    gatys,
    inference,
    load_image,
    superres,
    training,
)
from nst_utils import cli as cli_module
from nst_utils.checkpoints import save_model
from nst_utils.files import PARTIAL, atomic_write, remove_stale_partials
from nst_utils.gatys import StyleTransferConfig, stylize
from nst_utils.networks import SuperResolutionNet, TransformerNet, infer

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py

TRAIN = ["--steps", "2", "--batch-size", "2", "--crop-size", "32", "--weights", "random",
         "--device", "cpu", "--sample-every", "0", "--quiet"]  # fmt: skip
TRAININGS = ["train", "train-sr", "train-document"]
STOP = "the test stops here, where the work would begin"


def run_cli(argv, capsys):
    """(exit code, stdout, stderr) of one in-process command; never a traceback."""
    code = cli_module.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out.strip(), err.strip()


def one_error(err: str, *needles: str) -> bool:
    """``err`` is one line, an error, holding every needle."""
    return (
        len(err.splitlines()) == 1
        and err.startswith("nst: error: ")
        and all(n in err for n in needles)
    )


def snapshot(folder):
    """Every file under ``folder`` with its bytes, to compare before and after."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(root, photo folder, style image, {kind: model file}): untrained models of each kind."""
    root = tmp_path_factory.mktemp("hostile")
    photos = root / "photos"
    photos.mkdir()
    for i in range(3):
        Image.effect_noise((40, 32), 40 + 10 * i).convert("RGB").save(photos / f"p{i}.png")
    style = root / "style.png"
    Image.effect_noise((24, 24), 60).convert("RGB").save(style)
    torch.manual_seed(0)
    models = {
        "style": save_model(root / "style.pth", TransformerNet.lite(output="tanh"),
                            kind="fast_style", config={}),
        "sr": save_model(root / "sr.pth", SuperResolutionNet(channels=8, blocks=1),
                         kind="super_resolution", config={}),
        "document": save_model(root / "doc.pth", TransformerNet(channels=(8, 8, 8), blocks=1,
                               residual=True), kind="document", config={}),
    }  # fmt: skip
    return root, photos, style, models


def train_argv(command, files, output, *extra):
    _, photos, style, _ = files
    data = {"train": ["-s", style, "-d", photos], "train-sr": ["-d", photos]}.get(command, [])
    return [command, *data, "-o", output, *TRAIN, *extra]


@pytest.fixture
def no_training(monkeypatch):
    """Training stops with STOP where its work (the VGG loss network) would begin."""

    def stop(*args, **kwargs):
        raise NSTError(STOP)

    for module in (fast_style, superres, documents):
        monkeypatch.setattr(module, "make_loss", stop)


@pytest.fixture
def no_inference(monkeypatch):
    """Fail the test if a .pth network is applied."""

    def refuse(*args, **kwargs):
        raise AssertionError("the network ran before the input was checked")

    monkeypatch.setattr("nst_utils.networks.infer", refuse)


# --- data loss: no output replaces an input, no new run replaces an earlier one


@pytest.mark.parametrize(("command", "kind"), [("transform", "style"), ("enhance", "sr")])
def test_an_output_named_like_the_model_never_replaces_it(files, tmp_path, capsys, command, kind):
    _, photos, _, models = files
    model = tmp_path / "model.jpg"  # a model file saved under an image's name
    model.write_bytes(models[kind].read_bytes())
    code, _, err = run_cli([command, "-m", model, "-i", photos / "p0.png", "-o", model], capsys)
    assert code == 2 and one_error(err, "--output", "is also an input")
    assert model.read_bytes() == models[kind].read_bytes()


def test_a_folder_run_never_writes_over_the_model(files, tmp_path, capsys):
    _, photos, _, models = files
    out = tmp_path / "out"
    out.mkdir()
    model = out / "p1.png"  # where the output of photos/p1.png would go
    model.write_bytes(models["style"].read_bytes())
    code, _, err = run_cli(["transform", "-m", model, "-i", photos, "-o", out], capsys)
    assert code == 2 and one_error(err, str(model), "is also an input")
    assert model.read_bytes() == models["style"].read_bytes()
    assert [p.name for p in out.iterdir()] == ["p1.png"]  # nothing written before the check


def test_a_folder_run_never_writes_over_another_input(files, tmp_path, capsys):
    source = tmp_path / "in"
    (source / "in").mkdir(parents=True)
    for path in (source / "a.png", source / "in" / "a.png"):
        Image.effect_noise((20, 20), 50).convert("RGB").save(path)
    before = snapshot(tmp_path)
    code, _, err = run_cli(["transform", "-m", files[3]["style"], "-i", source, "-o", tmp_path],
                           capsys)  # fmt: skip
    assert code == 2 and one_error(err, f"{source / 'a.png'} would replace an input image")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", TRAININGS)
def test_a_new_run_never_replaces_an_earlier_runs_checkpoint(files, tmp_path, capsys,
                                                             no_training, command):  # fmt: skip
    run = tmp_path / "m.run"
    run.mkdir()
    (run / "checkpoint.pth").write_bytes(b"15 steps of an earlier run")
    code, _, err = run_cli(train_argv(command, files, tmp_path / "m.pth"), capsys)
    assert code == 2 and one_error(err, str(run), "earlier run", "--resume", "another --run-dir")
    assert (run / "checkpoint.pth").read_bytes() == b"15 steps of an earlier run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.run"]


@pytest.mark.parametrize("command", TRAININGS)
@pytest.mark.parametrize(
    ("run_dir", "output", "needle"),
    [
        ("m.pth", "m.pth", "is the output file"),
        ("run", "run/checkpoint.pth", "would replace the run's own checkpoint.pth"),
        ("run", "run/log.csv", "unknown suffix"),
        ("file.txt", "m.pth", "is a file"),
    ],
)
def test_run_folders_that_clash_with_files_are_refused_up_front(
    files, tmp_path, capsys, no_training, command, run_dir, output, needle
):
    (tmp_path / "file.txt").write_text("a user's notes")
    code, _, err = run_cli(
        train_argv(command, files, tmp_path / output, "--run-dir", tmp_path / run_dir), capsys
    )
    assert code == 2 and one_error(err, needle) and STOP not in err
    assert (tmp_path / "file.txt").read_text() == "a user's notes"


@pytest.mark.parametrize("command", ["train", "train-sr"])
@pytest.mark.parametrize("where", [".", "samples", "a/b"])
def test_a_run_folder_in_the_training_photos_is_refused(files, tmp_path, capsys, no_training,
                                                       command, where):  # fmt: skip
    _, photos, _, _ = files
    before = snapshot(photos)
    code, _, err = run_cli(
        train_argv(command, files, tmp_path / "m.pth", "--run-dir", photos / where), capsys
    )
    assert code == 2 and one_error(err, "--run-dir", "lies in the training photos --data")
    assert snapshot(photos) == before


def test_the_default_run_folder_inside_the_photos_is_refused_too(files, capsys, no_training):
    _, photos, _, _ = files
    code, _, err = run_cli(train_argv("train", files, photos / "m.pth"), capsys)
    assert code == 2 and one_error(err, "m.run lies in the training photos")
    assert not (photos / "m.run").exists()


# --- resuming: the same style image and photos, or a clear refusal


@pytest.fixture(scope="module")
def trained(files, tmp_path_factory):
    """A model file whose 2-step run (checkpoint in OUTPUT.run) trained on ``files``."""
    output = tmp_path_factory.mktemp("run") / "m.pth"
    assert cli_module.main([str(a) for a in train_argv("train", files, output)]) == 0
    return output


@pytest.mark.slow
def test_resume_refuses_another_style_image_of_the_same_name(files, trained, tmp_path, capsys,
                                                              no_training):  # fmt: skip
    _, photos, style, _ = files
    other = tmp_path / style.name  # same name, another picture
    Image.effect_noise((24, 24), 10).convert("RGB").save(other)
    run = trained.with_suffix(".run")
    before = snapshot(run)
    argv = ["train", "-s", other, "-d", photos, "-o", trained, *TRAIN, "--steps", "4", "--resume"]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and one_error(err, "cannot resume with another style image", "style.png")
    assert snapshot(run) == before


@pytest.mark.slow
def test_resume_refuses_other_training_photos(files, trained, tmp_path, capsys, no_training):
    _, photos, style, _ = files
    other = tmp_path / "photos"
    shutil.copytree(photos, other)
    Image.effect_noise((40, 32), 99).convert("RGB").save(other / "p0.png")  # one photo changed
    argv = ["train", "-s", style, "-d", other, "-o", trained, *TRAIN, "--steps", "4", "--resume"]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and one_error(
        err, "cannot resume with another --data", str(photos), str(other)
    )


@pytest.mark.slow
def test_resume_continues_with_the_same_photos_moved_and_cleans_up(files, trained, tmp_path,
                                                                   capsys):  # fmt: skip
    _, photos, style, _ = files
    moved = tmp_path / "moved"
    shutil.copytree(photos, moved)
    run = tmp_path / "m.run"
    shutil.copytree(trained.with_suffix(".run"), run)
    stale = run / f".checkpoint.pth.x1y2z3.99999999{PARTIAL}"  # left by a killed run
    stale.write_bytes(b"half a checkpoint")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    argv = ["train", "-s", style, "-d", moved, "-o", tmp_path / "m.pth", *TRAIN, "--steps", "3",
            "--resume"]  # fmt: skip
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and "wrote" in out and "3 steps" in out
    assert not stale.exists()


def test_resume_without_a_checkpoint_says_so(files, tmp_path, capsys, no_training):
    code, _, err = run_cli(train_argv("train", files, tmp_path / "m.pth", "--resume"), capsys)
    assert code == 2 and one_error(err, "--resume", "holds no checkpoint", "without --resume")


# --- silent wrong results: damaged weights


def damaged(path, folder, value=float("nan"), name=None):
    """A copy of model ``path`` with one weight set to ``value`` (all of tensor ``name``)."""
    record = torch.load(path, weights_only=True)
    if name is None:
        first = next(k for k, v in record["state_dict"].items() if v.is_floating_point())
        record["state_dict"][first].view(-1)[0] = value
    else:
        record["state_dict"][name].fill_(value)
    out = folder / f"damaged_{path.name}"
    torch.save(record, out)
    return out


@pytest.mark.parametrize("kind", ["style", "sr", "document"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_models_with_nan_or_inf_weights_are_refused(files, tmp_path, capsys, kind, value):
    _, photos, _, models = files
    model = damaged(models[kind], tmp_path, value)
    command = "transform" if kind == "style" else "enhance"
    code, _, err = run_cli([command, "-m", model, "-i", photos / "p0.png", "-o",
                            tmp_path / "o.png"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, str(model), "NaN or infinite values")
    code, _, err = run_cli(["export", "-m", model, "-o", tmp_path / "o.onnx"], capsys)
    assert code == 2 and one_error(err, str(model), "NaN or infinite values")
    assert sorted(p.name for p in tmp_path.iterdir()) == [model.name]


def test_an_output_that_overflows_is_refused_not_written_black(files, tmp_path, capsys):
    _, photos, _, models = files
    model = damaged(models["document"], tmp_path, 3e38, "head.conv.weight")  # sums overflow
    out = tmp_path / "o.png"
    code, _, err = run_cli(["enhance", "-m", model, "-i", photos / "p0.png", "-o", out], capsys)
    assert code == 2 and one_error(err, str(model), "output holds NaN or infinite values")
    assert not out.exists()


# --- ONNX: what a file is travels with it


@pytest.fixture(scope="module")
def onnx_style(files, tmp_path_factory):
    """The style model exported by ``nst export`` (once: exporting takes seconds)."""
    for package in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(package)
    path = tmp_path_factory.mktemp("onnx") / "style.onnx"
    assert cli_module.main(["export", "-m", str(files[3]["style"]), "-o", str(path)]) == 0
    return path


def relabel(path, out, **entries):
    """A copy of ONNX file ``path`` whose nst-course metadata is ``entries`` (none: none)."""
    import onnx

    model = onnx.load(str(path))
    kept = {p.key: p.value for p in model.metadata_props if not p.key.startswith("nst_course.")}
    kept |= {f"nst_course.{k}": v for k, v in entries.items()}
    del model.metadata_props[:]
    for key, value in kept.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(out))
    return out


def graph(out, inputs, output_shape, nodes):
    """A small hand-made ONNX graph: inputs [(name, shape)], one output 'y'."""
    import onnx
    from onnx import TensorProto, helper

    made = helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
    )
    model = helper.make_model(made, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(out))
    return out


@pytest.mark.slow
def test_export_records_what_the_model_is(files, onnx_style):
    import json

    from nst_utils.export import OnnxNetwork

    runner = OnnxNetwork(onnx_style)
    assert runner.kind == "fast_style" and runner.scale == 1
    assert runner.metadata["format"] == "nst-course" and "[0, 1]" in runner.metadata["input"]
    spec = torch.load(files[3]["style"], weights_only=True)["network"]
    assert json.loads(runner.metadata["network"]) == json.loads(json.dumps(spec))


@pytest.mark.slow
def test_onnx_exports_are_refused_by_the_other_command(files, onnx_style, tmp_path, capsys):
    _, photos, _, _ = files
    code, _, err = run_cli(["enhance", "-m", onnx_style, "-i", photos / "p0.png", "-o",
                            tmp_path / "o.png"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "the ONNX export of a fast style transfer model",
                                   "or a document enhancement model")  # fmt: skip
    upscaler = relabel(onnx_style, tmp_path / "sr.onnx", kind="super_resolution", scale="4")
    code, _, err = run_cli(["transform", "-m", upscaler, "-i", photos / "p0.png", "-o",
                            tmp_path / "o.png"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "the ONNX export of a super-resolution model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sr.onnx"]


@pytest.mark.slow
def test_an_onnx_file_without_metadata_runs_on_a_stated_assumption(files, onnx_style, tmp_path,
                                                                   capsys):  # fmt: skip
    _, photos, _, _ = files
    plain = relabel(onnx_style, tmp_path / "plain.onnx")
    code, out, err = run_cli(["transform", "-m", plain, "-i", photos / "p0.png", "-o",
                              tmp_path / "o.png", "-q"], capsys)  # fmt: skip
    assert code == 0 and load_image(tmp_path / "o.png").size == (40, 32)
    assert len(err.splitlines()) == 1 and err.startswith("nst: warning: ")
    assert "carries no nst-course metadata" in err and "assuming a fast style transfer" in err


def test_an_upscaler_without_metadata_is_refused_by_transform(files, tmp_path, capsys):
    pytest.importorskip("onnx")
    from onnx import helper

    _, photos, _, _ = files
    scales = helper.make_node("Constant", [], ["s"], value_floats=[1.0, 1.0, 4.0, 4.0])
    resize = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest")
    x4 = graph(tmp_path / "x4.onnx", [("x", ["n", 3, "h", "w"])], ["n", 3, "H", "W"],
               [scales, resize])  # fmt: skip
    argv = ["-m", x4, "-i", photos / "p0.png", "-q"]
    code, _, err = run_cli(["transform", *argv, "-o", tmp_path / "t.png"], capsys)
    assert code == 2 and "gave (1, 3, 128, 160) for images (1, 3, 32, 40)" in err
    assert not (tmp_path / "t.png").exists()
    code, _, err = run_cli(["enhance", *argv, "-o", tmp_path / "e.png"], capsys)
    assert code == 0 and load_image(tmp_path / "e.png").size == (160, 128)


@pytest.mark.parametrize(
    "inputs",
    [
        [("a", [1, 3, "h", "w"]), ("b", [1, 3, "h", "w"])],
        [("a", ["n", "h"])],
        [("a", [1, 1, 8, 8])],
    ],
    ids=["two inputs", "rank 2", "one channel"],
)
def test_onnx_graphs_of_another_shape_are_one_line(files, tmp_path, capsys, inputs):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import helper

    _, photos, _, _ = files
    node = helper.make_node("Sum", [name for name, _ in inputs], ["y"])
    path = graph(tmp_path / "odd.onnx", inputs, inputs[0][1], [node])
    code, _, err = run_cli(["transform", "-m", path, "-i", photos / "p0.png", "-o",
                            tmp_path / "o.png"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "odd.onnx: the ONNX graph's inputs are", "one input")


@pytest.mark.slow
def test_onnx_weights_with_nan_are_refused(files, onnx_style, tmp_path, capsys):
    import onnx
    from onnx import numpy_helper

    _, photos, _, _ = files
    model = onnx.load(str(onnx_style))
    tensor = next(t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    values = numpy_helper.to_array(tensor).copy()
    values.flat[0] = np.nan
    tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
    onnx.save(model, str(tmp_path / "nan.onnx"))
    code, _, err = run_cli(["transform", "-m", tmp_path / "nan.onnx", "-i", photos / "p0.png",
                            "-o", tmp_path / "o.png"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "nan.onnx: the weights hold NaN or infinite values")


@pytest.mark.slow
def test_onnx_runtime_out_of_memory_is_one_line(files, onnx_style, tmp_path, capsys, monkeypatch):
    from nst_utils import export

    class Fail(Exception):  # onnxruntime's exceptions are no RuntimeError
        pass

    class Starved:
        def __init__(self, session):
            self.session = session

        def __getattr__(self, name):
            return getattr(self.session, name)

        def run(self, *args, **kwargs):
            raise Fail("Non-zero status code returned while running Conv node. Failed to "
                       "allocate memory for requested buffer of size 576000000")  # fmt: skip

    real = export._session
    monkeypatch.setattr(export, "_session", lambda model, what: Starved(real(model, what)))
    _, photos, _, _ = files
    code, _, err = run_cli(["transform", "-m", onnx_style, "-i", photos / "p0.png", "-o",
                            tmp_path / "o.png"], capsys)  # fmt: skip
    assert code == 1 and one_error(err, "out of memory", "lower --size")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_onnx_network_checks_its_images_like_infer(onnx_style):
    from nst_utils.export import OnnxNetwork

    runner = OnnxNetwork(onnx_style)
    with pytest.raises(BadInputError, match="torch.uint8 tensor"):
        runner(torch.full((1, 3, 16, 16), 200, dtype=torch.uint8))
    with pytest.raises(BadInputError, match="NaN or infinite"):
        runner(torch.full((1, 3, 16, 16), float("nan")))


# --- tracebacks where a line belongs


@pytest.mark.parametrize("command", ["train", "train-sr"])
def test_every_loss_weight_zero_is_nothing_to_train(files, tmp_path, capsys, no_training, command):
    zeros = {
        "train": ["--content-weight", "0", "--style-weight", "0", "--tv-weight", "0"],
        "train-sr": ["--content-weight", "0", "--consistency-weight", "0"],
    }[command]
    code, _, err = run_cli(train_argv(command, files, tmp_path / "m.pth", *zeros), capsys)
    assert code == 2 and one_error(err, "are all 0: nothing to train")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc' is not a whole number >= 1"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE='0' is not a whole number >= 1"),
        ({"WORLD_SIZE": "2"}, "RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not set"),
        (
            {
                "WORLD_SIZE": "2",
                "RANK": "5",
                "LOCAL_RANK": "0",
                "MASTER_ADDR": "localhost",
                "MASTER_PORT": "29500",
            },
            "RANK=5, LOCAL_RANK=0 are no ranks of 2",
        ),
    ],  # fmt: skip
)
@pytest.mark.parametrize("command", TRAININGS)
def test_a_broken_torchrun_environment_says_how_to_launch(
    files, tmp_path, capsys, monkeypatch, no_training, env, needle, command
):
    for key in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, _, err = run_cli(train_argv(command, files, tmp_path / "m.pth"), capsys)
    assert code == 2 and one_error(err, needle, "torchrun --standalone --nproc_per_node")


def test_a_pooling_layer_too_deep_for_the_size_gets_the_size_message(tmp_path):
    content = tmp_path / "c.png"
    Image.effect_noise((30, 24), 60).convert("RGB").save(content)
    config = StyleTransferConfig(arch="vgg16", weights="random", size=25, steps=1, device="cpu",
                                 style_layers={"pool5": 1.0})  # fmt: skip
    with pytest.raises(BadInputError, match=r"content is 25x20 px.*pool5 needs at least 32 px"):
        stylize(content, content, config, progress=False)


def test_tensors_on_the_meta_device_get_the_packages_error():
    config = StyleTransferConfig(arch="vgg16", weights="random", size=32, steps=1, device="cpu")
    meta = torch.rand(1, 3, 32, 32, device="meta")
    with pytest.raises(BadInputError, match=r"content: a tensor on the 'meta' device"):
        stylize(meta, torch.rand(1, 3, 32, 32), config, progress=False)
    with pytest.raises(BadInputError, match=r"infer: the images are on the 'meta' device"):
        infer(TransformerNet.lite(), meta)


# --- folders


@pytest.fixture
def mixed(tmp_path):
    """A folder of images, some of which cannot be processed (and two named alike)."""
    source = tmp_path / "in"
    (source / "a" / "b").mkdir(parents=True)
    Image.effect_noise((30, 24), 50).convert("RGB").save(source / "a" / "b" / "x.jpg")
    Image.effect_noise((30, 24), 60).convert("RGB").save(source / "a" / "b" / "x.png")
    Image.new("RGB", (3, 3)).save(source / "tiny.png")  # under the 5 x 5 px a network takes
    Image.effect_noise((20, 20), 40).convert("P").save(source / "anim.gif")
    (source / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return source


def outputs(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_folder_runs_skip_what_they_cannot_process_and_count_it(files, mixed, tmp_path, capsys):
    model = files[3]["style"]
    before = snapshot(mixed)
    out = tmp_path / "out"
    code, stdout, err = run_cli(["transform", "-m", model, "-i", mixed, "-o", out, "-q"], capsys)
    assert code == 0
    warnings = err.splitlines()
    assert len(warnings) == 2 and all(w.startswith("nst: warning: skipped ") for w in warnings)
    assert "broken.jpg: not an image" in warnings[0] and "tiny.png: 3x3 px" in warnings[1]
    assert stdout == f"wrote 3 image(s) to {out}; skipped 2 that could not be processed (see above)"
    assert outputs(out) == ["a/b/x.jpg.png", "a/b/x.png", "anim.png"]  # PNG, no name clash
    assert snapshot(mixed) == before


def test_format_chooses_a_folders_output_format(files, mixed, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["transform", "-m", files[3]["style"], "-i", mixed, "-o", out, "-q", "--format", "JPG"]
    code, _, _ = run_cli(argv, capsys)
    assert code == 0 and outputs(out) == ["a/b/x.jpg", "a/b/x.png.jpg", "anim.jpg"]
    with Image.open(out / "anim.jpg") as saved:
        assert saved.format == "JPEG"
    code, _, err = run_cli(["transform", "-m", files[3]["style"], "-i", mixed / "anim.gif", "-o",
                            tmp_path / "one.png", "--format", "jpg"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "--format jpg but --output", "one.png")


def test_the_summary_names_the_output_folder(files, tmp_path, capsys):
    source = tmp_path / "in" / "a" / "b" / "c"
    source.mkdir(parents=True)
    Image.effect_noise((20, 20), 40).convert("RGB").save(source / "x.png")
    out = tmp_path / "out"
    argv = ["transform", "-m", files[3]["style"], "-i", tmp_path / "in", "-o", out, "-q"]
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0 and stdout == f"wrote 1 image(s) to {out}"


def test_ctrl_c_in_a_folder_run_says_how_many_outputs_were_written(files, tmp_path, capsys,
                                                                   monkeypatch):  # fmt: skip
    _, photos, _, models = files
    real_save = commands.save_image
    calls = []

    def interrupted_third(image, path):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_save(image, path)

    monkeypatch.setattr(commands, "save_image", interrupted_third)
    out = tmp_path / "out"
    code, _, err = run_cli(["transform", "-m", models["style"], "-i", photos, "-o", out, "-q"],
                           capsys)  # fmt: skip
    assert code == 130
    assert (
        err == f"nst: interrupted (wrote 2 of 3 outputs to {out}; the rest (1) were not written)."
    )
    assert outputs(out) == ["p0.png", "p1.png"]  # whole files, no partial one


def deny(monkeypatch, *folders):
    """Make ``folders`` unreadable (tests run as root too, where chmod would not do)."""
    real = os.scandir
    denied = {os.fspath(f) for f in folders}

    def scandir(path="."):
        if os.fspath(path) in denied:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_folders_are_reported(files, tmp_path, capsys, monkeypatch):
    _, photos, _, models = files
    source = tmp_path / "in"
    shutil.copytree(photos, source)
    (source / "locked").mkdir()
    Image.new("RGB", (9, 9)).save(source / "locked" / "hidden.png")
    deny(monkeypatch, source / "locked")
    out = tmp_path / "out"
    code, stdout, err = run_cli(["transform", "-m", models["style"], "-i", source, "-o", out,
                                 "-q"], capsys)  # fmt: skip
    assert code == 0 and stdout.startswith(f"wrote 3 image(s) to {out}")
    assert err == (f"nst: warning: {source / 'locked'}: cannot read this folder (Permission "
                   "denied); its images are skipped.")  # fmt: skip
    deny(monkeypatch, source)
    code, _, err = run_cli(["transform", "-m", models["style"], "-i", source, "-o", out], capsys)
    assert code == 2 and one_error(err, f"{source}: the folder cannot be read (Permission denied)")


def test_training_reports_unreadable_photo_folders(files, tmp_path, capsys, monkeypatch,
                                                   no_training):  # fmt: skip
    _, photos, style, _ = files
    source = tmp_path / "photos"
    shutil.copytree(photos, source / "readable")
    (source / "locked").mkdir()
    deny(monkeypatch, source / "locked")
    argv = ["train", "-s", style, "-d", source, "-o", tmp_path / "m.pth", *TRAIN]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and err.splitlines() == [
        f"nst: warning: {source / 'locked'}: cannot read this folder (Permission denied); its "
        "photos are left out.",
        f"nst: error: {STOP}",
    ]  # fmt: skip
    deny(monkeypatch, source)
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and one_error(err, f"{source}: the folder cannot be read")


# --- resources: refused before any work, with a way out


def test_enhance_refuses_an_output_larger_than_an_image_may_be(
    files, tmp_path, capsys, monkeypatch, no_inference
):
    monkeypatch.setattr(inference, "free_memory", lambda device: 10**15)  # any machine
    big = tmp_path / "big.png"
    Image.new("RGB", (2100, 2000), (90, 60, 30)).save(big)  # x4: 8400 x 8000 px, 67 MP
    out = tmp_path / "large.png"
    code, _, err = run_cli(["enhance", "-m", files[3]["sr"], "-i", big, "-o", out], capsys)
    assert code == 2 and one_error(err, "big.png: the x4 output would be 8400x8000 px",
                                   "more than the 64 MP", "makes it fit")  # fmt: skip
    size = int(re.search(r"--size (\d+) makes it fit", err).group(1))
    assert 64e6 * 0.8 < (4 * size) ** 2 * 2000 / 2100 <= 64e6 and not out.exists()


@pytest.mark.parametrize(
    ("kind", "size", "needle"),
    [("sr", "1024", "x4 output would be 4096x"), ("style", "2048", "output would be 2048x")],
)
def test_a_size_beyond_the_free_memory_is_refused(files, tmp_path, capsys, monkeypatch,
                                                  no_inference, kind, size, needle):  # fmt: skip
    _, photos, _, models = files
    monkeypatch.setattr(inference, "free_memory", lambda device: 60_000_000)  # 60 MB
    command = "transform" if kind == "style" else "enhance"
    out = tmp_path / "o.png"
    code, _, err = run_cli([command, "-m", models[kind], "-i", photos / "p0.png", "-o", out,
                            "--size", size], capsys)  # fmt: skip
    assert code == 2 and one_error(err, needle, "GB of memory; 0.1 GB are free", "--size")
    suggested = int(re.search(r"--size (\d+) makes it fit", err).group(1))
    assert 16 <= suggested < int(size) and not out.exists()


def test_a_folder_skips_images_too_large_for_the_memory(files, tmp_path, capsys, monkeypatch):
    _, photos, _, models = files
    source = tmp_path / "in"
    shutil.copytree(photos, source)
    Image.new("RGB", (400, 300)).save(source / "large.png")
    limit = inference.needed_bytes(40 * 32 * 16, 8) * 2  # room for the photos, not 400 px
    monkeypatch.setattr(inference, "free_memory", lambda device: limit)
    out = tmp_path / "out"
    code, stdout, err = run_cli(["enhance", "-m", models["sr"], "-i", source, "-o", out, "-q"],
                                capsys)  # fmt: skip
    assert code == 0 and "skipped 1" in stdout and outputs(out) == ["p0.png", "p1.png", "p2.png"]
    assert err.startswith("nst: warning: skipped ") and "large.png: the x4 output" in err


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"channels": [65536, 16, 32]}, "channels must be a whole number from 1 to 512"),
        ({"blocks": 10**7}, "blocks must be a whole number from 0 to 32"),
        ({"outer_kernel": 999}, "outer_kernel must be a whole number from 1 to 15"),
        ({"blocks": 30}, "missing ['blocks."),  # in bounds, but more than the file holds
    ],
)
def test_model_files_cannot_ask_for_huge_networks(files, tmp_path, capsys, change, needle):
    _, photos, _, models = files
    record = torch.load(models["style"], weights_only=True)
    record["network"]["kwargs"].update(change)
    torch.save(record, tmp_path / "huge.pth")
    started = time.perf_counter()
    code, _, err = run_cli(["transform", "-m", tmp_path / "huge.pth", "-i", photos / "p0.png",
                            "-o", tmp_path / "o.png"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "huge.pth: its weights do not fit", needle)
    assert time.perf_counter() - started < 20  # nothing of that size was built


@pytest.mark.parametrize(
    ("command", "extra", "needle"),
    [
        ("train", ["--crop-size", "100000"], "crop_size must be a whole number from 1 to"),
        ("train-sr", ["--channels", "65536"], "channels must be a whole number from 1 to 512"),
        ("train-sr", ["--blocks", "1000"], "blocks must be a whole number from 0 to 32, got 1000"),
        ("train-document", ["--strength", "1e30"], "strength must be a number from 0 to below 100"),
        ("train", ["--batch-size", "100000"], "100000 crops of crop_size=32 px are 102 M pixels"),
        ("train", ["--crop-size", "16", "--style-layers", "pool5"], "layer pool5 needs crops of"),
        (
            "train",
            ["--style-layers", "pool5", "--style-size", "16"],
            "style: 16x16 px at style_size",
        ),
        ("train-sr", ["--scale", "2", "--crop-size", "16", "--content-layers", "pool5"], "pool5"),
        ("train-document", ["--crop-size", "16", "--feature-layers", "pool5"], "at least 32 px"),
    ],
)
def test_training_settings_are_bounded(files, tmp_path, capsys, no_training, command, extra,
                                       needle):  # fmt: skip
    code, _, err = run_cli(train_argv(command, files, tmp_path / "m.pth", *extra), capsys)
    assert code == 2 and one_error(err, needle)


# --- files: errors name the user's path and come first; nothing half-written stays


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's /proc")
@pytest.mark.parametrize("command", ["stylize", "export", "transform", "train"])
def test_an_unwritable_place_is_refused_before_any_work(
    files, tmp_path, capsys, monkeypatch, no_training, no_inference, command
):
    _, photos, style, models = files
    monkeypatch.setattr(gatys, "stylize", lambda *a, **k: pytest.fail("stylize ran"))
    argv = {
        "stylize": ["stylize", "-c", photos / "p0.png", "-s", style, "-o", "/proc/o.png"],
        "export": ["export", "-m", models["style"], "-o", "/proc/o.onnx"],
        "transform": ["transform", "-m", models["style"], "-i", photos / "p0.png", "-o",
                      "/proc/o.png"],
        "train": train_argv("train", files, "/proc/o.pth"),
    }[command]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and one_error(err, "/proc/o.") and ".nst" not in err
    assert "no file can be written in /proc" in err or "/proc is not writable" in err


def test_a_failed_write_names_the_file_and_leaves_no_partial_file(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(28, "No space left on device", src)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as info, atomic_write(tmp_path / "result.png") as handle:
        handle.write(b"data")
    assert info.value.filename == str(tmp_path / "result.png")
    assert info.value.strerror == "No space left on device" and not list(tmp_path.iterdir())


def test_partial_files_say_what_they_are_and_stale_ones_are_removed(tmp_path):
    class Killed(Exception):
        pass

    with pytest.raises(Killed), atomic_write(tmp_path / "photo.png") as handle:
        (partial,) = tmp_path.iterdir()  # while writing
        handle.write(b"half")
        raise Killed
    assert partial.name.startswith(".photo.png.") and partial.name.endswith(
        f".{os.getpid()}{PARTIAL}"
    )
    old = time.time() - 3600
    dead = tmp_path / f".photo.png.abcd1234.99999999{PARTIAL}"  # no such process
    alive = tmp_path / f".photo.png.efgh5678.{os.getpid()}{PARTIAL}"
    fresh = tmp_path / f".other.png.ijkl9012.99999999{PARTIAL}"
    mine = tmp_path / "notes.99999999.nst-partial.txt"  # a user's file: never touched
    for path in (dead, alive, fresh, mine):
        path.write_bytes(b"x")
    for path in (dead, alive, mine):
        os.utime(path, (old, old))
    assert remove_stale_partials(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (alive, fresh, mine)
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_an_output_that_is_a_pipe_is_refused(files, tmp_path, capsys):
    _, photos, _, models = files
    pipe = tmp_path / "o.png"
    os.mkfifo(pipe)
    code, _, err = run_cli(["transform", "-m", models["style"], "-i", photos / "p0.png", "-o",
                            pipe], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "exists and is no regular file")


# --- the Python API


@pytest.mark.parametrize(
    ("images", "needle"),
    [
        (
            torch.full((1, 3, 16, 16), 200, dtype=torch.uint8),
            r"torch.uint8 tensor.*float\(\) / 255",
        ),
        (torch.full((1, 3, 16, 16), float("nan")), "NaN or infinite values"),
        (torch.rand(0, 3, 16, 16), r"an empty batch \(N = 0\)"),
        (torch.rand(1, 3, 16, 16) * 255, r"image values lie in \[.*\]; give RGB in \[0, 1\]"),
        (torch.rand(1, 3, 16, 16, device="meta"), "'meta' device"),
    ],
    ids=["uint8", "nan", "empty batch", "0..255 floats", "meta"],
)
def test_infer_checks_what_it_is_given(images, needle):
    with pytest.raises(BadInputError, match=rf"^infer: .*{needle}"):
        infer(TransformerNet.lite(), images)


def test_infer_refuses_an_output_that_is_not_finite():
    net = TransformerNet.lite()
    with torch.no_grad():
        net.stem.conv.weight.fill_(float("nan"))
    with pytest.raises(NSTError, match="output holds NaN or infinite values"):
        infer(net, torch.rand(1, 3, 16, 16))


def test_load_image_refuses_a_text_mode_file(files):
    _, photos, _, _ = files
    with (
        open(photos / "p0.png", encoding="utf-8") as text,
        pytest.raises(BadInputError, match="open in text mode; open it with 'rb'"),
    ):
        load_image(text)


def test_style_blend_may_be_a_tensor_or_an_array(files):
    _, photos, style, _ = files
    config = StyleTransferConfig(arch="vgg16", weights="random", size=32, steps=1, device="cpu")
    blends = [torch.tensor([0.5, 0.5]), np.array([0.5, 0.5]), [torch.tensor(0.5), np.float32(0.5)]]
    results = [stylize(photos / "p0.png", [style, style], config, style_blend=b, progress=False)
               for b in blends]  # fmt: skip
    assert all(torch.equal(r.image, results[0].image) for r in results)
    with pytest.raises(BadInputError, match="style_blend must hold numbers.*'a' is a str"):
        stylize(photos / "p0.png", [style, style], config, style_blend=["a", 1], progress=False)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.full((4, 4, 3), 100, np.int64), (100, 100, 100)),
        (np.full((4, 4), 65535, np.uint16), (255, 255, 255)),
        (np.full((4, 4, 3), 300, np.int64), r"an array of int64 with values 300 \.\. 300"),
        (np.full((4, 4, 3), -1, np.int16), r"an array of int16 with values -1 \.\. -1"),
    ],
)
def test_integer_arrays_are_called_what_they_are(array, expected):
    if isinstance(expected, tuple):
        assert load_image(array).getpixel((0, 0)) == expected
        return
    with pytest.raises(BadInputError, match=expected) as info:
        load_image(array)
    assert "float array" not in str(info.value)


def test_strength_says_its_real_limit(files, tmp_path, capsys, no_training):
    with pytest.raises(BadInputError, match=r"strength must be a number from 0 to below 100"):
        documents.DocumentConfig(strength=1e30).check()
    code, _, err = run_cli(train_argv("train-document", files, tmp_path / "m.pth",
                                      "--strength", "100"), capsys)  # fmt: skip
    assert code == 2 and one_error(err, "from 0 to below 100", "got 100.0")


def test_every_model_file_the_help_names_ships():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = cli_module.build_parser()
    texts = [p.format_help() for p in parser._subparsers._group_actions[0].choices.values()]
    named = set(re.findall(r"models/[\w.-]+\.pth", " ".join(texts)))
    assert "models/document_medium.pth" in named
    assert all(os.path.isfile(os.path.join(root, name)) for name in named), named


def test_as_tensor_refuses_integer_tensors_with_the_fix():
    with pytest.raises(BadInputError, match=r"a torch.int64 tensor; images are floats"):
        as_tensor(torch.zeros(1, 3, 8, 8, dtype=torch.int64))


def test_training_api_refuses_a_checkpoint_it_would_replace(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pth").write_bytes(b"earlier")
    config = training.TrainingConfig(steps=1, device="cpu")
    with pytest.raises(NSTError, match="holds the checkpoint of an earlier run"):
        training.fit(TransformerNet.lite(), lambda net, batch: {}, [torch.rand(3, 8, 8)], config,
                     kind="fast_style", run_dir=run, progress=False)  # fmt: skip
    assert (run / "checkpoint.pth").read_bytes() == b"earlier"
