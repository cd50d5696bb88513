"""Decode any audio file to float32 mono at 16 kHz (the rate every supported model expects)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .errors import SpeechftError

SAMPLE_RATE = 16000  # Hz, input rate of Whisper and wav2vec2
WHISPER_MAX_SECONDS = 30.0  # s, Whisper's fixed input window


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Returns (samples [frames, channels] float32, sample rate)."""
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return data, int(sr)
    except Exception as sf_error:  # formats soundfile lacks (mp3 on old libsndfile, m4a...)
        try:
            import warnings

            import librosa

            with warnings.catch_warnings():  # librosa warns about its own audioread fallback
                warnings.simplefilter("ignore")
                data, sr = librosa.load(str(path), sr=None, mono=False)
        except Exception:
            raise SpeechftError(
                f"cannot decode audio {path}: {sf_error}. Fix: re-encode it as 16-bit WAV or FLAC "
                f"(ffmpeg -i {path.name} -ar 16000 -ac 1 out.wav)"
            ) from sf_error
        data = np.atleast_2d(data).astype(np.float32)
        return data.T, int(sr)


def audio_info(path: str | Path) -> tuple[np.ndarray, int, int]:
    """Decode without resampling. Returns (mono float32 samples, native rate, channel count)."""
    path = Path(path)
    if not path.is_file():
        raise SpeechftError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise SpeechftError(f"audio file is empty (0 bytes): {path}")
    data, sr = _decode(path)
    channels = data.shape[1] if data.ndim == 2 else 1
    mono = data.mean(axis=1) if data.ndim == 2 else data
    return np.ascontiguousarray(mono, dtype=np.float32), sr, channels


def resample(samples: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono float32 signal with torchaudio's band-limited sinc filter."""
    if orig_sr == target_sr or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(samples)), orig_sr, target_sr)
    return out.numpy().astype(np.float32, copy=False)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Load an audio file as float32 mono at `sample_rate`.

    Raises:
        SpeechftError: the file is missing, empty or cannot be decoded.
    """
    mono, sr, _ = audio_info(path)
    return resample(mono, sr, sample_rate)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM WAV atomically (temp name, then rename)."""
    import soundfile as sf

    from .io_utils import atomic_path

    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def file_sha1(path: str | Path) -> str:
    """Content hash of a file, used as a cache key that changes when the audio changes."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


SPEECH_FRAME_SECONDS = 0.01  # s, energy frame for speech_edges
SPEECH_RANGE_DB = 30.0  # a frame within this many dB of the loudest frame counts as speech


def speech_edges(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[float, float]:
    """(start, end) in seconds of the speech in a clip, TTS and recordings having silence at
    both ends: the first and last 10 ms frame within SPEECH_RANGE_DB of the loudest frame.
    A clip with no frame at all gives (0, its length)."""
    hop = max(int(SPEECH_FRAME_SECONDS * sample_rate), 1)
    n = samples.size // hop
    if n == 0:
        return 0.0, samples.size / sample_rate
    rms = np.sqrt(np.mean(np.square(samples[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-SPEECH_RANGE_DB / 20))
    return float(loud[0] * hop / sample_rate), float((loud[-1] + 1) * hop / sample_rate)

