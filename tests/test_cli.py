"""The ``nst stylize`` command end to end on tiny images (NST_WEIGHTS=random from conftest)."""

import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from nst_utils import load_image
from nst_utils.cli import build_parser, main
from nst_utils.gatys import StyleTransferConfig
from nst_utils.options import config_from_args

TINY = ["--size", "32", "--steps", "2", "--arch", "vgg16", "--device", "cpu", "--quiet"]


@pytest.fixture
def images(tmp_path):
    content, style = tmp_path / "content.png", tmp_path / "style.jpg"
    Image.linear_gradient("L").resize((40, 30)).convert("RGB").save(content)
    Image.effect_noise((24, 24), 60).convert("RGB").save(style)
    return content, style


@pytest.mark.slow
def test_writes_the_output(images, tmp_path, capsys):
    content, style = images
    out = tmp_path / "out" / "result.png"
    code = main(["stylize", "-c", str(content), "-s", str(style), "-o", str(out), *TINY])
    assert code == 0
    assert load_image(out).size == (32, 24)
    assert "wrote" in capsys.readouterr().out
    assert not [p for p in out.parent.iterdir() if p.name != "result.png"]  # no temp files


def test_two_styles_and_options(images, tmp_path):
    content, style = images
    out = tmp_path / "mix.jpg"
    argv = ["stylize", "-c", str(content), "-s", str(style), "-s", str(content), "-o", str(out)]
    argv += ["--style-blend", "0.7,0.3", "--preserve-color", "luminance", "--scales", "2"]
    argv += ["--style-layers", "relu1_1:1,relu2_1", "--content-layers", "relu2_1", *TINY]
    argv[argv.index("--steps") + 1] = "4"
    assert main(argv) == 0 and out.is_file()


def test_arguments_become_the_config():
    args = build_parser().parse_args(
        ["stylize", "-c", "c.jpg", "-s", "s.jpg", "-o", "o.jpg", "--style-weight", "5",
         "--style-layers", "relu1_1:2,relu3_1", "--optimizer", "adam", "--scales", "3"]
    )  # fmt: skip
    config = config_from_args(StyleTransferConfig, args)
    assert config.style_weight == 5 and config.optimizer == "adam" and config.scales == 3
    assert config.style_layers == {"relu1_1": 2.0, "relu3_1": 1.0}
    assert config.content_layers == {"relu4_2": 1.0}


def test_help_explains_with_examples():
    parser = build_parser()
    text = parser._subparsers._group_actions[0].choices["stylize"].format_help()
    text = " ".join(text.split())  # line breaks depend on the terminal width
    for needle in ("--style-blend", "--preserve-color", "examples:", "default: 512", "relu4_2"):
        assert needle in text


@pytest.mark.slow
def test_help_via_python_dash_m():
    run = subprocess.run(
        [sys.executable, "-m", "nst_utils", "stylize", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and "examples:" in run.stdout


def test_bad_image_exits_2_naming_the_file(images, tmp_path, capsys):
    content, _ = images
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    code = main(["stylize", "-c", str(content), "-s", str(broken), "-o", str(tmp_path / "o.png"),
                 *TINY])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "broken.jpg" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_output_equal_to_input_is_refused(images, capsys):
    content, style = images
    before = content.read_bytes()
    code = main(["stylize", "-c", str(content), "-s", str(style), "-o", str(content), *TINY])
    assert code == 2 and "input" in capsys.readouterr().err
    assert content.read_bytes() == before


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--style-weight", "-1"], "style_weight"),
        (["--style-layers", "relu9_1"], "unknown"),
        (["--steps", "0"], "steps"),
        (["--style-blend", "0.5,0.5"], "one weight per style"),
    ],
)
def test_bad_settings_exit_2(images, tmp_path, capsys, extra, needle):
    content, style = images
    argv = ["stylize", "-c", str(content), "-s", str(style), "-o", str(tmp_path / "o.png")]
    code = main([*argv, *TINY, *extra])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and not (tmp_path / "o.png").exists()


@pytest.mark.skipif(shutil.which("nst") is None, reason="package not installed with scripts")
@pytest.mark.slow
def test_console_script(images, tmp_path):
    content, _ = images
    run = subprocess.run(
        ["nst", "stylize", "-c", str(content), "-s", str(tmp_path / "missing.jpg"), "-o",
         str(tmp_path / "o.png"), *TINY],
        capture_output=True, text=True, timeout=120, env=os.environ | {"NST_WEIGHTS": "random"},
    )  # fmt: skip
    assert run.returncode == 2 and "missing.jpg" in run.stderr and "Traceback" not in run.stderr


TRAIN_TINY = ["--steps", "3", "--batch-size", "2", "--crop-size", "32", "--style-size", "32",
              "--weights", "random", "--device", "cpu", "--sample-every", "0",
              "--quiet"]  # fmt: skip


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.effect_noise((48, 40), 40 + 10 * i).convert("RGB").save(folder / f"p{i}.png")
    (folder / "notes.txt").write_text("not a photo")
    return folder


@pytest.mark.slow
def test_train_then_transform_a_file_and_a_folder(
    photo_folder, images, tmp_path, capsys, monkeypatch
):
    _, style = images
    model = tmp_path / "m.pth"
    assert main(["train", "-s", str(style), "-d", str(photo_folder), "-o", str(model),
                 *TRAIN_TINY]) == 0  # fmt: skip
    assert "wrote" in capsys.readouterr().out and (tmp_path / "m.run" / "checkpoint.pth").is_file()
    out = tmp_path / "one.jpg"
    assert main(["transform", "-m", str(model), "-i", str(photo_folder / "p0.png"), "-o",
                 str(out), "--quiet"]) == 0  # fmt: skip
    assert load_image(out).size == (48, 40)
    monkeypatch.setattr("nst_utils.networks.shutil.which", lambda name: None)
    code = main(["transform", "-m", str(model), "-i", str(photo_folder / "p0.png"), "-o",
                 str(tmp_path / "c.jpg"), "--compile", "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "needs a C++ compiler" in err and len(err.splitlines()) == 1
    code = main(["transform", "-m", str(tmp_path / "m.onnx"), "-i", str(photo_folder / "p0.png"),
                 "-o", str(tmp_path / "c.jpg"), "--compile"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "m.onnx is an ONNX model" in err and "--compile applies to .pth" in err
    (photo_folder / "sub").mkdir()
    Image.new("RGB", (20, 20)).save(photo_folder / "sub" / "nested.jpg")
    (photo_folder / "broken.png").write_bytes(b"\x89PNG broken")
    code = main(["transform", "-m", str(model), "-i", str(photo_folder), "-o",
                 str(tmp_path / "styled"), "--size", "32", "--quiet"])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0 and f"wrote 4 image(s) to {tmp_path / 'styled'}; skipped 1" in text
    assert sorted(str(p.relative_to(tmp_path / "styled"))
                  for p in (tmp_path / "styled").rglob("*.*")) == [
        "p0.png", "p1.png", "p2.png", "sub/nested.png"  # a folder's outputs are PNG
    ]  # fmt: skip
    assert load_image(tmp_path / "styled" / "p0.png").size == (32, 27)


def test_transform_refuses_other_models_and_writing_into_its_input(images, photo_folder,
                                                                    tmp_path, capsys):  # fmt: skip
    content, _ = images
    code = main(
        ["transform", "-m", str(content), "-i", str(content), "-o", str(tmp_path / "o.png")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "not a readable model file" in err and len(err.splitlines()) == 1
    code = main(["transform", "-m", str(tmp_path / "nope.pth"), "-i", str(photo_folder), "-o",
                 str(photo_folder / "out")])  # fmt: skip
    assert code == 2 and "outside the input folder" in capsys.readouterr().err


NET_TINY = ["--steps", "2", "--batch-size", "2", "--weights", "random", "--device", "cpu",
        "--sample-every", "0", "--quiet"]  # fmt: skip


def test_train_sr_then_enhance_makes_the_image_four_times_larger(photo_folder, tmp_path, capsys):
    model = tmp_path / "sr.pth"
    assert main(["train-sr", "-d", str(photo_folder), "-o", str(model), "--crop-size", "32",
                 "--channels", "8", "--blocks", "1", *NET_TINY]) == 0  # fmt: skip
    assert "wrote" in capsys.readouterr().out
    out = tmp_path / "large.png"
    assert main(["enhance", "-m", str(model), "-i", str(photo_folder / "p1.png"), "-o",
                 str(out), "--quiet"]) == 0  # fmt: skip
    assert load_image(out).size == (4 * 48, 4 * 40)


@pytest.mark.slow
def test_train_document_then_enhance_keeps_the_page_size(tmp_path, capsys):
    model = tmp_path / "doc.pth"
    assert main(["train-document", "-o", str(model), "--crop-size", "32", *NET_TINY]) == 0
    page = tmp_path / "page.png"
    Image.effect_noise((60, 44), 30).convert("RGB").save(page)
    assert main(["enhance", "-m", str(model), "-i", str(page), "-o", str(tmp_path / "c.png"),
                 "--quiet"]) == 0  # fmt: skip
    assert load_image(tmp_path / "c.png").size == (60, 44)
    capsys.readouterr()
    # a document model is not a style model, and the message says which command takes it
    code = main(["transform", "-m", str(model), "-i", str(page), "-o", str(tmp_path / "s.png")])
    err = capsys.readouterr().err
    assert code == 2 and "nst train-document / nst enhance" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_enhance_refuses_a_style_model_naming_both_accepted_kinds(photo_folder, images, tmp_path,
                                                                   capsys):  # fmt: skip
    _, style = images
    model = tmp_path / "style.pth"
    assert main(["train", "-s", str(style), "-d", str(photo_folder), "-o", str(model),
                 *TRAIN_TINY]) == 0  # fmt: skip
    capsys.readouterr()
    code = main(["enhance", "-m", str(model), "-i", str(photo_folder / "p0.png"), "-o",
                 str(tmp_path / "e.png")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert "is a fast style transfer model" in err
    assert "super-resolution model" in err and "document enhancement model" in err
