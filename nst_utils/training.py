"""One training loop for every trained-network method, on one device or many.

Read :func:`fit` top to bottom: data -> network -> loss terms -> step -> log -> sample ->
checkpoint. The same loop runs data-parallel when started by ``torchrun`` (PyTorch's
DistributedDataParallel): each process takes its share of every batch, gradients are
averaged across processes, and only rank 0 logs, samples and writes files. The rank-
specific lines are marked ``# rank``.

Resuming is exact: a checkpoint holds the weights, the optimiser's state and the step;
the batches are a pure function of (seed, step) (:mod:`nst_utils.datasets`), so a resumed
run computes the same losses as an uninterrupted one.

Every method sets its run up the same way with :class:`Run` (check the config and the
output, choose the run folder and the device, identify the inputs, seed the network,
:func:`fit`, save the model file), so a method module holds only its network, its loss
and its data.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import hashlib
import io
import math
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .checkpoints import read_file, save_checkpoint, save_model
from .config import weights_setting
from .datasets import PhotoFolder, StepBatches
from .device import pick_device
from .errors import BadInputError, CheckpointError, DivergenceError
from .files import atomic_write, check_output, find_files, remove_stale_partials
from .images import save_image
from .settings import LossNetworkConfig, TrainingConfig

if TYPE_CHECKING:
    from typing_extensions import Unpack

LossStep = Callable[[nn.Module, Any], dict[str, torch.Tensor]]
MODEL_SUFFIXES = (".pth", ".pt")  # what a model file may be named
CHECKPOINT = "checkpoint.pth"
# settings a resumed run may change without changing what it computes
RESUMABLE = {"steps", "log_every", "sample_every", "checkpoint_every", "workers", "device"}


@dataclass
class TrainResult:
    """What :func:`fit` returns: the loss history (one dict of terms per step, the steps of
    earlier runs included), the steps done and the training time over all runs."""

    history: list[dict[str, float]]
    steps: int
    seconds: float


@dataclass
class Processes:
    """Where this process stands in a (possibly) distributed run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


TORCHRUN = "torchrun --standalone --nproc_per_node N -m nst_utils train ..."


def world_size_from_env() -> int:
    """The number of processes ``torchrun`` started (WORLD_SIZE; 1 without it), after
    checking that the environment describes a run ``torchrun`` started: WORLD_SIZE a whole
    number >= 1 and, for more than one, RANK and LOCAL_RANK in range and MASTER_ADDR,
    MASTER_PORT set. Anything else is a BadInputError that says how to launch."""
    text = os.environ.get("WORLD_SIZE", "1").strip()
    if not text.isdigit() or int(text) < 1:
        raise BadInputError(
            f"the environment variable WORLD_SIZE={text!r} is not a whole number >= 1; it is "
            f"set by torchrun. Unset it for one process, or launch with {TORCHRUN}"
        )
    world_size = int(text)
    if world_size == 1:
        return 1
    needed = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    missing = [k for k in needed if k not in os.environ]
    ranks = [os.environ.get(k, "0").strip() for k in ("RANK", "LOCAL_RANK")]
    if missing or not all(r.isdigit() and int(r) < world_size for r in ranks):
        what = (
            f"{', '.join(missing)} are not set"
            if missing
            else f"RANK={ranks[0]}, LOCAL_RANK={ranks[1]} are no ranks of {world_size}"
        )
        raise BadInputError(
            f"WORLD_SIZE={world_size} is set but {what}: several processes are started by "
            f"torchrun, which sets them all: {TORCHRUN}; or unset WORLD_SIZE for one process."
        )
    return world_size


def processes_from_env() -> Processes:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    ``torchrun`` sets RANK, WORLD_SIZE and LOCAL_RANK; without them this is one process.
    The backend is NCCL on CUDA GPUs and Gloo otherwise (CPUs).
    """
    world_size = world_size_from_env()
    if world_size == 1:
        return Processes()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Processes(dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_RANK"]))


def initialized(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with the global RNG seeded for the initial weights, then restored, so the
    network starts the same every time and the caller's random numbers are untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


@contextmanager
def _stop_on_ctrl_c() -> Iterator[dict[str, bool]]:
    """Turn the first Ctrl-C into a request to stop after the current step (the second one
    interrupts at once); outside the main thread this does nothing."""
    flag = {"stop": False}

    def request_stop(signum, frame):
        flag["stop"] = True
        signal.signal(signal.SIGINT, previous)

    try:
        previous = signal.signal(signal.SIGINT, request_stop)
    except ValueError:  # not the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(b, device) for b in batch)
    return batch.to(device, non_blocking=True)


def save_trained(
    output: str | os.PathLike,
    net: nn.Module,
    result: TrainResult,
    *,
    kind: str,
    config: Any,
    **extra: Any,
) -> None:
    """Write a finished run's model file (rank 0 only): the weights, the settings
    (``config``, a dataclass), the training time, the last logged loss and ``extra``
    (what it was trained on, ...)."""
    if processes_from_env().main:
        extra = {"train_seconds": result.seconds,
                 "final_loss": result.history[-1] if result.history else {}, **extra}  # fmt: skip
        save_model(output, net, kind=kind, config=dataclasses.asdict(config), extra=extra)


def _cpu_flags() -> str:
    """The CPU's feature flags as Linux's /proc/cpuinfo lists them ('' elsewhere)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def bfloat16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions natively (and so faster than
    float32): CUDA GPUs of compute capability 8.0 or newer (A100, RTX 30xx, H100, ...);
    CPUs with AMX or AVX512-BF16 instructions (read from Linux's /proc/cpuinfo; elsewhere a
    CPU counts as without).

    Older GPUs such as Colab's free T4 (7.5) are not native even though
    ``torch.cuda.is_bf16_supported()`` says True there: PyTorch emulates bfloat16 on them,
    and cuDNN has no bfloat16 convolutions below 8.0, so autocast would make the loss
    network slower, not faster. The capability decides, not that function.
    """
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    flags = _cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def loss_autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context to compute a perceptual loss in: bfloat16 autocast for ``"bfloat16"``
    (and for ``"auto"`` where :func:`bfloat16_native`), else nothing. Gram matrices stay
    float32 either way (:func:`nst_utils.losses.gram_matrix`)."""
    use = precision == "bfloat16" or (precision == "auto" and bfloat16_native(device))
    return torch.autocast(device.type, dtype=torch.bfloat16) if use else contextlib.nullcontext()


def _check_resume(
    record: dict, config: dict[str, Any], path: Path, inputs: dict[str, Any] | None = None
) -> None:
    changed = {
        k: (record["config"].get(k), v)
        for k, v in config.items()
        if k not in RESUMABLE and record["config"].get(k) != v
    }
    if changed:
        raise CheckpointError(
            f"{path}: cannot resume with other settings ({', '.join(changed)} differ: "
            f"{changed}); use the settings of the first run or start a new run folder."
        )
    before = record.get("extra", {}).get("inputs")
    for name, now in (inputs or {}).items():
        then = before.get(name) if isinstance(before, dict) else None
        if then is not None and then.get("id") != now["id"]:  # older checkpoints: no record
            raise CheckpointError(
                f"{path}: cannot resume with another {name}: the run started with "
                f"{then.get('what')}, this one has {now['what']}; give the first run's "
                f"{name}, or start a new run folder."
            )


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()[:16]


def identify_image(image: Any, loaded: torch.Tensor) -> dict[str, str]:
    """What identifies a run's style image (recorded in its checkpoints): a content hash
    of the file's bytes, or of ``loaded`` (its pixels) when it is no file."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image).expanduser()
        digest = _digest(path.read_bytes())
        return {"id": digest, "what": f"{path.name} (content {digest[:8]})"}
    pixels = (loaded.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    digest = _digest(str(tuple(pixels.shape)).encode(), pixels.numpy().tobytes())
    return {"id": digest, "what": f"an image of {pixels.shape[-1]}x{pixels.shape[-2]} px "
                                  f"(content {digest[:8]})"}  # fmt: skip


def weights_file(weights: str | os.PathLike | None) -> Path | None:
    """The VGG weights file a run reads (``weights``, else ``NST_WEIGHTS``), or None for
    "imagenet" and "random": an input no output may replace."""
    spec = str(weights) if weights is not None else weights_setting()
    return None if spec in ("imagenet", "random") else Path(spec).expanduser()


def identify_images(images: Sequence[Any], loaded: Sequence[torch.Tensor]) -> dict[str, str]:
    """What identifies a run's list of style images, in order (their place is their
    index): :func:`identify_image` of each, combined into one id."""
    each = [identify_image(image, t) for image, t in zip(images, loaded, strict=True)]
    digest = _digest(*(e["id"].encode() for e in each))
    names = [Path(i).name if isinstance(i, (str, os.PathLike)) else "an image" for i in images]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return {"id": digest, "what": f"{len(each)} style images ({shown}; content {digest[:8]})"}


def identify_data(data: Any) -> dict[str, str]:
    """What identifies a run's training data (recorded in its checkpoints): for a photo
    folder, the names and sizes of its photos (so a moved or copied folder still resumes,
    another or changed one does not); for another dataset, its type and length."""
    root = getattr(data, "root", None)
    files = getattr(data, "files", None)
    if root is None or files is None:
        size = len(data) if hasattr(data, "__len__") else "?"
        return {"id": f"{type(data).__name__}:{size}",
                "what": f"a {type(data).__name__} of {size} samples"}  # fmt: skip
    listing = "\n".join(f"{p.relative_to(root).as_posix()}:{p.stat().st_size}" for p in files)
    return {"id": _digest(listing.encode()), "what": f"{len(files)} photos in {root}"}


def check_data_folder(folder: str | os.PathLike) -> None:
    """Before a photo folder is used for training: refuse one that cannot be read, and warn
    (one line each) about sub-folders that cannot be read, whose photos are left out."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return  # PhotoFolder says what it is instead
    _, unreadable = find_files(folder, ())
    for sub, reason in unreadable:
        warnings.warn(f"{sub}: cannot read this folder ({reason}); its photos are left out.",
                      stacklevel=2)  # fmt: skip


def _refuse_replacing(checkpoint: Path, resume: bool) -> None:
    if not resume and checkpoint.exists():
        raise CheckpointError(
            f"{checkpoint.parent} holds the checkpoint of an earlier run, which a new run "
            "would replace: continue it with --resume (resume=True), or choose another "
            "--run-dir (or output name)."
        )


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.expanduser().resolve(), folder.expanduser().resolve()
    return path == folder or folder in path.parents


def start_run(
    run_dir: str | os.PathLike,
    output: Path,
    config: TrainingConfig,
    *,
    kind: str,
    resume: bool,
    data_folder: str | os.PathLike | None = None,
    inputs: dict[str, dict[str, str]] | None = None,
    other_folders: Mapping[str, str | os.PathLike] | None = None,
) -> Path:
    """Check a training run's folder before any work starts; return it as a Path.

    Refuses, naming the paths: a run folder that is a file, is the output or would hold it
    (``checkpoint.pth``, ``log.csv``), or lies in the training photos ``data_folder`` or in
    one of ``other_folders`` (``{option: folder}``, e.g. a folder of style images): the
    sample pictures would become training images; a checkpoint of an earlier run without
    ``resume`` (it would be replaced); ``resume`` without a checkpoint, or with one of
    another kind, other settings or other ``inputs`` (:func:`identify_image`,
    :func:`identify_data`); a bad torchrun environment. Deletes partial files that killed
    runs left in the folder (:func:`nst_utils.files.remove_stale_partials`).
    """
    run_dir = Path(run_dir).expanduser()
    checkpoint = run_dir / CHECKPOINT
    if run_dir.exists() and not run_dir.is_dir():
        raise BadInputError(f"--run-dir {run_dir} is a file; give a folder (default: the "
                            "output's name with .run).")  # fmt: skip
    if output.resolve().parent == run_dir.resolve() and output.name in (CHECKPOINT, "log.csv"):
        raise BadInputError(f"--output {output} would replace the run's own {output.name} "
                            f"in --run-dir {run_dir}; choose another output name.")  # fmt: skip
    if _inside(run_dir, output):
        raise BadInputError(f"--run-dir {run_dir} is the output file {output}; choose another "
                            "folder (default: the output's name with .run).")  # fmt: skip
    if data_folder is not None and _inside(run_dir, Path(data_folder)):
        raise BadInputError(
            f"--run-dir {run_dir} lies in the training photos --data {data_folder}: its sample "
            "pictures would become training photos. Choose a folder outside it (the default "
            "is the output's name with .run)."
        )
    for flag, folder in (other_folders or {}).items():
        if _inside(run_dir, Path(folder)):
            raise BadInputError(
                f"--run-dir {run_dir} lies in {flag} {folder}: its sample pictures would "
                "become training images. Choose a folder outside it (the default is the "
                "output's name with .run)."
            )
    world_size_from_env()
    _refuse_replacing(checkpoint, resume)
    if resume:
        if not checkpoint.exists():
            raise BadInputError(f"--resume: {run_dir} holds no checkpoint ({CHECKPOINT}) to "
                                "continue; start without --resume.")  # fmt: skip
        record = read_file(checkpoint, kind)
        if record.get("file") != "checkpoint":
            raise CheckpointError(f"{checkpoint}: a model file, not a checkpoint; cannot resume.")
        _check_resume(record, dataclasses.asdict(config), checkpoint, inputs)
    if os.environ.get("RANK", "0").strip() in ("", "0"):
        for folder in (run_dir, run_dir / "samples"):
            remove_stale_partials(folder)
    return run_dir


def _write_log(path: Path, history: list[dict[str, float]], log_every: int) -> None:
    keys = list(history[0]) if history else []
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["step", *keys])
    for step, terms in enumerate(history, 1):
        if step % log_every == 0 or step == len(history):
            writer.writerow([step, *(f"{terms[k]:.6g}" for k in keys)])
    with atomic_write(path) as handle:
        handle.write(text.getvalue().encode())


def fit(
    net: nn.Module,
    loss_step: LossStep,
    dataset: torch.utils.data.Dataset,
    config: TrainingConfig,
    *,
    kind: str,
    run_dir: str | os.PathLike,
    resume: bool = False,
    extra: dict[str, Any] | None = None,
    sample: Callable[[nn.Module], torch.Tensor] | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``net`` with Adam on ``loss_step(net, batch) -> {name: weighted term}``.

    ``dataset[k]`` is sample ``k`` of the run (a pure function of the seed and ``k``, as
    :class:`nst_utils.datasets.PhotoFolder`). Every ``checkpoint_every`` steps, at the end,
    and on Ctrl-C (after the current step) ``run_dir/checkpoint.pth`` and ``log.csv`` are
    written atomically; ``resume=True`` continues from that checkpoint. ``sample(net)``
    returns a picture (1, 3, H, W) saved as ``run_dir/samples/step_NNNNNN.png`` every
    ``sample_every`` steps; ``callback(step, terms)`` sees the loss every ``log_every``
    steps (a notebook's live plot). Returns the history of every step. A NaN or infinite
    loss stops with :class:`DivergenceError`; Ctrl-C re-raises ``KeyboardInterrupt`` after
    the checkpoint is written. ``extra["inputs"]`` (what identifies the data and images
    the run trains on) must match the checkpoint's when resuming. Without ``resume``, a
    checkpoint already in ``run_dir`` is refused (a new run would replace it).
    """
    config.check()
    settings = dataclasses.asdict(config)
    run_dir = Path(run_dir).expanduser()
    checkpoint = run_dir / CHECKPOINT
    _refuse_replacing(checkpoint, resume)
    procs = processes_from_env()
    if procs.world_size > 1 and config.batch_size % procs.world_size:
        raise BadInputError(
            f"batch_size={config.batch_size} does not split over {procs.world_size} processes; "
            "choose a multiple of the process count."
        )
    device = pick_device(config.device)
    if device.type == "cuda" and procs.world_size > 1:  # rank: one GPU per process
        device = torch.device("cuda", procs.local_rank)
        torch.cuda.set_device(device)

    # --- network and optimiser, or both as a checkpoint left them
    net = net.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    history: list[dict[str, float]] = []
    start, seconds_before = 0, 0.0
    if resume:
        record = read_file(checkpoint, kind)
        if record.get("file") != "checkpoint":
            raise CheckpointError(f"{checkpoint}: a model file, not a checkpoint; cannot resume.")
        _check_resume(record, settings, checkpoint, (extra or {}).get("inputs"))
        net.load_state_dict(record["state_dict"])
        optimizer.load_state_dict(record["optimizer"])
        start, history = record["step"], list(record["history"])
        seconds_before = float(record["extra"].get("train_seconds", 0.0))
    model = net
    if procs.world_size > 1:  # rank: gradients are averaged across processes
        model = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    if procs.main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)

    def save(done: int, seconds: float) -> None:  # rank 0 only
        info = dict(extra or {}, train_seconds=seconds_before + seconds)
        save_checkpoint(checkpoint, net, optimizer, kind=kind, step=done, config=settings,
                        history=history, extra=info)  # fmt: skip
        _write_log(run_dir / "log.csv", history, config.log_every)

    batches = StepBatches(dataset, config.batch_size, start, procs.rank, procs.world_size,
                          config.workers, pin_memory=device.type == "cuda")  # fmt: skip
    bar = tqdm(total=config.steps, initial=start, desc=f"training {kind}",
               disable=not (progress and procs.main))  # fmt: skip
    started, done = time.perf_counter(), start
    net.train()
    with _stop_on_ctrl_c() as ctrl_c:
        for step, batch in batches if start < config.steps else ():
            # --- loss terms, step
            terms = loss_step(model, _to(batch, device))
            total = sum(terms.values())
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            values = torch.stack([t.detach().float() for t in terms.values()])
            if procs.world_size > 1:  # rank: the logged loss is the mean over processes
                dist.all_reduce(values)
                values /= procs.world_size
            logged = dict(zip(terms, values.tolist(), strict=True))
            logged["total"] = sum(logged.values())
            if not math.isfinite(logged["total"]):
                bar.close()
                raise DivergenceError(
                    f"the training loss became {logged['total']} at step {step + 1} ({logged});"
                    " lower --lr or the loss weights, or resume from the last checkpoint."
                )
            optimizer.step()
            history.append(logged)
            done = step + 1
            # --- log, sample, checkpoint (rank 0)
            bar.update(1)
            if done % config.log_every == 0:
                bar.set_postfix({k: f"{v:.3g}" for k, v in logged.items()}, refresh=False)
                if callback is not None and procs.main:
                    callback(done, logged)
            sample_now = config.sample_every and (
                done % config.sample_every == 0 or done == config.steps
            )
            if procs.main and sample is not None and sample_now:
                net.eval()
                with torch.no_grad():
                    picture = sample(net)
                net.train()
                save_image(picture, run_dir / "samples" / f"step_{done:06d}.png")
            stop = torch.tensor([float(ctrl_c["stop"])])
            if procs.world_size > 1:  # rank: all processes stop at the same step
                dist.all_reduce(stop)
            if procs.main and (done % config.checkpoint_every == 0 or done == config.steps
                               or stop.item()):  # fmt: skip
                save(done, time.perf_counter() - started)
            if stop.item():
                bar.close()
                raise KeyboardInterrupt(f"stopped after step {done}; checkpoint {checkpoint}")
            if done >= config.steps:
                break
    bar.close()
    net.eval()
    return TrainResult(history, done, seconds_before + time.perf_counter() - started)


def describe_photos(data: torch.utils.data.Dataset, what: str = "photos") -> str:
    """``"120 photos in coco"``: what a model file says it was trained on."""
    return f"{len(data)} {what}" + (f" in {data.root.name}" if hasattr(data, "root") else "")


def sample_grid(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """Rows of sample pictures, each (K, 3, H, W), as one (1, 3, H', W') picture: a row per
    tensor, 2 px apart (torchvision's ``make_grid``)."""
    from torchvision.utils import make_grid

    return make_grid(torch.cat(list(rows)), nrow=len(rows[0]), padding=2).unsqueeze(0)


class RunOptions(TypedDict, total=False):
    """How a run is kept and watched, the same keywords for every method's ``train``:
    ``run_dir`` holds checkpoints, sample pictures and ``log.csv`` (default: the output's
    name with ``.run``); ``resume=True`` continues from its checkpoint; ``progress`` shows a
    progress bar (default on); ``callback(step, terms)`` sees the loss every ``log_every``
    steps (e.g. a :class:`nst_utils.visualize.LossPlot`)."""

    run_dir: str | os.PathLike | None
    resume: bool
    progress: bool
    callback: Callable[[int, dict[str, float]], None] | None


class Run:
    """One training run of any method, set up the one way; the method module adds only its
    network, its loss and its data:

    1. ``Run(config, output, ...)`` checks the config, then the output (it may replace none
       of ``inputs``, nor the VGG weights file), chooses the run folder (default: the
       output's name with ``.run``), checks the data ``folders`` and picks the device;
    2. the method loads its data (:meth:`photos`) and images, and calls :meth:`start` with
       what identifies them (:func:`start_run`: a checkpoint needs ``resume``, which
       refuses other settings or inputs);
    3. :meth:`fit` seeds the network's initial weights and runs :func:`fit`;
    4. :meth:`save` writes the model file (``half=True``: float16 weights, half the size).
    """

    def __init__(
        self,
        config: TrainingConfig,
        output: str | os.PathLike,
        *,
        inputs: Sequence[Any] = (),
        folders: Mapping[str, Any] | None = None,
        **options: Unpack[RunOptions],
    ) -> None:
        known = RunOptions.__annotations__
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(f"train() got an unexpected keyword argument {unknown[0]!r}; its "
                            f"run options are {', '.join(known)}.")  # fmt: skip
        run_dir, self.options = options.get("run_dir"), options
        config.check()
        files = [i for i in inputs if isinstance(i, (str, os.PathLike))]
        if isinstance(config, LossNetworkConfig) and weights_file(config.weights) is not None:
            files.append(weights_file(config.weights))
        self.config, self.resume, self.inputs = config, options.get("resume", False), {}
        self.output = check_output(output, inputs=files, suffixes=MODEL_SUFFIXES, what="output")
        self.run_dir = Path(run_dir) if run_dir is not None else self.output.with_suffix(".run")
        self.folders = {flag: folder for flag, folder in (folders or {}).items()
                        if isinstance(folder, (str, os.PathLike))}  # fmt: skip
        for folder in self.folders.values():
            check_data_folder(folder)
        self.device = pick_device(config.device)

    def photos(self, flag: str, data: Any, seed: int = 0) -> torch.utils.data.Dataset:
        """``data`` as a dataset of crops: the folder given as ``flag`` cut into random
        ``crop_size`` crops (:class:`PhotoFolder`, seeded ``config.seed + seed``), or a
        dataset as it is."""
        if flag not in self.folders:
            return data
        config = self.config
        return PhotoFolder(self.folders[flag], crop_size=config.crop_size, seed=config.seed + seed)

    def start(self, inputs: dict[str, dict[str, str]] | None = None) -> None:
        """Check the run folder (:func:`start_run`) with what identifies the inputs."""
        self.inputs = inputs or {}
        others = {flag: f for flag, f in self.folders.items() if flag != "--data"}
        self.run_dir = start_run(self.run_dir, self.output, self.config, kind=self.config.KIND,
                                 resume=self.resume, data_folder=self.folders.get("--data"),
                                 inputs=self.inputs, other_folders=others)  # fmt: skip

    def fixed(self, dataset: torch.utils.data.Dataset, count: int = 3) -> Any:
        """The first ``count`` samples of ``dataset``, stacked, on the device: the inputs of
        every sample picture."""
        items = [dataset[k] for k in range(count)]
        if isinstance(items[0], (tuple, list)):
            return [torch.stack(side).to(self.device) for side in zip(*items, strict=True)]
        return torch.stack(items).to(self.device)

    def fit(
        self,
        build: Callable[[], nn.Module],
        loss_step: LossStep,
        dataset: torch.utils.data.Dataset,
        *,
        sample: Callable[[nn.Module], torch.Tensor] | None = None,
    ) -> tuple[nn.Module, TrainResult]:
        """``(network, result)``: ``build()`` with seeded initial weights, trained by
        :func:`fit` (with the run's ``progress`` and ``callback``)."""
        net = initialized(build, self.config.seed)
        result = fit(net, loss_step, dataset, self.config, kind=self.config.KIND,
                     run_dir=self.run_dir, resume=self.resume, extra={"inputs": self.inputs},
                     sample=sample, callback=self.options.get("callback"),
                     progress=self.options.get("progress", True))  # fmt: skip
        return net, result

    def save(
        self, net: nn.Module, result: TrainResult, *, half: bool = False, **extra: Any
    ) -> None:
        """Write the model file (:func:`save_trained`); ``half=True`` stores the weights in
        float16: half the size, and the network loaded from it (float32) differs from the
        trained one by ~1e-3 at most (float16 has 11 bits of mantissa)."""
        if half:
            net = copy.deepcopy(getattr(net, "module", net)).cpu().half()
            extra["weights_dtype"] = "float16"
        save_trained(self.output, net, result, kind=self.config.KIND, config=self.config, **extra)
