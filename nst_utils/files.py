"""Writing files without losing anything: atomic replacement and output checks made before
any work starts. Images, checkpoints, trained models and exported networks all go through
:func:`atomic_write`.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import BadInputError

NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems


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
    usual ones (0666 minus the umask). The temp name is short whatever ``path`` is called.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".nst-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        mode = path.stat().st_mode & 0o7777 if path.is_file() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    return path


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
