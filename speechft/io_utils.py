"""Atomic writes: a file either has its complete new content or is untouched.

Every file speechft writes (manifests, audio, caches, checkpoints, models, reports) goes through
`atomic_path`: the content is written under a temporary name in the same folder, flushed to
disk and renamed over the target. A full disk or a missing permission becomes one
`SpeechftError` that names the path and says the previous content is intact, and the
temporary file is removed, so nothing half-written is ever left behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import SpeechftError

# errno values that mean "the disk or the permissions, not the program": named with a fix.
_DISK_ERRORS = {
    errno.ENOSPC: ("the disk is full", "free space there, or point the output elsewhere"),
    errno.EDQUOT: ("the disk quota is exceeded", "free space there, or point the output elsewhere"),
    errno.EACCES: ("permission denied", "make the folder writable, or point the output elsewhere"),
    errno.EPERM: ("operation not permitted", "make the folder writable, or point the output elsewhere"),
    errno.EROFS: ("the file system is read-only", "point the output at a writable folder"),
}


def disk_error(path: str | Path, e: OSError) -> SpeechftError | None:
    """A SpeechftError naming `path` for disk-full / permission errors, None for other errors."""
    known = _DISK_ERRORS.get(e.errno)
    if known is None:
        return None
    what, fix = known
    return SpeechftError(f"cannot write {path}: {what} ({e.strerror}). Nothing was half-written: "
                         f"{Path(path).name} keeps its previous content, if it had any. Fix: {fix}")


def read_lines(path: str | Path, what: str, fix: str) -> list[str]:
    """Lines of a UTF-8 text file (a leading byte-order mark is ignored).

    Raises:
        SpeechftError: the file is missing or not UTF-8 (naming `what`, the path and `fix`).
    """
    path = Path(path)
    if not path.is_file():
        raise SpeechftError(f"{what} not found: {path}. Fix: {fix}")
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise SpeechftError(f"{what} {path} is not UTF-8 ({e.reason}). Fix: re-save it as UTF-8") from None


def visible_files(folder: Path, exclude: Path | None = None) -> list[Path]:
    """The files under `folder`, recursively and sorted, without hidden ones (nothing under a
    dot-named folder) and without those under `exclude` (an output folder inside the input)."""
    skip = exclude.resolve() if exclude is not None else None
    return sorted(f for f in folder.rglob("*") if f.is_file()
                  and not any(part.startswith(".") for part in f.relative_to(folder).parts)
                  and (skip is None or not f.resolve().is_relative_to(skip)))


def _temp_name(path: Path) -> Path:
    # pid and thread: processes and threads writing the same file never share a temp name.
    return path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write `path`'s new content to; renamed over `path` on success.

    The temporary name keeps the suffix (np.save, soundfile and matplotlib pick the format
    from it). On any exception the temporary file is removed and `path` is untouched.

    Raises:
        SpeechftError: the disk is full or the folder is not writable (naming the path).
    """
    path = Path(path)
    tmp = _temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        wrapped = disk_error(path, e)
        if wrapped is not None:
            raise wrapped from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write bytes atomically (see atomic_path)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically (see atomic_path)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_text_if_changed(path: str | Path, text: str) -> bool:
    """Atomic write that leaves an identical file untouched (a rerun changes no mtime).

    Returns True when the file was written.
    """
    path = Path(path)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write_text(path, text)
    return True


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a completely written folder into place, replacing an older one."""
    final_dir = Path(final_dir)
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.old{os.getpid()}")
        final_dir.rename(old)
        Path(tmp_dir).rename(final_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        Path(tmp_dir).rename(final_dir)
