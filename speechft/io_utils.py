"""Atomic writes: a file either has its complete new content or is untouched."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


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
