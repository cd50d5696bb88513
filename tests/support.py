"""Helpers the tests share: synthetic audio and manifests written into tmp folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SR = 16000  # Hz


def tone(seconds: float, freq: float, seed: int = 0, sr: int = SR, channels: int = 1) -> np.ndarray:
    """A tone with a little noise: distinct per utterance, never silent. [frames] or [frames, channels]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write_tone_wav(path: Path, seconds: float, freq: float, seed: int = 0, sr: int = SR, channels: int = 1) -> Path:
    """`tone` as a 16-bit WAV file."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, freq, seed, sr, channels), sr, subtype="PCM_16")
    return path


def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
