"""Recipes that name a dataset directly: `data.train: hf:PATH[:split]` (dev, test, general, replay too).

The source is imported on first use into `<data root>/imported/<name>-<fingerprint>/` and
reused while it is unchanged. The fingerprint hashes the source's file names and contents;
hashing is skipped when no file's size or modification time changed since the last run (a
small stat cache beside the imports), so a rerun reads nothing but directory listings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

from ..errors import SpeechftError
from ..io_utils import atomic_write_json
from .core import import_dataset
from .refs import content_sha1

log = logging.getLogger("speechft")
PREFIX = "hf:"
IMPORTED_DIR = "imported"
STAT_CACHE = ".fingerprints.json"


def parse_spec(spec: str) -> tuple[str, str | None]:
    """`hf:PATH[:split]` -> (PATH, split or None). A PATH that exists as written keeps its colons."""
    body = spec[len(PREFIX):]
    if Path(body).expanduser().exists() or ":" not in body:
        return body, None
    source, _, split = body.rpartition(":")
    return source, split or None


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(source).parts))


def fingerprint(source: str, cache_dir: Path) -> str:
    """Content fingerprint of a local source (a hub id: of its name). See the module docstring."""
    path = Path(source).expanduser()
    if not path.exists():
        return hashlib.sha1(f"hub:{source}".encode()).hexdigest()[:12]
    files = _files(path)
    listing = [[str(f.relative_to(path)) if path.is_dir() else f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    listing_key = hashlib.sha1(json.dumps(listing).encode()).hexdigest()
    cache_file = cache_dir / STAT_CACHE
    try:
        cache = json.loads(cache_file.read_text("utf-8")) if cache_file.is_file() else {}
    except (OSError, ValueError):
        cache = {}  # a damaged cache only costs one hashing pass
    entry = cache.get(str(path.resolve()))
    if entry and entry.get("listing") == listing_key:
        return entry["fingerprint"]
    h = hashlib.sha1()
    for f, (rel, _, _) in zip(files, listing):
        h.update(f"{rel}\0{content_sha1(f)}\n".encode())
    value = h.hexdigest()[:12]
    cache[str(path.resolve())] = {"listing": listing_key, "fingerprint": value}
    atomic_write_json(cache_file, cache)
    return value


def resolve_source(spec: str, data_root: str | Path) -> str:
    """The manifest path for a recipe's data entry: unchanged unless it is `hf:PATH[:split]`,
    which is imported on first use (see the module docstring) and reused after.

    Raises:
        SpeechftError: as import_dataset; or no split was named and the source has several.
    """
    if not str(spec).startswith(PREFIX):
        return spec
    source, split = parse_spec(spec)
    imported = Path(data_root) / IMPORTED_DIR
    name = re.sub(r"[^\w.-]", "_", Path(source.rstrip("/")).name or source)[:40]
    out = imported / f"{name}-{fingerprint(source, imported)}"
    if split is not None and (out / f"{split}.jsonl").is_file():
        return str(out / f"{split}.jsonl")  # imported by an earlier run from the same content
    result = import_dataset(source, out, split=split)
    log.info("%s", result.summary())
    manifests = result.manifests
    if split is None and len(manifests) > 1:
        raise SpeechftError(f"{spec}: the source has splits {', '.join(manifests)}. Fix: name one, e.g. {PREFIX}{source}:{next(iter(manifests))}")
    return str(manifests[split] if split is not None else next(iter(manifests.values())))
