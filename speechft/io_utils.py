"""Atomic writes: a file either has its complete new content or is untouched."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def read_lines(path: str | Path, what: str, fix: str) -> list[str]:
    """Lines of a UTF-8 text file.

    Raises:
        SpeechftError: the file is missing or not UTF-8 (naming `what`, the path and `fix`).
    """
    from .errors import SpeechftError

    path = Path(path)
    if not path.is_file():
        raise SpeechftError(f"{what} not found: {path}. Fix: {fix}")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise SpeechftError(f"{what} {path} is not UTF-8 ({e.reason}). Fix: re-save it as UTF-8") from None


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write text to a temp name in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


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
