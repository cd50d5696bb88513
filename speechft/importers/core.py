"""`speechft import`: any supported dataset -> 16 kHz mono FLAC + one NeMo manifest per split."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpeechftError
from ..validate import Limits
from .detect import detect_format
from .rows import Columns
from .write import SplitResult, convert_rows, failure_lines, manifest_text, write_validated

TABLE_FORMATS = ("disk", "audiofolder", "parquet", "arrow", "csv", "json", "hub")


@dataclass
class ImportResult:
    source: str
    format: str
    out: Path
    splits: dict[str, SplitResult]
    other_manifests: list[str] = field(default_factory=list)  # in `out`, not written by this import

    @property
    def manifests(self) -> dict[str, Path]:
        return {name: s.manifest for name, s in self.splits.items()}

    def summary(self) -> str:
        head = f"imported {self.source} ({self.format}) into {self.out}"
        lines = [head] + [s.summary() for s in self.splits.values()]
        if self.other_manifests:  # an earlier import's splits that this source no longer has, say
            lines.append(f"also in {self.out}, not from this import (left as they were): {', '.join(self.other_manifests)}")
        return "\n".join(lines)


def _read(source: str, fmt: str, split: str | None, columns: Columns, out: Path) -> dict:
    if fmt in TABLE_FORMATS:
        from .hf import read_hf

        return read_hf(source, fmt, split, columns, exclude=out)
    if columns.given():
        raise SpeechftError(f"{', '.join(columns.given())} apply to table formats ({', '.join(TABLE_FORMATS)}), "
                            f"not to {fmt}. Fix: leave them out")
    if fmt == "commonvoice":
        from .commonvoice import read_commonvoice

        return read_commonvoice(Path(source), split, columns)
    from .kaldi import read_kaldi

    return read_kaldi(Path(source), split)


def import_dataset(source: str | Path, out: str | Path, split: str | None = None, columns: Columns = Columns(),
                   fmt: str | None = None, limits: Limits | None = None) -> ImportResult:
    """Import a dataset into `out`: `audio/<content key>.flac` and `<split>.jsonl` per split.

    Audio already converted by an earlier import is reused (no decoding), and a manifest
    identical to the existing one is left untouched. Rows without text or whose audio cannot
    be decoded are skipped and listed (row, id, reason) in the result and the log.

    Args:
        source: a local folder or file of a supported form, or a hub id.
        split: import only this split (default: all of them).
        columns: column names of table formats (default: found by the usual names).
        fmt: force a format (see detect.FORMATS) instead of telling it by the files.
        limits: what the manifests are validated against (default: Whisper's 30 s window).

    Returns:
        ImportResult with one SplitResult (manifest path, counts, skipped rows) per split.

    Raises:
        SpeechftError: unknown format, missing column, empty dataset or split, no row that
            can be used, or a manifest that does not validate. Manifests are written only
            after every split's rows were converted; each file is complete or absent.
    """
    source, out = str(source), Path(out)
    if out.exists() and not out.is_dir():
        raise SpeechftError(f"--out {out} is a file. Fix: give a folder (new or existing) for the audio and manifests")
    fmt = detect_format(source, fmt)
    splits = _read(source, fmt, split, columns, out)
    if not splits:
        raise SpeechftError(f"{source} has no split to import. Fix: check the source")
    converted = {}
    for name, rows in splits.items():
        utts, failed, written, reused = convert_rows(rows, out, name)
        if not utts:
            why = f"none of its {len(failed)} row(s) can be used:\n{failure_lines(failed)}" if failed else "it has no rows"
            raise SpeechftError(f"{source}: nothing to import from split {name!r}: {why}\nFix: check the source "
                                "(or import another split with --split)")
        converted[name] = (utts, failed, written, reused)
    results = {}
    for name, (utts, failed, written, reused) in converted.items():
        manifest = out / f"{name}.jsonl"
        problems, changed = write_validated(manifest, manifest_text(utts, out), limits)
        results[name] = SplitResult(name, manifest, len(utts), written, reused, failed, problems, changed)
    others = sorted(p.name for p in out.glob("*.jsonl") if p.stem not in results)
    return ImportResult(source, fmt, out, results, others)
