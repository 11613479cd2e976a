"""Writing files without losing anything: atomic replacement and output checks made before
any work starts. Images, checkpoints, trained models and exported networks all go through
:func:`atomic_write`, whose partial file is named after its target (a leftover of a killed
process says what it is; :func:`remove_stale_partials` deletes those). :func:`find_files`
lists a folder's files and says which sub-folders could not be read.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import BadInputError

NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
# A file being written is ".NAME.RANDOM.PID.nst-partial" beside NAME: a leftover (the writer
# was killed) says which file it was meant to be; remove_stale_partials() deletes those.
PARTIAL = ".nst-partial"
STALE_AFTER = 300  # seconds without a change before a dead writer's partial file is removed
# Image file names: those read (the formats of nst_utils.images.FORMATS) and those written.
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
SAVE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; on success it replaces
    ``path`` in one step (``os.replace``), on any error or Ctrl-C it is deleted.

    A reader never sees a half-written file, an interrupted run leaves the old file (or
    none) and no temp file. A replaced file keeps its permission bits; a new one gets the
    usual ones (0666 minus the umask). The temp file is named after ``path`` (shortened:
    the whole name stays legal), so one left by a killed process says what it was; a
    system error names ``path``, not the temp file.
    """
    path = Path(path)
    short = path.name.encode()[:100].decode(errors="ignore")
    try:
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{short}.", suffix=f".{os.getpid()}{PARTIAL}"
        )
    except OSError as err:
        raise _naming(err, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        mode = path.stat().st_mode & 0o7777 if path.is_file() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(err, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(err: OSError, path: Path) -> OSError:
    """The same system error, naming the file the caller asked for."""
    return type(err)(err.errno, err.strerror or str(err), str(path))


def remove_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Delete the partial files that :func:`atomic_write` left in ``folder`` when its process
    was killed (the writing process no longer runs on this machine, and the file has not
    changed for :data:`STALE_AFTER` seconds); returns what was deleted."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(PARTIAL)):
            continue
        pid = entry.name[: -len(PARTIAL)].rpartition(".")[2]
        try:
            old = time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER
            if pid.isdigit() and old and not _running(int(pid)):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _running(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send Ctrl-C there: keep every file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists (another user's), or not a pid: leave the file alone
    return True


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    suffixes: Iterable[str] | None = None,
    what: str = "--output",
) -> Path:
    """Check, before any work, that a file can be written at ``path``; return the path.

    Creates a missing parent folder. Refuses, with one line naming ``what`` and saying
    what to do: an existing folder as output, a parent that is a file or cannot be
    created or written to, a name longer than the file system allows, a suffix not in
    ``suffixes`` and an output that is one of ``inputs`` (inputs are never overwritten).
    """
    path = Path(path).expanduser()
    if len(path.name.encode()) > NAME_MAX:
        raise BadInputError(
            f"{what}: the file name is {len(path.name.encode())} bytes long; the limit is "
            f"{NAME_MAX}. Choose a shorter name."
        )
    if path.is_dir():
        raise BadInputError(f"{what} {path} is a folder; give a file name inside it.")
    if path.exists() and not path.is_file():
        raise BadInputError(
            f"{what} {path} exists and is no regular file (a device, pipe or socket); "
            "choose another output name."
        )
    if suffixes is not None:
        allowed = sorted({s.lower() for s in suffixes})
        if path.suffix.lower() not in allowed:
            raise BadInputError(
                f"{what} {path}: unknown suffix {path.suffix or '(none)'!r}; use one of "
                f"{', '.join(allowed)}."
            )
    for source in inputs:
        if _same_file(Path(source).expanduser(), path):
            raise BadInputError(
                f"{what} {path} is also an input ({source}); choose another output name."
            )
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BadInputError(
            f"{what} {path}: {parent} (or a folder above it) is a file, not a folder."
        ) from None
    except OSError as err:
        raise BadInputError(
            f"{what} {path}: cannot create the folder {parent} ({err.strerror})."
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BadInputError(
            f"{what} {path}: the folder {parent} is not writable; choose another place."
        )
    try:  # the only sure test (read-only mounts, /proc, network shares): write a file there
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".nst-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise BadInputError(
            f"{what} {path}: no file can be written in {parent} ({err.strerror}); choose "
            "another place."
        ) from None
    return path


def find_files(
    folder: str | os.PathLike, suffixes: Iterable[str]
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """``(files, unreadable)``: the files under ``folder`` (nested or flat, sorted) whose
    suffix is one of ``suffixes``, and the sub-folders that could not be read, each with
    the reason. Symbolic links to folders are not followed. A ``folder`` that cannot be
    read at all raises :class:`BadInputError`."""
    folder = Path(folder).expanduser()
    wanted = {s.lower() for s in suffixes}
    unreadable: list[tuple[Path, str]] = []

    def note(err: OSError) -> None:
        unreadable.append((Path(err.filename or folder), err.strerror or str(err)))

    files = []
    for top, _, names in os.walk(folder, onerror=note):
        files += [Path(top, n) for n in names if Path(n).suffix.lower() in wanted]
    if unreadable and unreadable[0][0] == folder:
        raise BadInputError(
            f"{folder}: the folder cannot be read ({unreadable[0][1]}); make it readable."
        )
    return sorted(f for f in files if f.is_file()), unreadable


def load_problem(path: Path, error: Exception) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in a few words for a message."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        head = None
    if head == b"":
        return "the file is empty: 0 bytes"
    # PyTorch writes zip archives (legacy files: pickles, protocol byte 0x80); anything
    # else fails in the unpickler with whatever error its bytes happen to cause
    foreign = head is not None and not head.startswith((b"PK\x03\x04", b"\x80"))
    if foreign or isinstance(error, pickle.UnpicklingError):  # or a pickle holding code
        return "not a PyTorch weights file, or one that holds code, which is never run"
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
