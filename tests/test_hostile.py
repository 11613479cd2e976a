"""What a careless or hostile user tries, one test per cause: every bad input ends in one
clear line (a BadInputError, or exit code 2 from the command line), nothing is lost, and
no work is done before the output is known to be writable."""

import builtins
import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import nst_utils
from nst_utils import BadInputError, commands, gatys, load_image, save_image
from nst_utils import cli as cli_module
from nst_utils.files import atomic_write, check_output
from nst_utils.gatys import StyleTransferConfig, stylize

TINY = ["--size", "32", "--steps", "2", "--arch", "vgg16", "--device", "cpu", "--quiet"]


@pytest.fixture
def photos(tmp_path):
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.linear_gradient("L").resize((40, 30)).convert("RGB").save(content)
    Image.effect_noise((24, 24), 60).convert("RGB").save(style)
    return content, style


def run_cli(argv, capsys):
    code = cli_module.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip()


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the command line starts the optimisation."""

    def refuse(*args, **kwargs):
        raise AssertionError("the optimisation started before the output was checked")

    monkeypatch.setattr(gatys, "stylize", refuse)


# --- formats: the decoder is chosen by content, so the allow-list must not trust names


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("photo.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"),
        ("drawing.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'),
        ("scan.jpg", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"),
    ],
)
def test_postscript_svg_pdf_are_refused_whatever_the_name(tmp_path, monkeypatch, name, data):
    from PIL import EpsImagePlugin

    def ghostscript(*args, **kwargs):
        raise AssertionError("Ghostscript was reached")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript, raising=False)
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(BadInputError, match=rf"{name}: not an image in a format the course"):
        load_image(path)


def test_a_real_eps_file_is_refused(tmp_path):
    path = tmp_path / "real.png"
    Image.new("RGB", (8, 8), "red").save(tmp_path / "x.eps", format="EPS")
    path.write_bytes((tmp_path / "x.eps").read_bytes())
    with pytest.raises(BadInputError, match="not an image in a format"):
        load_image(path)


# --- outputs: checked before any work starts


@pytest.mark.slow
def test_output_in_a_missing_folder_is_created_first(photos, tmp_path, capsys):
    content, style = photos
    out = tmp_path / "new" / "deeper" / "o.png"
    code, _ = run_cli(["stylize", "-c", content, "-s", style, "-o", out, *TINY], capsys)
    assert code == 0 and out.is_file()


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: (d / "file").write_text("x") and d / "file" / "o.png", "is a file"),
        (lambda d: (d / "folder.png").mkdir() or d / "folder.png", "is a folder"),
        (lambda d: d / ("n" * 252 + ".png"), "file name is 256 bytes"),
        (lambda d: d / "o.xyz", "unknown suffix"),
        (lambda d: d / "o", "unknown suffix '(none)'"),
    ],
)
def test_bad_outputs_fail_before_any_work(photos, tmp_path, capsys, no_work, make, needle):
    content, style = photos
    code, err = run_cli(["stylize", "-c", content, "-s", style, "-o", make(tmp_path), *TINY],
                        capsys)  # fmt: skip
    assert code == 2 and needle in err and len(err.splitlines()) == 1


def test_unwritable_folder_fails_before_any_work(photos, tmp_path, capsys, monkeypatch, no_work):
    content, style = photos
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if m & os.W_OK else real_access(p, m))
    code, err = run_cli(["stylize", "-c", content, "-s", style, "-o", tmp_path / "o.png", *TINY],
                        capsys)  # fmt: skip
    assert code == 2 and "not writable" in err


def test_a_long_but_legal_name_is_written(tmp_path):
    name = "n" * 250 + ".png"  # 254 bytes: legal, and the temp name must not exceed the limit
    path = check_output(tmp_path / name)
    save_image(Image.new("RGB", (4, 4)), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_output_equal_to_an_input_through_another_spelling(photos, capsys, no_work):
    content, style = photos
    alias = content.parent / "." / content.name
    code, err = run_cli(["stylize", "-c", content, "-s", style, "-o", alias, *TINY], capsys)
    assert code == 2 and "also an input" in err


@pytest.mark.slow
def test_tilde_is_expanded_in_every_path_option(photos, tmp_path, capsys, monkeypatch):
    content, style = photos
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    argv = ["stylize", f"--content=~/{content.name}", f"--style=~/{style.name}",
            "--output=~/o.png", *TINY]  # fmt: skip
    code, _ = run_cli(argv, capsys)
    assert code == 0 and (tmp_path / "o.png").is_file() and not (tmp_path / "~").exists()


# --- sizes and numbers


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--size", "100000"], "size must be a whole number from 16 to 4096, got 100000"),
        (["--style-scale", "1000"], "Lower style_scale"),
        (["--seed", str(2**40)], "seed must be a whole number from 0 to 4294967295"),
        (["--seed", "-1"], "seed must be"),
        (["--style-blend", "1e308,1e308", "-s", "{style}"], "positive finite sum"),
        (["--device", "cpu:abc"], "device 'cpu:abc' is unknown"),
        (["--device", "cuda:x"], "is unknown"),
    ],
)
def test_bad_numbers_are_one_line_errors(photos, tmp_path, capsys, extra, needle):
    content, style = photos
    extra = [e.replace("{style}", str(style)) for e in extra]
    argv = ["stylize", "-c", content, "-s", style, "-o", tmp_path / "o.png", *TINY, *extra]
    code, err = run_cli(argv, capsys)
    assert code == 2 and needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--style-weight", "nan"], "'nan' is not a finite number"),
        (["--style-layers", "relu1_1:abc"], "bad layer weight in 'relu1_1:abc'"),
        (["--size", "big"], "invalid int value: 'big'"),
        (["--optimizer", "sgd"], "invalid choice: 'sgd'"),
    ],
)
def test_unparsable_options_are_one_line_errors(photos, tmp_path, capsys, extra, needle):
    content, style = photos
    argv = ["stylize", "-c", content, "-s", style, "-o", tmp_path / "o.png", *TINY, *extra]
    with pytest.raises(SystemExit) as info:
        cli_module.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and needle in err and len(err.splitlines()) == 1
    assert "--help" in err


def test_out_of_memory_gives_a_hint(photos, tmp_path, capsys, monkeypatch):
    content, style = photos

    def oom(*args, **kwargs):
        raise RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: 1e12 bytes")

    monkeypatch.setattr(gatys, "stylize", oom)
    code, err = run_cli(["stylize", "-c", content, "-s", style, "-o", tmp_path / "o.png", *TINY],
                        capsys)  # fmt: skip
    assert code == 1 and "out of memory" in err and "lower --size" in err


@pytest.mark.slow
def test_full_disk_while_writing_is_one_line(photos, tmp_path, capsys, monkeypatch):
    content, style = photos
    out = tmp_path / "o.png"

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(out))

    monkeypatch.setattr(commands, "save_image", full)
    code, err = run_cli(["stylize", "-c", content, "-s", style, "-o", out, *TINY], capsys)
    assert code == 1 and err == f"nst: error: {out}: No space left on device"


def test_style_image_too_small_for_its_deepest_layer(photos, tmp_path):
    content, _ = photos
    config = StyleTransferConfig(arch="vgg16", weights="random", size=64, steps=1,
                                 style_scale=0.2, device="cpu")  # fmt: skip
    with pytest.raises(BadInputError, match=r"style 1 is 16x4 px.*relu5_1 needs at least 16"):
        stylize(content, torch.rand(1, 3, 10, 40), config, progress=False)


@pytest.mark.parametrize(
    "source",
    [np.zeros((0, 0, 3), np.uint8), torch.zeros(1, 3, 0, 5), np.zeros((4, 4, 2), np.uint8)],
    ids=["0x0 array", "0-pixel tensor", "2-channel array"],
)
def test_empty_images_are_refused(source):
    config = StyleTransferConfig(arch="vgg16", weights="random", size=32, steps=1, device="cpu")
    with pytest.raises(BadInputError, match="shape"):
        stylize(source, torch.rand(1, 3, 32, 32), config, progress=False)


# --- one conversion path for every input type


def test_pil_inputs_go_through_the_same_conversion(tmp_path):
    sixteen = Image.fromarray(np.full((32, 32), 32896, np.uint16))  # mid-grey in 16 bits
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))  # fully transparent red
    assert load_image(sixteen).getpixel((0, 0)) == (128, 128, 128)
    assert load_image(rgba).getpixel((0, 0)) == (255, 255, 255)
    assert nst_utils.as_tensor(sixteen).mean().item() == pytest.approx(128 / 255, abs=1e-3)


def test_load_image_accepts_bytes_pipes_arrays_and_refuses_none(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (5, 4), (10, 20, 30)).save(buf, format="PNG")
    data = buf.getvalue()
    assert load_image(data).size == (5, 4)
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:  # not seekable
        assert load_image(pipe).getpixel((0, 0)) == (10, 20, 30)
    assert load_image(np.full((4, 5, 3), 0.5)).getpixel((0, 0)) == (128, 128, 128)
    assert load_image(np.zeros((4, 5), np.uint8)).mode == "RGB"
    with pytest.raises(BadInputError, match="None"):
        load_image(None)
    with pytest.raises(BadInputError, match=r"finite values in \[0, 1\]"):
        load_image(np.full((4, 4), 2.0))
    with pytest.raises(BadInputError, match="as_tensor"):
        load_image(torch.rand(1, 3, 4, 4))


def test_float_images_work(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((6, 6), 0.25, np.float32), mode="F").save(path)
    assert load_image(path).getpixel((0, 0)) == (64, 64, 64)


# --- misleading messages


def test_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    Image.new("RGB", (4, 4)).save(path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if m & os.R_OK else real_access(p, m))
    with pytest.raises(BadInputError, match=r"locked\.png: permission denied"):
        load_image(path)


@pytest.mark.parametrize("value", ["maybe", "2", "ja"])
def test_unknown_quick_mode_value_is_an_error(monkeypatch, value):
    monkeypatch.setenv("NST_QUICK", value)
    with pytest.raises(BadInputError, match=rf"NST_QUICK='{value}' is not understood"):
        nst_utils.quick_mode()


def test_ctrl_c_during_start_up_is_one_line(monkeypatch, capsys):
    from nst_utils import __main__ as entry

    real_import = builtins.__import__

    def interrupted(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "cli" and level == 1:
            raise KeyboardInterrupt
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert entry.run() == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_ctrl_c_during_the_run_leaves_no_output(photos, tmp_path, capsys, monkeypatch):
    content, style = photos

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gatys, "stylize", interrupted)
    out = tmp_path / "out" / "o.png"
    code, err = run_cli(["stylize", "-c", content, "-s", style, "-o", out, *TINY], capsys)
    assert code == 130 and "no output written" in err
    assert not out.exists() and not [p for p in out.parent.iterdir()]


def test_ctrl_c_while_writing_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "result.png"
    path.write_bytes(b"old result")
    with pytest.raises(KeyboardInterrupt), atomic_write(path) as handle:
        handle.write(b"half of the new")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old result"
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]


def test_an_overwritten_output_keeps_its_permissions(tmp_path):
    path = tmp_path / "shared.png"
    Image.new("RGB", (2, 2)).save(path)
    path.chmod(0o640)
    save_image(Image.new("RGB", (3, 3)), path)
    assert path.stat().st_mode & 0o777 == 0o640 and load_image(path).size == (3, 3)


def test_jpegs_keep_their_detail(tmp_path):
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    save_image(noisy, tmp_path / "o.jpg")
    with Image.open(tmp_path / "o.jpg") as saved:
        from PIL import JpegImagePlugin

        assert JpegImagePlugin.get_sampling(saved) == 0  # 4:4:4, no chroma subsampling
        error = np.abs(np.asarray(saved, float) - np.asarray(noisy, float)).mean()
    assert error < 12  # quality 95 (Pillow's default 75 gives ~25 on this noise)


# --- no hidden global state


@pytest.mark.slow
def test_import_changes_no_warning_filter_and_no_rng():
    # Libraries the package imports may add filters for their own warnings (sympy, scipy
    # do); the package's own code must add none: every filter call is traced to its caller.
    code = (
        "import sys, warnings, random, torch, nst_utils\n"
        "callers = []\n"
        "def spy(original):\n"
        "    def add(*args, **kwargs):\n"
        "        callers.append(sys._getframe(1).f_code.co_filename)\n"
        "        return original(*args, **kwargs)\n"
        "    return add\n"
        "warnings.filterwarnings = spy(warnings.filterwarnings)\n"
        "warnings.simplefilter = spy(warnings.simplefilter)\n"
        "state = torch.random.get_rng_state(); r = random.getstate()\n"
        "import nst_utils.models, nst_utils.gatys, nst_utils.cli, nst_utils.superres\n"
        "import nst_utils.documents, nst_utils.fast_style, nst_utils.training\n"
        "package = nst_utils.__file__.rsplit('/', 1)[0]\n"
        "ours = [c for c in callers if c.startswith(package)]\n"
        "assert callers, 'the spy saw no filter at all: it is not working'\n"
        "assert not ours, f'the package changed warning filters in {ours}'\n"
        "assert torch.equal(torch.random.get_rng_state(), state), 'torch RNG changed'\n"
        "assert random.getstate() == r, 'random changed'; print('clean')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "clean" in run.stdout, run.stderr


@pytest.mark.slow
def test_stylize_leaves_the_global_generators_alone():
    torch.manual_seed(1234)
    np.random.seed(1234)
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(1234)
    np.random.seed(1234)
    filters = list(warnings.filters)
    config = StyleTransferConfig(arch="vgg16", weights="random", size=32, steps=2, seed=99,
                                 init="noise", content_layers={"relu2_1": 1.0},
                                 style_layers={"relu1_1": 1.0}, device="cpu")  # fmt: skip
    stylize(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)),
            torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)), config,
            progress=False)  # fmt: skip
    assert torch.equal(torch.rand(3), expected_torch)
    assert np.array_equal(np.random.rand(3), expected_np)
    assert warnings.filters == filters


def test_model_and_weights_files_that_are_no_pytorch_files_say_so(tmp_path):
    from nst_utils.checkpoints import read_file
    from nst_utils.errors import CheckpointError, WeightsError
    from nst_utils.models import VGGFeatures

    photo = tmp_path / "photo.pth"
    photo.write_bytes(Image.effect_noise((16, 16), 30).tobytes())
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    for path, reason in ((photo, "not a PyTorch weights file"), (empty, "empty: 0 bytes")):
        with pytest.raises(CheckpointError, match=f"{path.name}: not a readable model .*{reason}"):
            read_file(path)
        with pytest.raises(WeightsError, match=f"{path.name} could not be read .*{reason}"):
            VGGFeatures(["relu1_1"], weights=str(path))
