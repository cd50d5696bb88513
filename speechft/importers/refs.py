"""Audio references: encoded bytes (Hugging Face datasets), files, and Kaldi `cmd |` pipes.

Each is decoded to 16 kHz mono only when its converted file does not exist yet. Kaldi
`segments` cut many utterances from one recording, so the last decoded recordings are kept.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, audio_info, file_sha1, resample
from ..errors import SpeechftError
from .rows import cut_key

PIPE_TIMEOUT = 600  # s, for one `cmd |` of a Kaldi wav.scp to produce its recording
RECORDINGS_KEPT = 2  # decoded recordings kept for the next segments of the same recording


def _cut(samples: np.ndarray, start: float | None, end: float | None) -> np.ndarray:
    if start is None:
        return samples
    a = int(round(start * SAMPLE_RATE))
    b = samples.size if end is None else int(round(end * SAMPLE_RATE))
    if a >= samples.size or b <= a:
        raise SpeechftError(f"segment {start}-{end} s lies outside the recording ({samples.size / SAMPLE_RATE:.2f} s)")
    return samples[a:b]


@lru_cache(maxsize=4096)
def _sha1_of(path: str, size: int, mtime_ns: int) -> str:
    return file_sha1(path)  # size and mtime in the cache key: an edited file is hashed again


def content_sha1(path: str | Path) -> str:
    """Content hash of a file, computed once per process for an unchanged file."""
    st = os.stat(path)
    return _sha1_of(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=RECORDINGS_KEPT)
def _decode_file(path: str) -> np.ndarray:
    mono, sr, _ = audio_info(path)
    return resample(mono, sr)


@lru_cache(maxsize=RECORDINGS_KEPT)
def _run_pipe(command: str) -> np.ndarray:
    import soundfile as sf

    # Kaldi's convention: the command runs in a shell from the working directory (the recipe folder).
    try:
        done = subprocess.run(command, shell=True, capture_output=True, timeout=PIPE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SpeechftError(f"`{command}` did not finish within {PIPE_TIMEOUT} s") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SpeechftError(f"`{command}` failed (exit {done.returncode}): {err[-1] if err else 'no message'}")
    if not done.stdout:
        raise SpeechftError(f"`{command}` wrote no audio")
    data, sr = sf.read(io.BytesIO(done.stdout), dtype="float32", always_2d=True)
    return resample(np.ascontiguousarray(data.mean(axis=1)), int(sr))


@dataclass(frozen=True)
class FileAudio:
    """An audio file on disk (soundfile, or ffmpeg through librosa for MP3 and the like)."""

    path: str
    start: float | None = None  # s; a stretch of the file (Kaldi segments)
    end: float | None = None

    def key(self) -> str:
        return cut_key(content_sha1(self.path), self.start, self.end)

    def samples(self) -> np.ndarray:
        return _cut(_decode_file(self.path), self.start, self.end)


@dataclass(frozen=True)
class PipeAudio:
    """A Kaldi `cmd |` entry: the command writes a WAV to stdout (sox, ffmpeg, sph2pipe)."""

    command: str
    start: float | None = None
    end: float | None = None

    def key(self) -> str:
        # Running the command to hash its output would be the work a second import skips.
        return cut_key("pipe:" + hashlib.sha1(self.command.encode()).hexdigest(), self.start, self.end)

    def samples(self) -> np.ndarray:
        return _cut(_run_pipe(self.command), self.start, self.end)


@dataclass(frozen=True)
class BytesAudio:
    """Encoded audio embedded in a Hugging Face dataset, decoded by datasets' Audio feature."""

    data: bytes
    name: str | None = None  # the file name stored with the bytes (its extension helps decoding)

    def key(self) -> str:
        return cut_key(hashlib.sha1(self.data).hexdigest(), None, None)

    def samples(self) -> np.ndarray:
        from datasets import Audio

        decoded = Audio().decode_example({"bytes": self.data, "path": self.name}).get_all_samples()
        mono = decoded.data.mean(dim=0).numpy().astype(np.float32)  # [channels, frames] -> mono
        return resample(mono, int(decoded.sample_rate))
