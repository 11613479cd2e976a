"""The shared training loop, model files and fast style transfer, on tiny crops with random
VGG weights: losses fall, resuming is exact, two processes train like one, files refuse
what they are not."""

import contextlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from nst_utils import CheckpointError
from nst_utils.checkpoints import load_model, read_file, save_model
from nst_utils.datasets import PhotoFolder
from nst_utils.fast_style import FastStyleConfig, load, make_loss, stylize_tensor, train
from nst_utils.images import as_tensor
from nst_utils.networks import TransformerNet
from nst_utils.training import initialized, loss_autocast
from nst_utils.visualize import LossPlot

ROOT = Path(__file__).resolve().parent.parent


def tiny_config(**changes) -> FastStyleConfig:
    base = dict(steps=6, batch_size=2, crop_size=32, style_size=32, weights="random",
                log_every=1, sample_every=3, checkpoint_every=3, device="cpu", lr=2e-3,
                loss_precision="float32")  # fmt: skip
    return FastStyleConfig(**(base | changes))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(5):
        low = rng.random((6, 8, 3))
        img = Image.fromarray((low * 255).astype(np.uint8)).resize((80, 60), Image.BICUBIC)
        img.save(folder / f"photo{i}.png")
    style = folder.parent / "style.png"
    stripes = (np.sin(np.arange(48) * 1.1)[None, :, None] * 0.5 + 0.5) * [1.0, 0.4, 0.1]
    Image.fromarray((np.repeat(stripes, 48, 0) * 255).astype(np.uint8)).save(style)
    return folder, style


@pytest.mark.slow
def test_training_loss_falls_and_the_model_file_round_trips(photos, tmp_path):
    folder, style = photos
    config = tiny_config(steps=40, sample_every=20, checkpoint_every=20)
    plot = LossPlot(["content", "style"])
    net, result = train(config, style, folder, tmp_path / "m.pth", progress=False, callback=plot)
    history = result.history
    assert len(history) == 40 and result.steps == 40
    assert plot.steps == list(range(1, 41))  # the run option reached the loop
    first = np.mean([h["total"] for h in history[:5]])
    last = np.mean([h["total"] for h in history[-5:]])
    assert last < 0.7 * first, (first, last)
    run = tmp_path / "m.run"
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_000020.png", "step_000040.png"
    ]  # fmt: skip
    log = (run / "log.csv").read_text().splitlines()
    assert log[0] == "step,content,style,tv,total" and len(log) == 41
    loaded, record = load(tmp_path / "m.pth")
    assert record["config"]["style"] == "style.png" and record["config"]["steps"] == 40
    assert record["extra"]["style_thumbnail"].dtype == torch.uint8
    x = torch.rand(1, 3, 37, 45)
    assert torch.allclose(stylize_tensor(loaded, x), stylize_tensor(net, x), atol=1e-6)
    assert stylize_tensor(loaded, x).shape == (1, 3, 37, 45)


@pytest.mark.slow
def test_resume_continues_bit_for_bit(photos, tmp_path):
    folder, style = photos
    _, whole = train(tiny_config(), style, folder, tmp_path / "a.pth", progress=False)
    train(tiny_config(steps=3), style, folder, tmp_path / "b.pth", progress=False)
    _, resumed = train(tiny_config(), style, folder, tmp_path / "b.pth",
                       run_dir=tmp_path / "b.run", resume=True, progress=False)  # fmt: skip
    assert resumed.history == whole.history  # the very same floats, step by step
    a, _ = load(tmp_path / "a.pth")
    b, _ = load(tmp_path / "b.pth")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


@pytest.mark.slow
def test_resume_with_other_settings_is_refused(photos, tmp_path):
    folder, style = photos
    train(tiny_config(steps=3), style, folder, tmp_path / "c.pth", progress=False)
    with pytest.raises(CheckpointError, match=r"cannot resume with other settings \(style_weight"):
        train(tiny_config(style_weight=9.0), style, folder, tmp_path / "c.pth",
              run_dir=tmp_path / "c.run", resume=True, progress=False)  # fmt: skip


DDP_WORKER = textwrap.dedent(
    """
    import sys, torch, torch.distributed as dist
    from torch.optim.optimizer import register_optimizer_step_pre_hook
    from nst_utils.fast_style import FastStyleConfig, train
    folder, style, out = sys.argv[1:4]
    grads = []  # the gradients each step applies (after DDP has averaged them)
    register_optimizer_step_pre_hook(lambda opt, args, kwargs: grads.append(
        [p.grad.clone() for group in opt.param_groups for p in group["params"]]))
    config = FastStyleConfig(steps=3, batch_size=4, crop_size=32, style_size=32,
                             weights="random", log_every=1, sample_every=0,
                             checkpoint_every=3, device="cpu", loss_precision="float32")
    net, result = train(config, style, folder, out, progress=False)
    rank = dist.get_rank() if dist.is_initialized() else 0
    torch.save({"state": net.state_dict(), "history": result.history, "grads": grads},
               f"{out}.rank{rank}")
    if dist.is_initialized():
        dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_two_processes_train_like_one(photos, tmp_path):
    folder, style = photos
    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    two = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(folder), str(style), str(tmp_path / "ddp.pth")]  # fmt: skip
    run = subprocess.run(two, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    one = [sys.executable, str(script), str(folder), str(style), str(tmp_path / "one.pth")]
    run = subprocess.run(one, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rank0, rank1, single = (
        torch.load(tmp_path / name, weights_only=True)
        for name in ("ddp.pth.rank0", "ddp.pth.rank1", "one.pth.rank0")
    )
    # the processes stay in step: the very same weights on both
    for name, p in rank0["state"].items():
        assert torch.equal(p, rank1["state"][name]), f"ranks differ at {name}"
    assert len(rank0["history"]) == len(single["history"]) == 3
    # Step 1 starts from the same seeded weights in both runs, so it computes the same
    # function of the same crops; only the order of float32 sums differs (half batches whose
    # gradients DDP averages, against one batch). Rounding makes relative differences of
    # about 1e-6; a real fault (other crops, gradients summed instead of averaged, a rank
    # left out) makes differences of the order of the gradients themselves. 1e-3 lies three
    # orders of magnitude from both, on any CPU. (Later steps are not compared: Adam turns
    # rounding-sized differences in near-zero gradients into moves of up to lr, so the
    # weights drift apart by amounts no tolerance can be derived for; the step batches
    # themselves are tested in test_datasets.)
    assert rank0["history"][0]["total"] == pytest.approx(single["history"][0]["total"], rel=1e-5)
    ddp_grads, one_grads = rank0["grads"][0], single["grads"][0]
    assert len(ddp_grads) == len(one_grads) == len(list(TransformerNet.lite().parameters()))
    overall = max(g.abs().max() for g in one_grads)
    for i, (g2, g1) in enumerate(zip(ddp_grads, one_grads, strict=True)):
        # mathematically zero gradients (a norm's shift before another norm) are rounding
        # noise of the size of the other gradients: the floor is relative to the largest one
        tolerance = 1e-3 * max(g1.abs().max(), 1e-3 * overall)
        assert (g2 - g1).abs().max() <= tolerance, f"parameter {i}: gradients differ"
    assert (tmp_path / "ddp.pth").is_file()  # written by rank 0 only, as a model file
    assert read_file(tmp_path / "ddp.pth", "fast_style")["file"] == "model"


# --- model files refuse what they are not


def test_model_files_refuse_other_kinds_and_damage(tmp_path):
    net = initialized(TransformerNet.lite, 0)
    save_model(tmp_path / "sr.pth", net, kind="super_resolution", config={})
    with pytest.raises(CheckpointError, match=r"sr\.pth is a super-resolution model .*, but a fa"):
        load_model(tmp_path / "sr.pth", "fast_style")
    whole = (tmp_path / "sr.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth: not a readable model file.*truncated"):
        load_model(tmp_path / "cut.pth", "fast_style")
    torch.save(net.state_dict(), tmp_path / "bare.pth")
    with pytest.raises(CheckpointError, match=r"bare\.pth: not a model file of this course"):
        load_model(tmp_path / "bare.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(CheckpointError, match=r"text\.pth: not a readable model file"):
        load_model(tmp_path / "text.pth")


def test_model_files_refuse_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned > " + str(tmp_path / "owned"),))

    torch.save({"format": "nst-course", "payload": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="not a readable model file"):
        load_model(tmp_path / "evil.pth")
    assert not (tmp_path / "owned").exists()


def test_weights_that_do_not_fit_their_network(tmp_path):
    net = initialized(TransformerNet.lite, 0)
    save_model(tmp_path / "m.pth", net, kind="fast_style", config={})
    record = torch.load(tmp_path / "m.pth", weights_only=True)
    record["network"]["kwargs"]["blocks"] = 5
    torch.save(record, tmp_path / "m.pth")
    with pytest.raises(CheckpointError, match="do not fit the network"):
        load_model(tmp_path / "m.pth", "fast_style")


def test_initialisation_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    a = initialized(TransformerNet.lite, 3)
    b = initialized(TransformerNet.lite, 3)
    assert torch.equal(torch.rand(2), expected)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_bad_training_settings(photos, tmp_path):
    folder, style = photos
    from nst_utils import BadInputError

    with pytest.raises(BadInputError, match="batch_size must be"):
        train(tiny_config(batch_size=0), style, folder, tmp_path / "m.pth", progress=False)
    with pytest.raises(BadInputError, match="unknown suffix"):
        train(tiny_config(), style, folder, tmp_path / "m.onnx", progress=False)
    with pytest.raises(BadInputError, match="loss_precision must be one of"):
        train(tiny_config(loss_precision="half"), style, folder, tmp_path / "m.pth",
              progress=False)  # fmt: skip
    with pytest.raises(BadInputError, match="style_layers: unknown VGG16 layer"):
        train(tiny_config(style_layers={"relu5_4": 1.0}), style, folder, tmp_path / "m.pth",
              progress=False)  # fmt: skip
    with pytest.raises(TypeError, match="'callbak'; its run options are run_dir, resume, prog"):
        train(tiny_config(), style, folder, tmp_path / "m.pth", callbak=print)
    assert not (tmp_path / "m.run").exists()


@pytest.mark.slow
def test_training_draws_its_batches_from_the_photo_folder(photos, tmp_path):
    # change one photo: the losses stay the same up to the first step whose batch holds a crop
    # of it and change there, so each step trains on the folder's own samples, in key order
    folder, style = photos
    config = tiny_config(steps=3, sample_every=0)  # 6 samples: every photo once, and one more
    keys = range(config.steps * config.batch_size)
    samples = PhotoFolder(folder, crop_size=config.crop_size, seed=config.seed)
    first_step = {}
    for photo in samples.files:
        changed = tmp_path / photo.stem
        shutil.copytree(folder, changed)
        ImageOps.invert(Image.open(photo).convert("RGB")).save(changed / photo.name)
        other = PhotoFolder(changed, crop_size=config.crop_size, seed=config.seed)
        key = next(k for k in keys if not torch.equal(other[k], samples[k]))
        first_step[changed] = key // config.batch_size
    changed, step = max(first_step.items(), key=lambda item: item[1])
    assert step >= 1  # 5 photos, 2 a step: the last photo of the first epoch comes in step 2
    _, before = train(config, style, folder, tmp_path / "a.pth", progress=False)
    _, after = train(config, style, changed, tmp_path / "b.pth", progress=False)
    totals = [[h["total"] for h in result.history] for result in (before, after)]
    assert totals[0][:step] == totals[1][:step]
    assert totals[0][step] != totals[1][step]


@pytest.mark.slow
def test_bfloat16_loss_network_gives_the_float32_loss_to_within_rounding(photos):
    folder, style = photos
    data = PhotoFolder(folder, crop_size=32, seed=0)
    batch = torch.stack([data[k] for k in range(4)])
    net = initialized(lambda: TransformerNet.lite(output="tanh"), 0)
    loss = make_loss(tiny_config(), as_tensor(style, 32))
    output = net(batch)
    exact = loss(output, content=batch)
    with loss_autocast("bfloat16", torch.device("cpu")):
        fast = loss(output, content=batch)
    fast["total"] = sum(fast.values())
    fast["total"].backward()  # gradients reach the network through the autocast region
    first = next(net.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0
    for name in ("content", "style"):
        assert fast[name].dtype == torch.float32
        assert fast[name].item() != exact[name].item(), f"{name}: bfloat16 was not used"
        assert fast[name].item() == pytest.approx(exact[name].item(), rel=0.03), name
    with loss_autocast("float32", torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("name", ["starry_night", "wave", "the_scream", "composition_vii"])
def test_shipped_models_load_and_repaint_held_out_photos(name):
    path = ROOT / "models" / f"{name}_lite.pth"
    assert path.stat().st_size < 1_500_000, f"{path.name} should stay small (about 0.3 MB)"
    net, record = load(path)
    assert record["config"]["network"] == "lite" and record["config"]["steps"] >= 1500
    assert record["config"]["style"] == f"{name}.jpg" and record["extra"]["train_seconds"] > 0
    for photo_path in (ROOT / "data" / "test_photos").glob("*.jpg"):  # no model saw these
        photo = as_tensor(photo_path, 96)
        out = stylize_tensor(net, photo)
        assert out.shape == photo.shape and out.min() >= 0 and out.max() <= 1
        assert (out - photo).abs().mean() > 0.05, f"{path.name} hardly changes {photo_path.name}"


@pytest.mark.parametrize(
    ("capability", "native"), [((7, 5), False), ((6, 1), False), ((8, 0), True), ((9, 0), True)]
)
def test_auto_precision_uses_bfloat16_only_on_gpus_that_compute_it(monkeypatch, capability, native):
    # Colab's T4 (7.5) emulates bfloat16 and torch says it is supported: the capability decides
    from nst_utils import training

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    cuda = torch.device("cuda", 0)
    assert training.bfloat16_native(cuda) is native
    monkeypatch.setattr(torch, "autocast", lambda device_type, dtype: (device_type, dtype))
    chosen = loss_autocast("auto", cuda)
    if native:
        assert chosen == ("cuda", torch.bfloat16)
    else:
        assert isinstance(chosen, contextlib.nullcontext)  # float32: no autocast at all


@pytest.mark.parametrize(
    ("flags", "native"),
    [("fpu sse avx2 avx512f", False), ("avx512f avx512_bf16", True), ("amx_tile amx_bf16", True)],
)
def test_auto_precision_on_cpus_reads_the_instruction_flags(monkeypatch, flags, native):
    from nst_utils import training

    monkeypatch.setattr(training, "_cpu_flags", lambda: flags)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    assert training.bfloat16_native(torch.device("cpu")) is native
    assert torch.is_autocast_enabled("cpu") is False
    with loss_autocast("auto", torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu") is native
