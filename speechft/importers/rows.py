"""What every source reader yields: one row per utterance, its audio a lazy reference.

Readers only parse the source (tables, TSVs, Kaldi files); decoding and writing happen once,
in `write.py`, for every format alike. An `AudioRef` names its audio by a content key that is
cheap to compute (a hash of the encoded bytes, never of the decoded samples), so a second
import finds every converted file without decoding anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import SpeechftError

# Part of every audio key: changing how audio is converted gives new file names, never stale files.
CONVERSION = "16kHz-mono-flac-v1"


class AudioRef(Protocol):
    def key(self) -> str:
        """Content key of the converted audio (hex); equal keys mean equal audio."""

    def samples(self) -> np.ndarray:
        """float32 mono samples at 16 kHz. Raises any exception when the audio cannot be decoded."""


@dataclass
class Row:
    index: int  # position in the source, for messages
    id: str
    text: str
    speaker: str | None
    audio: AudioRef | None
    problem: str | None = None  # why the reader already knows the row is unusable (no audio entry, ...)


@dataclass(frozen=True)
class Columns:
    """Column names chosen on the command line (None: found by the usual names)."""

    audio: str | None = None
    text: str | None = None
    speaker: str | None = None
    id: str | None = None

    def given(self) -> list[str]:
        return [f"--{name}-column" for name in ("audio", "text", "speaker", "id") if getattr(self, name)]


# The names datasets on the hub, Common Voice, LibriSpeech-style and NeMo tables use.
AUDIO_NAMES = ("audio", "audio_filepath", "file_name", "path", "file", "wav", "audio_path")
TEXT_NAMES = ("text", "sentence", "transcription", "transcript", "normalized_text", "raw_text", "label_text")
SPEAKER_NAMES = ("speaker", "speaker_id", "client_id", "spk_id", "spk")
ID_NAMES = ("id", "utt_id", "utterance_id", "segment_id", "key")


def pick_column(existing: list[str], given: str | None, candidates: tuple[str, ...], what: str,
                source: str, required: bool = True) -> str | None:
    """The column to read `what` from: the given name, else the first usual name present.

    Raises:
        SpeechftError: the given column is missing, or a required one is not found; the
            message names the columns that exist and the flag that chooses one.
    """
    flag = f"--{what}-column"
    if given is not None:
        if given not in existing:
            raise SpeechftError(f"{source}: {flag} {given!r} is not a column. Columns: {', '.join(existing)}. "
                                f"Fix: pass one of them as {flag}")
        return given
    found = next((c for c in candidates if c in existing), None)
    if found is None and required:
        raise SpeechftError(f"{source}: no {what} column (looked for {', '.join(candidates)}). Columns: "
                            f"{', '.join(existing)}. Fix: name it with {flag}")
    return found


def cut_key(base: str, start: float | None, end: float | None) -> str:
    """Key of a stretch [start, end) s of the audio with key `base` (whole audio when start is None)."""
    raw = f"{CONVERSION}:{base}" if start is None else f"{CONVERSION}:{base}:{start:.4f}:{end}"
    return hashlib.sha1(raw.encode()).hexdigest()[:20]
