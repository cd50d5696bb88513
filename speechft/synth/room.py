"""Room and background: reverberation, white/pink/brown noise, mixing at a signal-to-noise ratio.

Every function takes its randomness from the `rng` it is given, so a caller's seed fixes the result.
"""

from __future__ import annotations

import numpy as np

from ..audio import SAMPLE_RATE

NOISE_COLORS = ("white", "pink", "brown")  # power falls 0, 3 and 6 dB per octave
DECAY_60DB = 6.91  # ln(1000): an amplitude envelope exp(-6.91 t / RT60) is 60 dB down at RT60


def room_impulse(rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room response: exponentially decaying noise, -60 dB at `rt60` seconds, unit energy."""
    t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    ir = rng.standard_normal(t.size) * np.exp(-DECAY_60DB * t / rt60)
    ir[0] = 0.0  # the direct sound is the dry signal itself (mixed in by `reverberate`)
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    return ir


def reverberate(audio: np.ndarray, rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    """Dry signal mixed with its reverberant copy; `wet` is the reverberant share (0..1)."""
    from scipy.signal import fftconvolve

    reverberant = fftconvolve(audio, room_impulse(rt60, rng))[: audio.size]
    return (1 - wet) * audio + wet * reverberant


def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of unit-variance noise; "white" is exactly rng.standard_normal(n)."""
    white = rng.standard_normal(n)
    if color == "white" or n < 2:
        return white
    # Shape the spectrum: amplitude ~ f^-1/2 (pink) or f^-1 (brown); DC removed.
    spectrum = np.fft.rfft(white)
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    spectrum *= f ** (-0.5 if color == "pink" else -1.0)
    spectrum[0] = 0.0
    shaped = np.fft.irfft(spectrum, n)
    return shaped / (np.std(shaped) + 1e-12)


def add_noise(audio: np.ndarray, snr_db: float, color: str, rng: np.random.Generator) -> np.ndarray:
    """`audio` plus noise of `color` at `snr_db` dB below its mean power."""
    power = float(np.mean(audio**2)) + 1e-12
    return audio + colored_noise(audio.size, color, rng) * np.sqrt(power / 10 ** (snr_db / 10))


def mix_at_snr(audio: np.ndarray, background: np.ndarray, snr_db: float) -> np.ndarray:
    """`audio` plus `background` (same length) scaled to `snr_db` dB below the audio's power."""
    power = float(np.mean(audio**2)) + 1e-12
    bg_power = float(np.mean(background**2)) + 1e-12
    return audio + background * np.sqrt(power / bg_power / 10 ** (snr_db / 10))


def loop_to(audio: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """`n` samples of `audio` repeated end to end, beginning at sample `start`."""
    if audio.size == 0:
        return np.zeros(n, np.float32)
    reps = (start + n) // audio.size + 1
    return np.tile(audio, reps)[start : start + n]
