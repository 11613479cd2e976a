"""``nst transform`` with multi-style and AdaIN models (images, folders, videos, ONNX),
``nst train-multistyle`` and ``nst train-adain``, on tiny inputs with random VGG weights:
each style option works, and each misuse is one line naming the file or option."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from nst_utils import adain, multistyle
from nst_utils.checkpoints import save_model
from nst_utils.cli import main
from nst_utils.images import as_tensor
from nst_utils.multistyle import ConditionalInstanceNorm2d, MultiStyleConfig, MultiStyleNet
from nst_utils.paths import REPO_ROOT
from nst_utils.training import initialized

pytestmark = pytest.mark.usefixtures("one_thread")
MODELS = REPO_ROOT / "models"


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str, *needles: str) -> bool:
    return (
        len(err.splitlines()) == 1
        and err.startswith("nst: error: ")
        and all(n in err for n in needles)
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A multi-style model (3 styles), an AdaIN model (VGG16, random weights), a photo,
    two styles and masks."""
    root = tmp_path_factory.mktemp("cli_styles")
    net = MultiStyleNet.lite(3, output="tanh")
    generator = torch.Generator().manual_seed(0)
    for norm in net.modules():
        if isinstance(norm, ConditionalInstanceNorm2d):
            norm.weight.data = 0.5 + torch.rand(norm.weight.shape, generator=generator)
            norm.bias.data = torch.randn(norm.bias.shape, generator=generator)
    save_model(root / "multi.pth", net, kind="multistyle",
               config=dataclasses.asdict(MultiStyleConfig()),
               extra={"styles": ["a.png", "b.png", "c.png"]})  # fmt: skip
    encoder = adain.make_encoder("vgg16", "random")
    decoder = initialized(lambda: adain.Decoder("vgg16"), 0)
    save_model(root / "adain.pth", decoder.half(), kind="adain",
               config=dataclasses.asdict(adain.AdaINConfig(arch="vgg16")),
               extra={"encoder": adain.encoder_identity(encoder, "random")})  # fmt: skip
    rng = np.random.default_rng(0)
    low = (rng.random((4, 5, 3)) * 255).astype(np.uint8)
    Image.fromarray(low).resize((40, 32), Image.BICUBIC).save(root / "photo.png")
    for name in ("s1.png", "s2.png"):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(root / name)
    mask = np.zeros((32, 40), np.uint8)
    mask[:, :20] = 255
    Image.fromarray(mask).save(root / "mask.png")
    Image.fromarray(mask[:30]).save(root / "small_mask.png")
    Image.fromarray(np.stack([mask, mask * 0, mask * 0], -1)).save(root / "red_mask.png")
    (root / "text_mask.png").write_text("not an image")
    return root


def test_a_multistyle_model_takes_an_index_or_a_blend(files, tmp_path, capsys):
    photo = files / "photo.png"
    for option, value in (("--style-index", "1"), ("--style-blend", "1,1,0")):
        out = tmp_path / f"{option[2:]}.png"
        code, stdout, err = run(["transform", "-m", files / "multi.pth", "-i", photo, "-o", out,
                                 option, value, "-q"], capsys)  # fmt: skip
        assert code == 0, err
        net, _ = multistyle.load(files / "multi.pth")
        choice = 1 if option == "--style-index" else [0.5, 0.5, 0]
        expected = multistyle.stylize_tensor(net, as_tensor(photo), choice)
        assert (as_tensor(out) - expected).abs().max() <= 1 / 255 + 1e-6


@pytest.mark.slow
def test_an_adain_model_takes_styles_blends_alpha_colour_and_a_mask(files, tmp_path, capsys):
    base = ["transform", "-m", files / "adain.pth", "-i", files / "photo.png", "-q"]
    styles = ["-s", files / "s1.png", "-s", files / "s2.png"]
    for k, extra in enumerate(
        (["-s", files / "s1.png", "--alpha", "0.5", "--preserve-color", "luminance"],
         [*styles, "--style-blend", "0.3,0.7"],
         [*styles, "--mask", files / "mask.png", "--preserve-color", "histogram"],
         [*styles, "--mask", files / "mask.png", "--size", "20"])
    ):  # fmt: skip
        out = tmp_path / f"out{k}.png"
        code, _, err = run([*base, "-o", out, *extra], capsys)
        assert code == 0, err
        assert as_tensor(out).shape[-2:] == ((16, 20) if k == 3 else (32, 40))
    net, _ = adain.load(files / "adain.pth")
    photo = as_tensor(files / "photo.png")
    styles = [as_tensor(files / s, 512) for s in ("s1.png", "s2.png")]  # --style-size 512
    expected = adain.stylize_tensor(net, photo, styles, weights=[0.3, 0.7])
    assert (as_tensor(tmp_path / "out1.png") - expected).abs().max() <= 1 / 255 + 1e-6


@pytest.mark.slow
def test_style_statistics_are_computed_once_for_a_folder(files, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(3):
        Image.open(files / "photo.png").rotate(90 * k).save(folder / f"p{k}.png")
    calls = []
    original = adain.style_stats
    monkeypatch.setattr(adain, "style_stats", lambda *a: calls.append(1) or original(*a))
    argv = ["transform", "-m", files / "adain.pth", "-i", folder, "-o", tmp_path / "out"]
    code, out, err = run([*argv, "-s", files / "s1.png", "-q"], capsys)
    assert code == 0, err
    assert "wrote 3 image(s)" in out and len(calls) == 1


@pytest.mark.parametrize(
    "model, extra, needles",
    [
        ("multi.pth", ["--style-index", "3"],
         ["--style-index 3:", "holds 3 styles, 0 .. 2 (0: a.png, 1: b.png, 2: c.png)"]),
        ("multi.pth", ["--style-index", "-1"], ["--style-index -1:", "0 .. 2"]),
        ("multi.pth", [], ["multi.pth holds 3 styles", "--style-index N", "--style-blend"]),
        ("multi.pth", ["--style-blend", "1,1"],
         ["--style-blend 1,1: 2 weight(s) for 3 style of", "one weight per style of"]),
        ("multi.pth", ["--style-blend", "1,-1,1"], ["--style-blend 1,-1,1: weights must be >= 0"]),
        ("multi.pth", ["--style-blend", "0,0,0"], ["--style-blend 0,0,0: the weights are all 0"]),
        ("multi.pth", ["--style-index", "0", "--style-blend", "1,0,0"],
         ["--style-index and --style-blend: give one of them"]),
        ("multi.pth", ["--style-index", "0", "--alpha", "0.5"],
         ["--alpha:", "multi.pth is a multi-style model", "--alpha is for an AdaIN"]),
        ("multi.pth", ["--style-index", "0", "-s", "s1.png"], ["--style:", "multi-style model"]),
        ("adain.pth", ["-s", "s1.png", "--style-index", "0"],
         ["--style-index:", "adain.pth is an AdaIN any-style model", "is for a multi-style"]),
        ("adain.pth", [], ["--style:", "give a style image with --style IMAGE"]),
        ("adain.pth", ["-s", "s1.png", "-s", "s2.png", "--style-blend", "1"],
         ["--style-blend 1: 1 weight(s) for 2 --style images"]),
        ("adain.pth", ["-s", "s1.png", "--alpha", "1.5"], ["--alpha 1.5: give a number in 0 .. 1"]),
        pytest.param("adain.pth", ["-s", "s1.png", "-s", "s2.png", "--mask", "small_mask.png"],
                     ["--mask", "small_mask.png is 40x30 px but", "photo.png is 40x32 px"],
                     marks=pytest.mark.slow),
        ("adain.pth", ["-s", "s1.png", "-s", "s2.png", "--mask", "red_mask.png"],
         ["--mask", "red_mask.png is a colour image; give a greyscale one"]),
        ("adain.pth", ["-s", "s1.png", "-s", "s2.png", "--mask", "text_mask.png"],
         ["text_mask.png"]),
        ("adain.pth", ["-s", "s1.png", "--mask", "mask.png"],
         ["--mask", "a mask chooses between styles; give two or more --style"]),
        ("adain.pth", ["-s", "s1.png", "-s", "s2.png", "--mask", "mask.png", "--style-blend",
                       "1,1"], ["--mask and --style-blend: give one of them"]),
        ("adain.pth", ["-s", "s1.png", "--style-size", "8"], ["--style-size 8: use 16 .. 4096"]),
        ("adain.pth", ["-s", "s1.png", "--weights", "imagenet_copy.pth"],
         ["imagenet_copy.pth"]),
        (MODELS / "wave_lite.pth", ["--style-index", "0"],
         ["--style-index:", "wave_lite.pth is a fast style transfer model", "which does not"]),
        (MODELS / "wave_lite.pth", ["-s", "s1.png"], ["--style:", "is for an AdaIN"]),
        (MODELS / "sr_x4_feature.pth", [],
         ["sr_x4_feature.pth is a super-resolution model", "but a fast style transfer model",
          "or a multi-style model", "or an AdaIN any-style model", "is needed here"]),
        ("adain.pth", ["-s", "s1.png", "--batch-size", "2"], ["--batch-size:", "is no video"]),
    ],
)  # fmt: skip
def test_misuse_is_one_line_naming_the_file_or_option(files, tmp_path, capsys, model, extra,
                                                      needles):  # fmt: skip
    extra = [files / a if a.endswith(".png") else a for a in extra]
    model = files / model if isinstance(model, str) else model
    code, _, err = run(["transform", "-m", model, "-i", files / "photo.png",
                        "-o", tmp_path / "out.png", "-q", *extra], capsys)  # fmt: skip
    assert code == 2 and one_error(err, *needles), err
    assert not (tmp_path / "out.png").exists()


def test_an_adain_model_refuses_other_vgg_weights_in_one_line(files, tmp_path, capsys):
    other = tmp_path / "vgg16.pth"
    from nst_utils.models import load_vgg_state

    torch.save(load_vgg_state("vgg16", "random", seed=7), other)
    code, _, err = run(["transform", "-m", files / "adain.pth", "-i", files / "photo.png",
                        "-o", tmp_path / "o.png", "-s", files / "s1.png", "--weights", other],
                       capsys)  # fmt: skip
    assert code == 2 and one_error(err, "adain.pth: its decoder was trained with VGG16 random "
                                   "weights (seed 0), but the VGG weights at hand are VGG16 "
                                   "vgg16.pth", "NST_WEIGHTS=random"), err  # fmt: skip


def test_outputs_never_replace_a_style_image_or_the_mask(files, capsys):
    code, _, err = run(["transform", "-m", files / "adain.pth", "-i", files / "photo.png",
                        "-o", files / "s1.png", "-s", files / "s1.png"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "s1.png is also an input"), err


def make_clip(path, frames=6, size=(32, 40), fps=10):
    """A clip with a moving gradient and a tone."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.height, video.width = size
        video.pix_fmt = "yuv420p"
        sound = out.add_stream("aac", rate=8000)
        for i in range(frames):
            pixels = np.full((*size, 3), 90, np.uint8)
            pixels[..., 1] = (np.arange(size[1]) * 6 + i * 12) % 255
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        tone = np.sin(2 * np.pi * 440 * np.arange(8000 * frames // fps) / 8000) * 8000
        chunk = av.AudioFrame.from_ndarray(tone.astype(np.int16)[None], format="s16",
                                           layout="mono")  # fmt: skip
        chunk.sample_rate, chunk.pts = 8000, 0
        out.mux(sound.encode(chunk))
        out.mux(sound.encode())
    return path


@pytest.mark.slow
def test_videos_through_each_kind_of_model(files, tmp_path, capsys):
    av = pytest.importorskip("av")
    clip = make_clip(tmp_path / "clip.mp4")
    for model, extra in ((MODELS / "wave_lite.pth", []),
                         (files / "multi.pth", ["--style-blend", "1,0,1"]),
                         (files / "adain.pth", ["-s", files / "s1.png", "-s", files / "s2.png",
                                                "--mask", files / "mask.png"])):  # fmt: skip
        out = tmp_path / f"{model.stem}.mkv"
        code, stdout, err = run(["transform", "-m", model, "-i", clip, "-o", out, "-q",
                                 "--batch-size", "4", *extra], capsys)  # fmt: skip
        assert code == 0, err
        assert "6 frames, 40x32 px, 10 fps, sound kept" in stdout
        with av.open(str(out)) as result:
            assert result.streams.audio and result.streams.video[0].average_rate == 10
            assert sum(1 for _ in result.decode(video=0)) == 6
    code, _, err = run(["transform", "-m", files / "adain.pth", "-i", clip, "-o",
                        tmp_path / "x.mp4", "-s", files / "s1.png", "-s", files / "s2.png",
                        "--mask", files / "small_mask.png"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "small_mask.png is 40x30 px but", "clip.mp4 is 40x32"), err
    code, _, err = run(["transform", "-m", files / "multi.pth", "-i", clip, "-o",
                        tmp_path / "x.gif", "--style-index", "0"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "x.gif: unknown suffix"), err


def test_a_missing_video_extra_is_one_line(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    (tmp_path / "clip.mp4").write_bytes(b"")
    code, _, err = run(["transform", "-m", files / "multi.pth", "-i", tmp_path / "clip.mp4",
                        "-o", tmp_path / "o.mp4", "--style-index", "0"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, 'pip install "nst-course[video]"'), err


@pytest.mark.slow
def test_onnx_exports_of_both_run_in_transform(files, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    photo = files / "photo.png"
    for model, extra in (("multi", ["--style-index", "2"]), ("adain", ["-s", files / "s2.png"])):
        onnx = tmp_path / f"{model}.onnx"
        code, out, err = run(["export", "-m", files / f"{model}.pth", "-o", onnx], capsys)
        assert code == 0 and "checked against PyTorch" in out, err
        for path in (files / f"{model}.pth", onnx):
            result = tmp_path / f"{path.name}.png"
            code, _, err = run(["transform", "-m", path, "-i", photo, "-o", result, "-q", *extra],
                               capsys)  # fmt: skip
            assert code == 0, err
        difference = as_tensor(tmp_path / f"{model}.pth.png") - as_tensor(
            tmp_path / f"{model}.onnx.png")  # fmt: skip
        assert difference.abs().max() <= 2 / 255
    argv = ["transform", "-m", tmp_path / "adain.onnx", "-i", photo, "-o", tmp_path / "x.png"]
    code, _, err = run([*argv, "-s", files / "s1.png", "--alpha", "0.5"], capsys)
    assert code == 2 and one_error(err, "--alpha: ", "adain.onnx is an ONNX export"), err
    code, _, err = run(["transform", "-m", tmp_path / "multi.onnx", "-i", photo, "-o",
                        tmp_path / "x.png", "--style-index", "5"], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "--style-index 5:", "(0: a.png, 1: b.png, 2: c.png)"), err


@pytest.mark.slow
def test_the_training_commands_write_models(tmp_path, capsys):
    photos, styles = tmp_path / "photos", tmp_path / "styles"
    rng = np.random.default_rng(1)
    for folder, count in ((photos, 4), (styles, 2)):
        folder.mkdir()
        for k in range(count):
            Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(
                folder / f"{k}.png"
            )
    tiny = ["--steps", "2", "--batch-size", "2", "--crop-size", "32", "--device", "cpu", "-q",
            "--arch", "vgg16", "--loss-precision", "float32", "--sample-every", "0"]  # fmt: skip
    code, out, err = run(["train-multistyle", "--styles", styles, "--data", photos, "-o",
                          tmp_path / "m.pth", "--style-size", "32", *tiny], capsys)  # fmt: skip
    assert code == 0 and "wrote" in out, err
    assert multistyle.load(tmp_path / "m.pth")[0].styles == 2
    code, out, err = run(["train-multistyle", "-s", styles / "1.png", "-s", styles / "0.png",
                          "-s", styles / "0.png", "--data", photos, "-o", tmp_path / "m3.pth",
                          "--style-size", "32", *tiny], capsys)  # fmt: skip
    assert code == 0, err
    assert multistyle.load(tmp_path / "m3.pth")[1]["extra"]["styles"] == ["1.png", "0.png",
                                                                          "0.png"]  # fmt: skip
    code, out, err = run(["train-adain", "--styles", styles, "--data", photos, "-o",
                          tmp_path / "a.pth", *tiny], capsys)  # fmt: skip
    assert code == 0 and "wrote" in out, err
    assert adain.load(tmp_path / "a.pth")[1]["extra"]["encoder"]["source"] == "random"
    code, _, err = run(["train-adain", "--styles", styles, "--data", photos, "-o",
                        tmp_path / "a.pth", *tiny], capsys)  # fmt: skip
    assert code == 2 and one_error(err, "holds the checkpoint of an earlier run"), err
    with pytest.raises(SystemExit) as info:
        main(["train-multistyle", "--data", str(photos), "-o", str(tmp_path / "x.pth")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "one of the arguments --styles --style/-s is required" in err


@pytest.mark.slow
def test_help_stays_light():
    code = ("import sys; from nst_utils.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('nst_utils.video', 'nst_utils.export', 'av', 'onnx') "
            "if m in sys.modules]; print(heavy); assert not heavy")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
