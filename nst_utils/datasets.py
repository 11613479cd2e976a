"""Training photos for the trained-network methods: a folder of images cut into random
square crops, batches that are the same whatever the number of processes or restarts, and
a download helper for COCO.

Determinism is by construction. Every sample has a key ``k = step * global_batch +
position``; ``dataset[k]`` is a pure function of ``(seed, k)``: the photo comes from a
permutation of the files seeded by ``(seed, k // len(dataset))`` (one per epoch), the crop
and flip from a generator seeded by ``(seed, k)``. No global or worker RNG is used, so a
resumed run sees the same crops as an uninterrupted one, and two processes that split
every batch see the same samples as one process.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import math
import os
import shutil
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.datasets.utils import calculate_md5, extract_archive
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from .errors import BadInputError, NSTError
from .files import SUFFIXES
from .images import FORMATS, image_to_tensor, load_image

COCO_URL = "http://images.cocodataset.org/zips"
COCO_MD5 = {
    "val2017": "442b8da7639aecaf257c1dceb8ba8c80",  # 5,000 photos, 815,585,330 bytes (778 MiB)
    "train2014": "0da8c0bd3d6becc4dcb32757491aca88",  # 82,783 photos, ~13.5 GB (Johnson et al.)
}


def _derive_seed(seed: int, purpose: str, value: int) -> int:
    """A 63-bit generator seed from (seed, purpose, value), the same on every platform."""
    digest = hashlib.blake2b(f"{seed}/{purpose}/{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _header_ok(path: Path) -> bool:
    """True if Pillow recognises ``path`` as an allowed format with a non-empty size.
    Reads the header only; a decompression bomb counts as unreadable, as in ``load_image``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=FORMATS) as img:
                width, height = img.size
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ):
        return False
    return width > 0 and height > 0


def _name_list(paths: list[Path], root: Path, shown: int = 3) -> str:
    names = ", ".join(str(p.relative_to(root)) for p in paths[:shown])
    return names + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


class PhotoFolder(Dataset[torch.Tensor]):
    """Every image file under ``root`` (nested or flat), served as random square crops.

    ``dataset[k]`` is a (3, crop_size, crop_size) float tensor in [0, 1] that depends only
    on ``(seed, k)``, for any key ``k >= 0``: the photo is ``files[perm[k % n]]`` with
    ``perm`` a permutation of the n files seeded by ``(seed, k // n)`` (each epoch visits
    every photo once); the crop is a square whose side is a random fraction (``scale``) of
    the photo's shorter side, at a random place, resized with antialiasing to
    ``crop_size``; with ``flip`` it is mirrored left-right half of the time.

    Files are checked (header only) when the dataset is made; unreadable ones are skipped
    with one warning and listed in ``.skipped``. A file that passes the check but fails to
    decode later is reported once (per process) and replaced, here and in every later
    epoch, by the next photo of the same permutation.

    Photos are decoded on every access. ``cache=True`` keeps each one decoded, downscaled
    to the shorter side at which the smallest crop needs no enlarging (``crop_size /
    scale[0]``; 2 * ``crop_size`` for the default scale). The crops cover the same regions,
    resampled from the smaller copy: much faster for a few dozen photos, too big for COCO.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        crop_size: int = 256,  # pixels; Johnson et al.: 256
        scale: tuple[float, float] = (0.5, 1.0),  # crop side / shorter side of the photo
        flip: bool = True,
        seed: int = 0,
        cache: bool = False,
    ) -> None:
        if not isinstance(crop_size, int) or crop_size < 1:
            raise BadInputError(f"crop_size must be a positive number of pixels, got {crop_size}.")
        low, high = scale
        if not 0 < low <= high <= 1:
            raise BadInputError(
                f"scale={scale}: give (low, high) with 0 < low <= high <= 1, the range of "
                "crop sides as a fraction of the photo's shorter side, e.g. (0.5, 1.0)."
            )
        self.root = Path(root).expanduser()
        self.crop_size, self.scale, self.flip, self.seed = crop_size, (low, high), flip, seed
        if not self.root.is_dir():
            what = "is a file, not a folder" if self.root.exists() else "no such folder"
            raise BadInputError(
                f"{self.root}: {what}; pass the folder that holds the training photos "
                "(download_coco() fetches a set)."
            )
        candidates = sorted(
            (p for p in self.root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()),
            key=lambda p: p.relative_to(self.root).as_posix(),
        )
        if not candidates:
            raise BadInputError(
                f"{self.root}: no image files ({', '.join(sorted(SUFFIXES))}) in it or "
                "its subfolders; put training photos there or call download_coco()."
            )
        readable = [_header_ok(p) for p in candidates]
        self.files = [p for p, ok in zip(candidates, readable, strict=True) if ok]
        self.skipped = [p for p, ok in zip(candidates, readable, strict=True) if not ok]
        if not self.files:
            raise BadInputError(
                f"{self.root}: none of the {len(candidates)} image files can be read "
                f"({_name_list(self.skipped, self.root)}); replace them with working photos."
            )
        if self.skipped:
            warnings.warn(
                f"{self.root}: skipped {len(self.skipped)} of {len(candidates)} image files "
                f"that are not readable images: {_name_list(self.skipped, self.root)}",
                stacklevel=2,
            )
        self._cache: dict[int, Image.Image] | None = {} if cache else None
        self._broken: set[int] = set()
        self._order: tuple[int, list[int]] = (-1, [])  # (epoch, permutation) last used

    def __len__(self) -> int:
        """Number of photos: the samples in one epoch (keys go on past it)."""
        return len(self.files)

    def __iter__(self) -> Iterator[torch.Tensor]:
        """One epoch: samples 0 .. len - 1 (indexing alone would never stop)."""
        return (self[k] for k in range(len(self)))

    def __getitem__(self, k: int) -> torch.Tensor:
        """Sample ``k`` >= 0: a (3, crop_size, crop_size) float tensor in [0, 1]."""
        if k < 0:
            raise BadInputError(f"sample key {k}: keys count up from 0 (step * batch + i).")
        epoch, position = divmod(k, len(self.files))
        if self._order[0] != epoch:
            generator = torch.Generator().manual_seed(_derive_seed(self.seed, "epoch", epoch))
            self._order = (epoch, torch.randperm(len(self.files), generator=generator).tolist())
        order = self._order[1]
        for offset in range(len(order)):
            image = self._decode(order[(position + offset) % len(order)])
            if image is not None:
                return self._crop(image, k)
        raise BadInputError(
            f"{self.root}: none of the {len(order)} photos can be decoded; replace them."
        )

    def _decode(self, index: int) -> Image.Image | None:
        """Photo ``index`` as an RGB image (cached if asked), or None if it cannot be decoded."""
        if index in self._broken:
            return None
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        path = self.files[index]
        try:
            image = load_image(path)
        except NSTError as err:
            self._broken.add(index)
            warnings.warn(f"{err} Training uses the next photo in its place.", stacklevel=2)
            return None
        if self._cache is not None:
            side = math.ceil(self.crop_size / self.scale[0])
            if min(image.size) > side:
                image = TF.resize(image, [side], InterpolationMode.LANCZOS)
            self._cache[index] = image
        return image

    def _crop(self, image: Image.Image, k: int) -> torch.Tensor:
        """The crop and flip of sample ``k``, drawn as fractions of the image size so that
        a downscaled copy gives the same region."""
        generator = torch.Generator().manual_seed(_derive_seed(self.seed, "crop", k))
        side_u, top_u, left_u, flip_u = torch.rand(4, generator=generator).tolist()
        width, height = image.size
        low, high = self.scale
        side = max(1, round((low + (high - low) * side_u) * min(width, height)))
        top, left = int(top_u * (height - side + 1)), int(left_u * (width - side + 1))
        size = [self.crop_size, self.crop_size]
        crop = TF.resized_crop(image, top, left, side, side, size, InterpolationMode.BICUBIC)
        if self.flip and flip_u < 0.5:
            crop = TF.horizontal_flip(crop)
        return image_to_tensor(crop)[0]


def batch_indices(step: int, global_batch: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """Sample keys of process ``rank``'s share of global batch ``step``.

    Global batch ``step`` holds keys ``step * global_batch`` ... ``+ global_batch - 1``;
    rank r takes the r-th contiguous slice of ``global_batch // world_size`` keys, so the
    ranks' batches concatenated in rank order (as ``all_gather`` + ``cat`` does) are
    exactly the one-process batch.
    """
    if step < 0:
        raise BadInputError(f"step must be >= 0, got {step}.")
    if global_batch < 1 or world_size < 1 or global_batch % world_size:
        raise BadInputError(
            f"global batch {global_batch} does not split evenly over {world_size} processes; "
            f"choose a positive multiple of {world_size}."
        )
    if not 0 <= rank < world_size:
        raise BadInputError(f"rank {rank} is not in 0 .. {world_size - 1} (world_size).")
    share = global_batch // world_size
    start = step * global_batch + rank * share
    return list(range(start, start + share))


class _StepSampler(Sampler[list[int]]):
    """Batch sampler: this rank's keys of steps start_step, start_step + 1, ... forever."""

    def __init__(self, start_step: int, global_batch: int, rank: int, world_size: int) -> None:
        self.start_step, self.global_batch = start_step, global_batch
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        for step in itertools.count(self.start_step):
            yield batch_indices(step, self.global_batch, self.rank, self.world_size)


class StepBatches:
    """``for step, batch in StepBatches(...)``: this process's batches from ``start_step``
    on, forever; ``batch`` is (batch_size // world_size, 3, crop, crop) float in [0, 1].

    ``batch_size`` is the global batch (all processes together), so one config gives the
    same samples on 1 or N processes; see :func:`batch_indices` for the split. Batches
    are loaded by a DataLoader with ``num_workers`` worker processes; the result does not
    depend on it. To resume, pass the step to train next as ``start_step``.
    """

    def __init__(
        self,
        dataset: PhotoFolder,
        batch_size: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,  # True speeds up copies to a CUDA GPU
    ) -> None:
        batch_indices(start_step, batch_size, rank, world_size)  # checks the arguments
        self.dataset, self.start_step = dataset, start_step
        self.sampler = _StepSampler(start_step, batch_size, rank, world_size)
        self.num_workers, self.pin_memory = num_workers, pin_memory

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor]]:
        loader = DataLoader(
            self.dataset,
            batch_sampler=self.sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            # Its own generator, or the DataLoader would draw a worker seed from the global RNG.
            generator=torch.Generator().manual_seed(0),
        )
        return zip(itertools.count(self.start_step), loader)


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Download ``url`` into ``part``, continuing a partial file with an HTTP Range request
    (from the start if the server ignores it). Raises on a network error or a short read."""
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = response.status == 206 and response.headers.get(
                "Content-Range", ""
            ).startswith(f"bytes {offset}-")
            if offset and not resumed:
                if response.status == 206:
                    part.unlink()
                    raise OSError("the server sent the wrong range; the partial file was deleted")
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            with (
                open(part, "ab" if offset else "wb") as out,
                tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=url.rsplit("/", 1)[-1],
                ) as bar,
            ):
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
            received = part.stat().st_size
            if total is not None and received < total:
                raise OSError(f"connection closed after {received:,} of {total:,} bytes")
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send: the file is complete
            return
        raise BadInputError(
            f"could not download {url} (HTTP {err.code} {err.reason}); run again to resume."
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", None) or err
        raise BadInputError(f"could not download {url} ({reason}); run again to resume.") from None


def download_coco(
    root: str | os.PathLike,
    split: str = "val2017",
    *,
    url_base: str = COCO_URL,
    md5: str | None = None,
    keep_archive: bool = False,
    timeout: float = 60.0,  # seconds without data before a network error
) -> Path:
    """Download and extract the COCO photos ``split`` into ``root``; return ``root/split``.

    Splits: ``"val2017"`` (5,000 photos, 778 MiB: the laptop/Colab choice) and
    ``"train2014"`` (82,783 photos, 13.5 GB, as in Johnson et al.); another split needs
    its ``md5``. Does nothing if ``root/split`` exists. An interrupted download is resumed
    by the next call (``root/split.zip.part``). The archive is checked against its MD5
    (a mismatch deletes it) and extracted into a temporary folder renamed at the end, so
    ``root/split`` exists only once complete. The archive is deleted unless
    ``keep_archive``.
    """
    root = Path(root).expanduser()
    folder = root / split
    if folder.is_dir():
        return folder
    if md5 is None:
        if split not in COCO_MD5:
            raise BadInputError(
                f"split={split!r}: use one of {', '.join(COCO_MD5)}, or pass md5= for another."
            )
        md5 = COCO_MD5[split]
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BadInputError(f"{root}: cannot create the folder ({err.strerror}).") from None
    archive = root / f"{split}.zip"
    if not archive.is_file():
        part = archive.with_name(archive.name + ".part")
        _fetch(f"{url_base.rstrip('/')}/{split}.zip", part, timeout)
        os.replace(part, archive)
    actual = calculate_md5(archive)
    if actual != md5.lower():
        archive.unlink()
        raise BadInputError(
            f"{archive}: checksum mismatch (MD5 {actual}, expected {md5}); the file was "
            "deleted. Run again to download it anew."
        )
    staging = root / f".{split}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        extract_archive(archive, staging)
        inner = staging / split
        os.replace(inner if inner.is_dir() else staging, folder)
    except (zipfile.BadZipFile, OSError) as err:
        raise BadInputError(
            f"{archive}: cannot extract ({err}); check the free disk space and run again."
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep_archive:
        archive.unlink()
    return folder
