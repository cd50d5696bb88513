"""NeMo-compatible JSON Lines manifests: one utterance a line."""

from __future__ import annotations

import codecs
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from .errors import SpeechftError
from .io_utils import atomic_path

REQUIRED_KEYS = ("audio_filepath", "text")
EXAMPLE_LINE = '{"audio_filepath": "a.wav", "text": "...", "duration": 1.2}'
_LINE = object()  # parse_line: the problem's value is the line itself


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
        """An utterance from a line's dict; the types are checked by `parse_line`."""
        path = str(d["audio_filepath"])
        if base_dir is not None and not os.path.isabs(path):
            path = str((base_dir / path).resolve())
        duration = d.get("duration")
        uid = d.get("id")
        if uid is None or uid == "":
            uid = d.get("utt_id")
        return cls(
            audio_filepath=path,
            text=d["text"],
            duration=float(duration) if duration is not None else None,
            id=str(uid) if uid is not None and uid != "" else f"{Path(path).stem}#{line}",
            speaker=None if d.get("speaker") is None else str(d["speaker"]),
            segments=d.get("segments"),
        )


class ManifestLineError(SpeechftError):
    """A line that cannot be read, with the parts of a validation problem (validate lists them)."""

    def __init__(self, manifest, line: int, id: str, field: str, value, problem: str, fix: str):
        self.manifest, self.line, self.id, self.field = str(manifest), line, id, field
        self.value, self.problem, self.fix = short_repr(value), problem, fix
        super().__init__(f"{manifest}:{line} id={id or '?'} {field}={self.value}: {problem}. Fix: {fix}")


def short_repr(value, n: int = 60) -> str:
    """repr() cut to n characters; paths keep their end, where the file name is."""
    s = repr(value)
    if len(s) <= n:
        return s
    return "..." + s[-(n - 3):] if isinstance(value, (str, Path)) and os.sep in str(value) else s[: n - 3] + "..."


def _kind(value) -> str:
    """What a JSON value is, in the words of the JSON file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {list: "a list", dict: "an object", str: "a string"}.get(type(value), type(value).__name__)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _line_id(obj: dict) -> str:
    """The line's id as messages show it: '' when it has none usable."""
    for key in ("id", "utt_id"):
        v = obj.get(key)
        if isinstance(v, str) or _is_number(v):
            return str(v)
    return ""


def _type_problem(obj: dict) -> tuple[str, str, str] | None:
    """(field, problem, fix) of the first value of the wrong type, None when all are right."""
    # str(None) == "None" and str(123) == "123" would be trained on as transcripts: a string or nothing.
    for key in REQUIRED_KEYS:
        if not isinstance(obj[key], str):
            what = "the transcript" if key == "text" else "the audio file's path"
            return key, f"{key} is {_kind(obj[key])}, not a string", f'write {what} as a JSON string, e.g. "{key}": "..."'
    if not obj["audio_filepath"].strip():
        return "audio_filepath", "audio_filepath is empty", "give the audio file's path"
    duration = obj.get("duration")
    if duration is not None:
        if not _is_number(duration):
            return "duration", f"duration is {_kind(duration)}, not a number", "write the duration in seconds as a number (e.g. 1.25), or leave it out"
        try:
            finite = math.isfinite(float(duration))
        except OverflowError:
            finite = False
        if not finite or duration < 0:
            return "duration", "duration is not a finite number of seconds >= 0", "write the duration in seconds (e.g. 1.25), or leave it out"
    for key in ("id", "utt_id", "speaker"):  # a number is fine (read as its text), a list or object is not
        value = obj.get(key)
        if value is not None and not (isinstance(value, str) or _is_number(value)):
            return key, f"{key} is {_kind(value)}, not a string or number", f'write the {key} as a JSON string, e.g. "{key}": "spk1"'
    return None


def parse_line(raw: bytes | str, line: int, manifest: Path | str) -> dict:
    """Decode one manifest line into a dict with values of the right types.

    A UTF-8 byte-order mark on line 1 is skipped (Windows tools such as Excel write one).

    Raises:
        ManifestLineError: the line is not UTF-8, not a JSON object, lacks a key or holds a
            value of the wrong type; the message names the line, the id and the fix.
    """
    def fail(problem, fix, field="line", value=_LINE, id=""):
        raise ManifestLineError(manifest, line, id, field, raw.strip()[:60] if value is _LINE else value, problem, fix)

    if isinstance(raw, bytes):
        if line == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raw = raw.decode("utf-8", "replace")
            fail(f"text is not valid UTF-8 ({e.reason} at byte {e.start})", "re-save the manifest as UTF-8")
    elif line == 1 and raw.startswith("\ufeff"):
        raw = raw[1:]
    if raw.startswith("\ufeff"):  # only line 1 may carry one: later, it is a file joined onto another
        fail("byte-order mark inside the file (files joined with cat?)", "remove the byte-order mark at the start of this line")
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        fail(f"not valid JSON ({e.msg})", f"one JSON object a line, e.g. {EXAMPLE_LINE}")
    except RecursionError:  # a deeply nested value
        fail("not valid JSON (nested too deeply)", f"one JSON object a line, e.g. {EXAMPLE_LINE}")
    if not isinstance(obj, dict):
        fail(f"expected a JSON object, got {_kind(obj)}", f"one JSON object a line, e.g. {EXAMPLE_LINE}")
    uid = _line_id(obj)
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        fail(f"missing key(s) {', '.join(missing)}", "every line needs audio_filepath and text", id=uid)
    wrong = _type_problem(obj)
    if wrong:
        field, problem, fix = wrong
        fail(problem, fix, field, obj[field], uid)
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
    """Write a manifest atomically (io_utils.atomic_path); paths are written relative to `relative_to` when given.

    Raises:
        SpeechftError: the disk is full or the folder is not writable (the old manifest is kept).
    """
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for u in utts:
            d = u.to_dict()
            if relative_to is not None:
                d["audio_filepath"] = os.path.relpath(u.audio_filepath, relative_to)
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


def spread_subset(utts: list[Utterance], n: int, group: Callable[[Utterance], str] | None = None,
                  seed: int | None = None) -> list[Utterance]:
    """n utterances spread over the list, in the list's order (all of them when n is 0 or covers it).

    Each group (`group(u)`, e.g. a prompt's folder; default one group) gets its share of n, the
    largest remainders taking what rounding leaves. Within a group the choice is evenly spaced
    (deterministic), or a `seed`ed random permutation's first members.
    """
    if n <= 0 or n >= len(utts):
        return utts
    groups: dict[str, list[Utterance]] = {}
    for u in utts:
        groups.setdefault(group(u) if group else "", []).append(u)
    quota = {g: len(us) * n / len(utts) for g, us in groups.items()}
    take = {g: int(q) for g, q in quota.items()}
    for g in sorted(quota, key=lambda g: (take[g] - quota[g], g))[: n - sum(take.values())]:
        take[g] += 1
    if seed is None:
        chosen = {id(us[i * len(us) // take[g]]) for g, us in groups.items() for i in range(take[g])}
    else:
        import numpy as np

        rng = np.random.default_rng(seed)
        chosen = {id(u) for g in sorted(groups) for u in rng.permutation(np.array(groups[g], dtype=object))[: take[g]]}
    return [u for u in utts if id(u) in chosen]
