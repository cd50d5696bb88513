"""From an engine's raw output to the finished utterance: 16 kHz, peak level, effects.

`finish` is the one function every synthesised utterance passes through, whatever its engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..audio import SAMPLE_RATE, resample
from ..errors import SpeechftError
from .room import add_noise, loop_to, mix_at_snr, reverberate
from .telephone import telephone
from .warp import shift_pitch, stretch_tempo, warp_formants

if TYPE_CHECKING:
    from .voices import Voice

CACHE_VERSION = 1  # bump when synthesis or augmentation changes, so cached files are not reused
TARGET_PEAK = 0.9  # output peak amplitude (about -1 dBFS), so engines' different levels match
MIN_SPEECH_SECONDS = 0.15  # s, shorter output means the engine spoke nothing
SILENCE_PEAK = 1e-3  # peak amplitude below which the output counts as silence
REVERB_RT60 = 0.3  # s, a small furnished room: audible but keeps words intelligible
REVERB_WET = 0.35  # share of the reverberant signal in the mix
EFFECTS_STREAM = 1  # seeds the random draws of the newer effects apart from the noise/reverb draws


def level(spoken: tuple[np.ndarray, int], tag: str) -> np.ndarray:
    """An engine's (samples, rate) -> float32 at 16 kHz with peak TARGET_PEAK.

    Raises:
        SpeechftError: the output is too short or silent (the engine spoke nothing).
    """
    samples, sr = spoken
    audio = resample(np.asarray(samples, dtype=np.float32), sr, SAMPLE_RATE)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if audio.size < MIN_SPEECH_SECONDS * SAMPLE_RATE or peak < SILENCE_PEAK:
        raise SpeechftError(f"{tag} produced no speech ({audio.size / SAMPLE_RATE:.2f} s, peak {peak:.1e})")
    return audio * (TARGET_PEAK / peak)


def babble_background(talkers: Sequence[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Background talkers summed over `n` samples, each looped and started at a random point."""
    out = np.zeros(n)
    for audio in talkers:
        out += loop_to(audio, n, int(rng.integers(audio.size)) if audio.size else 0)
    return out


def finish(spoken: tuple[np.ndarray, int], voice: Voice, seed: int, babble: Sequence[np.ndarray] = ()) -> np.ndarray:
    """An engine's output -> the utterance: 16 kHz, effects as `voice` asks, peak TARGET_PEAK.

    Args:
        spoken: (samples, sample rate) as the engine returned them.
        voice: the Voice: noise_snr_db, reverb and effects say what to apply.
        seed: fixes every random draw (noise, room response, babble offsets).
        babble: the background talkers' audio (levelled, 16 kHz) when voice.effects.babble is set.
    Raises:
        SpeechftError: the engine spoke nothing.
    """
    fx = voice.effects
    audio = level(spoken, voice.tag)
    if fx.tempo is not None:
        audio = stretch_tempo(audio, fx.tempo)
    if fx.pitch_semitones is not None:
        audio = shift_pitch(audio, fx.pitch_semitones)
    if fx.vtlp is not None:
        audio = warp_formants(audio, fx.vtlp)
    if len(babble):
        fx_rng = np.random.default_rng([seed, CACHE_VERSION, EFFECTS_STREAM])
        audio = mix_at_snr(audio, babble_background(babble, audio.size, fx_rng), fx.babble_snr_db)
    # The original augmentation; its draws come first from this stream, as they always have.
    rng = np.random.default_rng([seed, CACHE_VERSION])  # a new cache version also draws new noise
    if voice.reverb:
        audio = reverberate(audio, fx.reverb_rt60 or REVERB_RT60, REVERB_WET if fx.reverb_wet is None else fx.reverb_wet, rng)
    if voice.noise_snr_db is not None:
        audio = add_noise(audio, voice.noise_snr_db, fx.noise_color, rng)
    audio = audio.astype(np.float32)
    if fx.telephone is not None:
        audio = telephone(audio, fx.telephone)
    return (audio * (TARGET_PEAK / max(float(np.max(np.abs(audio))), 1e-9))).astype(np.float32)
