"""speechft.synth signal effects: each is deterministic and does what it says, measured on
synthetic signals (no TTS engine needed)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from speechft.audio import SAMPLE_RATE as SR
from speechft.synth import BabbleTalker, Effects, Voice, cache_key, finish
from speechft.synth.room import colored_noise, mix_at_snr
from speechft.synth.telephone import available_codecs, codec_roundtrip, telephone
from speechft.synth.warp import shift_pitch, stretch_tempo, warp_formants


def vowel(f0: float = 150.0, seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """A steady vowel: harmonics of f0 through three formant resonances (600, 1500, 2700 Hz)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.cos(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in range(1, int(7000 / f0)))
    for f, bw in ((600, 150), (1500, 200), (2700, 250)):
        r, th = np.exp(-np.pi * bw / SR), 2 * np.pi * f / SR
        x = lfilter([1 - r], [1, -2 * r * np.cos(th), r * r], x)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def f0_of(x: np.ndarray) -> float:
    """Fundamental frequency by autocorrelation (parabolic peak), away from the edges."""
    x = x[SR // 4 : SR // 4 + SR // 2] - np.mean(x)
    ac = np.correlate(x, x, "full")[x.size - 1 :]
    lo, hi = SR // 500, SR // 60
    k = lo + int(np.argmax(ac[lo:hi]))
    a, b, c = ac[k - 1 : k + 2]
    return SR / (k + 0.5 * (a - c) / (a - 2 * b + c))


def centroid(x: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    return float(np.sum(np.fft.rfftfreq(x.size, 1 / SR) * power) / np.sum(power))


def band_db(x: np.ndarray, lo: float, hi: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    return 10 * np.log10(np.sum(power[(f >= lo) & (f < hi)]) + 1e-20)


SPOKEN = (vowel(), SR)  # what an engine returns: (samples, rate)
TALKERS = [vowel(210.0, 1.0, seed=1), vowel(120.0, 0.7, seed=2)]
BABBLE = (BabbleTalker("Hello there.", "flite", "rms"), BabbleTalker("Good night.", "flite", "awb"))
EFFECTS = {  # every effect alone, plus the original noise and reverb refined by the newer fields
    "tempo": (Voice("flite", "slt", effects=Effects(tempo=1.2)), ()),
    "pitch": (Voice("flite", "slt", effects=Effects(pitch_semitones=-3.0)), ()),
    "vtlp": (Voice("flite", "slt", effects=Effects(vtlp=1.1)), ()),
    "telephone": (Voice("flite", "slt", effects=Effects(telephone="mulaw")), ()),
    "babble": (Voice("flite", "slt", effects=Effects(babble=BABBLE, babble_snr_db=5.0)), TALKERS),
    "room": (Voice("flite", "slt", reverb=True, effects=Effects(reverb_rt60=0.8, reverb_wet=0.5)), ()),
    "pink noise": (Voice("flite", "slt", noise_snr_db=10.0, effects=Effects(noise_color="pink")), ()),
    "brown noise": (Voice("flite", "slt", noise_snr_db=5.0, effects=Effects(noise_color="brown")), ()),
}
SEEDED = {"babble", "room", "pink noise", "brown noise"}  # the effects with random draws


@pytest.mark.parametrize("name", EFFECTS)
def test_each_effect_is_deterministic_for_a_seed(name):
    voice, talkers = EFFECTS[name]
    a = finish(SPOKEN, voice, 7, talkers)
    assert a.dtype == np.float32 and np.isclose(np.max(np.abs(a)), 0.9)
    assert np.array_equal(a, finish(SPOKEN, voice, 7, talkers))
    assert not np.array_equal(a, finish(SPOKEN, Voice("flite", "slt"), 7))  # the effect did something
    if name in SEEDED:
        assert not np.array_equal(a, finish(SPOKEN, voice, 8, talkers))


def test_no_effect_leaves_cache_keys_as_they_were():
    # Keys computed by the code before effects existed: existing data/ folders stay valid.
    assert cache_key("Start metoprolol now.", Voice("flite", "slt"), 0) == "91f85dfa8d779503f376"
    assert cache_key("Start metoprolol now.", Voice("festival", "kal", 1.12, 27.5, True), 3) == "1affd43e8e103b7fdc9f"
    assert Effects().key() == {}
    keys = {cache_key("Start metoprolol now.", v, 0) for v, _ in EFFECTS.values()}
    assert len(keys) == len(EFFECTS) and "91f85dfa8d779503f376" not in keys
    assert Effects(tempo=1.1).key() == {"tempo": 1.1}


@pytest.mark.parametrize("semitones", [-4.0, 3.0])
def test_pitch_shift_moves_f0_by_the_semitones_and_keeps_formants(semitones):
    x = vowel(150.0)
    y = shift_pitch(x, semitones)
    assert y.size == x.size
    assert f0_of(y) == pytest.approx(150.0 * 2 ** (semitones / 12), rel=0.03)
    assert centroid(y) == pytest.approx(centroid(x), rel=0.1)  # a plain resampling would move it 20 %


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_tempo_changes_duration_by_the_factor_not_the_pitch(factor):
    x = vowel(150.0, seconds=2.0)
    y = stretch_tempo(x, factor)
    assert y.size / x.size == pytest.approx(1 / factor, rel=0.01)
    assert f0_of(y) == pytest.approx(150.0, rel=0.01)


def test_vtlp_moves_formants_in_the_expected_direction_not_the_pitch():
    x = vowel(150.0)
    longer, shorter = warp_formants(x, 0.87), warp_formants(x, 1.15)
    assert centroid(longer) < 0.95 * centroid(x) < centroid(x) < centroid(shorter) / 1.05
    for y in (longer, shorter):
        assert f0_of(y) == pytest.approx(150.0, rel=0.01)


@pytest.mark.parametrize("codec", available_codecs())
def test_telephone_keeps_the_band_and_removes_the_rest(codec):
    x = (0.2 * np.random.default_rng(0).standard_normal(2 * SR)).astype(np.float32)
    y = telephone(x, codec)
    assert y.size == x.size and y.dtype == np.float32

    def drop(lo, hi):  # attenuation relative to the passband's, so level changes do not count
        return (band_db(y, lo, hi) - band_db(y, 500, 3000)) - (band_db(x, lo, hi) - band_db(x, 500, 3000))

    assert drop(4000, 8000) < -30 and drop(3700, 4000) < -30  # nothing of the upper band is left
    assert drop(3400, 4000) < -20 and drop(0, 200) < -20
    assert np.array_equal(y, telephone(x, codec))


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not installed")
@pytest.mark.parametrize("codec,encoder", [("mulaw", "pcm_mulaw"), ("alaw", "pcm_alaw")])
def test_g711_in_numpy_is_bit_exact_with_ffmpeg(codec, encoder):
    pcm = np.arange(-32768, 32768, dtype=np.int16)  # every 16-bit value
    raw = ["-f", "s16le", "-ar", "8000", "-ac", "1"]
    run = dict(capture_output=True, check=True, timeout=60)
    coded = subprocess.run(["ffmpeg", "-loglevel", "error", *raw, "-i", "pipe:0", "-c:a", encoder, "-f", codec, "pipe:1"],
                           input=pcm.tobytes(), **run).stdout
    decoded = subprocess.run(["ffmpeg", "-loglevel", "error", "-f", codec, "-ar", "8000", "-ac", "1", "-i", "pipe:0", *raw,
                              "pipe:1"], input=coded, **run).stdout
    assert np.array_equal(codec_roundtrip(pcm, codec), np.frombuffer(decoded, dtype=np.int16))


def test_noise_colors_have_their_spectral_slopes():
    rng = np.random.default_rng(0)
    for color, low_minus_high in (("white", -9.0), ("pink", 0.0), ("brown", 9.0)):  # per-octave power: 0, -3, -6 dB
        x = colored_noise(8 * SR, color, rng)
        assert np.std(x) == pytest.approx(1.0, rel=0.01)
        # 250-500 Hz against 2000-4000 Hz: three octaves apart, the second band 8x wider.
        assert band_db(x, 250, 500) - band_db(x, 2000, 4000) == pytest.approx(low_minus_high, abs=1.5)
    assert np.array_equal(colored_noise(100, "white", np.random.default_rng(3)), np.random.default_rng(3).standard_normal(100))


def test_mix_at_snr_sets_the_background_level():
    x, bg = vowel(), colored_noise(vowel().size, "white", np.random.default_rng(1))
    added = mix_at_snr(x, bg, 6.0) - x
    assert 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(added**2)) == pytest.approx(6.0, abs=0.01)


def test_bad_effect_values_are_rejected():
    from speechft.errors import SpeechftError

    for bad in (dict(tempo=3.0), dict(vtlp=0.2), dict(telephone="opus"), dict(noise_color="blue"),
                dict(babble=BABBLE)):  # babble without its SNR
        with pytest.raises(SpeechftError, match="Fix:"):
            Effects(**bad)
