"""Rows -> 16 kHz mono FLAC files named by content, and a validated NeMo manifest per split.

Every file is written atomically. Audio is content-addressed (`audio/<key>.flac`): a file
that exists already is this audio, so a second import decodes and writes nothing, and a
manifest whose new text equals the old one is left untouched.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

import numpy as np

from ..audio import SAMPLE_RATE, WHISPER_MAX_SECONDS
from ..errors import SpeechftError
from ..io_utils import atomic_path
from ..manifest import Utterance
from ..text import normalize
from ..validate import Limits, Problem, summarize, validate_manifest
from .rows import Row

log = logging.getLogger("speechft")
AUDIO_DIR = "audio"  # inside the output folder, shared by all splits
SHOWN_FAILURES = 20  # rows listed in a message; the count covers all


@dataclass
class Failure:
    index: int  # row in the source
    id: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.index} id={self.id or '?'}: {self.reason}"


@dataclass
class SplitResult:
    split: str
    manifest: Path
    utterances: int
    written: int  # audio files converted now
    reused: int  # audio files found from an earlier import
    failed: list[Failure] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # validation warnings and drops
    manifest_changed: bool = True

    def summary(self) -> str:
        line = (f"{self.split}: {self.utterances} utterances -> {self.manifest} ({self.written} audio files written, "
                f"{self.reused} reused{'' if self.manifest_changed else ', manifest unchanged'})")
        if self.failed:
            line += f"\n  {len(self.failed)} row(s) skipped:\n" + failure_lines(self.failed)
        if self.problems:
            line += "\n  validation:\n" + "\n".join(f"  {p.message}" for p in self.problems)
        return line


def failure_lines(failed: list[Failure]) -> str:
    lines = [f"  {f}" for f in failed[:SHOWN_FAILURES]]
    if len(failed) > SHOWN_FAILURES:
        lines.append(f"  ... and {len(failed) - SHOWN_FAILURES} more")
    return "\n".join(lines)


def _write_flac(path: Path, samples: np.ndarray) -> None:
    import soundfile as sf

    with atomic_path(path) as tmp:  # the temp name keeps .flac: soundfile picks the format from it
        sf.write(str(tmp), np.clip(samples, -1.0, 1.0), SAMPLE_RATE, format="FLAC", subtype="PCM_16")


class _WriteError(Exception):
    def __init__(self, path: Path, cause: OSError):
        super().__init__(str(cause))
        self.path, self.cause = path, cause


def _write_output(path: Path, samples: np.ndarray) -> None:
    try:
        _write_flac(path, samples)  # atomic_path makes the folder
    except OSError as e:
        raise _WriteError(path, e) from e
    except RuntimeError as e:  # soundfile reports a failed write (a full disk) as LibsndfileError
        raise _WriteError(path, OSError(f"libsndfile: {str(e).rstrip('.')}; is the disk full?")) from e


def _read_rows(rows: Iterable[Row], split: str) -> Iterable[Row]:
    """The rows, with a reader's failure mid-way (a file that is no table) as one clear error."""
    it, n = iter(rows), 0
    while True:
        try:
            row = next(it)
        except StopIteration:
            return
        except SpeechftError:
            raise
        except Exception as e:  # datasets and pyarrow raise many types for a file they cannot parse
            raise SpeechftError(f"{split}: reading the source failed after {n} row(s): {_first_line(e)}. Fix: check "
                                "that its files are what their names say, or force the form with --format; no "
                                "manifest was written") from e
        n += 1
        yield row


def _seconds(path: Path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else 'no message'}"[:300]


def convert_rows(rows: Iterable[Row], out: Path, split: str) -> tuple[list[Utterance], list[Failure], int, int]:
    """Convert every row's audio (unless its file exists) and build its utterance.

    Returns:
        (utterances, failures, files written, files reused). Rows without text or with audio
        that cannot be decoded are failures: skipped, and listed by the caller.
    """
    audio_dir = out / AUDIO_DIR
    utts, failed, written, reused = [], [], 0, 0
    seen: set[str] = set()
    for row in _read_rows(rows, split):
        if row.problem or row.audio is None:
            failed.append(Failure(row.index, row.id, row.problem or "no audio"))
            continue
        if not normalize(row.text):
            failed.append(Failure(row.index, row.id, f"text {row.text!r} is empty after normalisation"))
            continue
        try:
            path = audio_dir / f"{row.audio.key()}.flac"
            if path.is_file():  # the name is the content: this file is this row's audio
                seconds, reused = _seconds(path), reused + 1
            else:
                samples = row.audio.samples()
                if samples.size == 0:
                    raise SpeechftError("audio has zero samples")
                _write_output(path, samples)
                seconds, written = samples.size / SAMPLE_RATE, written + 1
        except _WriteError as e:  # the output, not the row: stop (a full disk would fail every row alike)
            raise SpeechftError(f"cannot write {e.path} ({str(e.cause).rstrip('.')}). Fix: free space there or choose "
                                "another --out; the audio files written so far are complete and an import again "
                                "reuses them, no manifest was written") from e.cause
        except SpeechftError as e:
            failed.append(Failure(row.index, row.id, str(e).split(". Fix:")[0]))
            continue
        except Exception as e:  # decoders raise anything (RuntimeError, LibsndfileError, ...): keep the row's reason
            failed.append(Failure(row.index, row.id, f"cannot decode audio: {_first_line(e)}"))
            continue
        uid = row.id if row.id not in seen else f"{row.id}-row{row.index}"  # manifests need unique ids
        seen.add(uid)
        utts.append(Utterance(str(path.resolve()), row.text, round(seconds, 4), uid, row.speaker))
    if failed:
        log.warning("%s: %d row(s) skipped:\n%s", split, len(failed), failure_lines(failed))
    return utts, failed, written, reused


def manifest_text(utts: list[Utterance], folder: Path) -> str:
    """NeMo JSON Lines with audio paths relative to the manifest's folder."""
    lines = []
    for u in utts:
        d = u.to_dict()
        d["audio_filepath"] = os.path.relpath(u.audio_filepath, folder.resolve())
        lines.append(json.dumps({k: d[k] for k in ("audio_filepath", "text", "duration", "id", "speaker") if k in d},
                                ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def write_validated(path: Path, text: str, limits: Limits | None = None) -> tuple[list[Problem], bool]:
    """Write a manifest atomically after validating it under its temporary name.

    Returns:
        (validation problems that do not block use, whether the file was written). An
        identical existing manifest is left untouched and not validated again.

    Raises:
        SpeechftError: validation found errors; the old manifest (if any) is untouched.
    """
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return [], False
    limits = limits or Limits(max_seconds=WHISPER_MAX_SECONDS)
    with atomic_path(path) as tmp:  # same folder: the relative audio paths resolve as they will
        tmp.write_text(text, encoding="utf-8")
        _, problems = validate_manifest(tmp, limits)
        problems = [replace(p, manifest=str(path)) for p in problems]
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise SpeechftError(f"the imported manifest {path} does not validate, so it was not written:\n"
                                f"{summarize(errors)}")
    return problems, True
