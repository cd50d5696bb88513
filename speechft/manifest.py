"""NeMo-compatible JSON Lines manifests: one utterance a line."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from .errors import SpeechftError

REQUIRED_KEYS = ("audio_filepath", "text")


@dataclass
class Utterance:
    """One labelled recording. `audio_filepath` is absolute once read from a manifest."""

    audio_filepath: str
    text: str
    duration: float | None = None  # seconds
    id: str = ""
    speaker: str | None = None
    segments: list | None = None  # [{start, end, text}] (s), checked only when splitting (segment.py)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict, base_dir: Path | None = None, line: int = 0) -> "Utterance":
        path = str(d["audio_filepath"])
        if base_dir is not None and not os.path.isabs(path):
            path = str((base_dir / path).resolve())
        duration = d.get("duration")
        return cls(
            audio_filepath=path,
            text=str(d["text"]),
            duration=float(duration) if duration is not None else None,
            id=str(d.get("id") or d.get("utt_id") or f"{Path(path).stem}#{line}"),
            speaker=None if d.get("speaker") is None else str(d["speaker"]),
            segments=d.get("segments"),
        )


def parse_line(raw: bytes | str, line: int, manifest: Path) -> dict:
    """Decode one manifest line into a dict, or raise SpeechftError naming the line and the fix."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SpeechftError(
                f"{manifest}:{line}: text is not valid UTF-8 ({e.reason} at byte {e.start}). "
                "Fix: re-save the manifest as UTF-8"
            ) from None
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SpeechftError(
            f"{manifest}:{line}: not valid JSON ({e.msg}): {raw.strip()[:80]!r}. "
            'Fix: one JSON object a line, e.g. {"audio_filepath": "a.wav", "text": "...", "duration": 1.2}'
        ) from None
    if not isinstance(obj, dict):
        raise SpeechftError(f"{manifest}:{line}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise SpeechftError(
            f"{manifest}:{line}: missing key(s) {', '.join(missing)} (id={obj.get('id', '?')}). "
            "Fix: every line needs audio_filepath and text"
        )
    return obj


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a manifest; relative audio paths resolve against the manifest's own folder.

    Raises:
        SpeechftError: the file is missing or a line is malformed (use validate for the full list).
    """
    path = Path(path)
    if not path.is_file():
        raise SpeechftError(f"manifest not found: {path}. Fix: check the path, or run `speechft prepare`")
    utts = []
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            utts.append(Utterance.from_dict(parse_line(raw, line_no, path), path.parent.resolve(), line_no))
    return utts


def write_manifest(path: str | Path, utts: Iterable[Utterance], relative_to: Path | None = None) -> None:
    """Write a manifest atomically; paths are written relative to `relative_to` when given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for u in utts:
            d = u.to_dict()
            if relative_to is not None:
                d["audio_filepath"] = os.path.relpath(u.audio_filepath, relative_to)
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    tmp.replace(path)
