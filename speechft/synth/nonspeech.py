"""Clips with no speech in them (transcript ""), for teaching a recogniser to stay silent.

Kinds: digital silence, white/pink/brown noise at several levels, mains hum (50/60 Hz and
harmonics), clicks, DTMF tones, babble (several TTS talkers played backwards: speech-like,
no words), room tone (quiet low-passed noise), and mixtures of these.

Deterministic: every clip is drawn from numpy streams seeded by (split seed, kind, index), and
the babble comes from flite, which speaks the same samples every time. A clip's file name
hashes what determines it, so a second run finds every file and makes nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, write_wav
from ..errors import SpeechftError
from ..manifest import Utterance
from .batch import cached_frames, synthesize
from .engines import usable_voices
from .room import colored_noise
from .voices import Voice, read_sentences

NONSPEECH_VERSION = 1  # bump when a generator changes, so existing clips are remade
SPEAKER = "nonspeech"
SENTENCE_FILE = "babble.txt"  # in data_manifests/nonspeech/
SPLIT_SEEDS = {"train": 1001, "test": 2002, "dev": 3003}  # different seeds: the splits share no clip
PREPARED_SPLITS = ("train", "test")  # what `speechft prepare nonspeech` writes; dev is made by benchmarks
# Clips per kind (60 per split); babble is the commonest trigger of invented words.
COUNTS = {"silence": 4, "white": 6, "pink": 6, "brown": 6, "hum": 6, "clicks": 6, "dtmf": 6,
          "babble": 8, "roomtone": 6, "mix": 6}
# Dev has 4x the clips of every kind (240): on 60 dev clips the thresholds worth comparing all
# left words on 0-2 clips and could not be told apart; on 240 the default then left 5.
SPLIT_SCALE = {"train": 1, "test": 1, "dev": 4}
MIN_SECONDS, MAX_SECONDS = 1.0, 30.0  # Whisper's window is 30 s
BABBLE_VOICES = ("flite:kal16", "flite:rms", "flite:awb", "flite:slt")  # four different people
MIXES = (("pink", "hum"), ("roomtone", "clicks"), ("white", "dtmf"), ("babble", "hum"), ("brown", "clicks"),
         ("babble", "roomtone"))
DTMF_ROWS, DTMF_COLS = (697, 770, 852, 941), (1209, 1336, 1477, 1633)  # Hz
MAX_PEAK = 0.99  # headroom below full scale after mixing


def _level(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x**2)))
    return x * (10 ** (dbfs / 20) / rms) if rms > 0 else x


def _noise(n, rng, color):
    return _level(colored_noise(n, color, rng), rng.uniform(-60, -15))


def _hum(n, rng):
    t = np.arange(n) / SAMPLE_RATE
    mains = rng.choice([50.0, 60.0])
    x = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 9))
    return _level(x + 1e-3 * rng.standard_normal(n), rng.uniform(-45, -20))


def _clicks(n, rng):
    x = 10 ** (-70 / 20) * rng.standard_normal(n)  # a faint floor, as real recordings have
    for _ in range(rng.poisson(rng.uniform(0.5, 5.0) * n / SAMPLE_RATE) + 1):
        start, length = int(rng.integers(n)), int(rng.integers(1, int(0.005 * SAMPLE_RATE)))
        burst = rng.standard_normal(length) * np.exp(-np.arange(length) / max(length / 4, 1))
        x[start : start + length] += rng.uniform(0.05, 0.9) * burst[: n - start]
    return x


def _dtmf(n, rng):
    x, pos = np.zeros(n), int(rng.integers(int(0.3 * SAMPLE_RATE)))
    amp = 10 ** (rng.uniform(-20, -6) / 20)
    while pos < n:
        on = int(rng.uniform(0.05, 0.2) * SAMPLE_RATE)
        t = np.arange(min(on, n - pos)) / SAMPLE_RATE
        lo, hi = rng.choice(DTMF_ROWS), rng.choice(DTMF_COLS)
        x[pos : pos + t.size] = amp / 2 * (np.sin(2 * np.pi * lo * t) + np.sin(2 * np.pi * hi * t))
        pos += on + int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
    return x


def _roomtone(n, rng):
    from scipy.signal import butter, sosfilt

    sos = butter(4, rng.uniform(300, 1500), btype="lowpass", fs=SAMPLE_RATE, output="sos")
    return _level(sosfilt(sos, colored_noise(n, rng.choice(["pink", "brown"]), rng)), rng.uniform(-65, -45))


class _Babble:
    """Reversed TTS speech of one split's sentences, each (sentence, voice) rendered once.

    The voices are checked on first use, so a rerun that makes no babble needs no engine.
    """

    def __init__(self, sentences: list[str]):
        self.sentences, self.voices, self.cache = sentences, None, {}

    def _backwards(self, text: str, voice: Voice) -> np.ndarray:
        if (text, voice) not in self.cache:
            self.cache[text, voice] = synthesize(text, voice)[::-1].astype(np.float64)
        return self.cache[text, voice]

    def __call__(self, n: int, rng: np.random.Generator) -> np.ndarray:
        self.voices = self.voices or usable_voices(Voice.parse(v) for v in BABBLE_VOICES)
        x = np.zeros(n)
        for _ in range(int(rng.integers(3, 7))):  # talkers
            voice = self.voices[int(rng.integers(len(self.voices)))]
            talk = np.concatenate([self._backwards(self.sentences[int(i)], voice)
                                   for i in rng.permutation(len(self.sentences))])
            start = int(rng.integers(talk.size))
            x += rng.uniform(0.3, 1.0) * np.tile(talk, n // talk.size + 2)[start : start + n]
        return _level(x, rng.uniform(-35, -15))


def _clip(kind: str, n: int, rng: np.random.Generator, babble: _Babble) -> np.ndarray:
    if kind == "silence":
        return np.zeros(n)
    if kind in ("white", "pink", "brown"):
        return _noise(n, rng, kind)
    if kind == "mix":
        parts = MIXES[int(rng.integers(len(MIXES)))]
        return sum(_clip(part, n, rng, babble) for part in parts)
    return {"hum": _hum, "clicks": _clicks, "dtmf": _dtmf, "roomtone": _roomtone, "babble": babble}[kind](n, rng)


def _duration(rng: np.random.Generator) -> float:
    # Mostly short clips (mean about 8 s), a few up to the 30 s window.
    return round(MIN_SECONDS + (MAX_SECONDS - MIN_SECONDS) * rng.random() ** 3, 2)


def _make_or_reuse(audio_dir: Path, split: str, kind: str, index: int, babble: _Babble) -> Utterance:
    rng = np.random.default_rng([SPLIT_SEEDS[split], list(COUNTS).index(kind), index])
    seconds = _duration(rng)
    spec = [NONSPEECH_VERSION, SPLIT_SEEDS[split], kind, index, seconds]
    if kind in ("babble", "mix"):  # the only kinds that use the sentences and voices
        spec += [babble.sentences, list(BABBLE_VOICES)]
    clip_id = f"{SPEAKER}-{split}-{kind}-{index:04d}"
    path = audio_dir / f"{clip_id}-{hashlib.sha1(json.dumps(spec).encode()).hexdigest()[:12]}.wav"
    frames = cached_frames(path)
    if frames is None:
        audio = _clip(kind, int(seconds * SAMPLE_RATE), rng, babble)
        peak = float(np.max(np.abs(audio)))
        audio = audio * (MAX_PEAK / peak) if peak > MAX_PEAK else audio
        write_wav(path, audio.astype(np.float32))
        frames = audio.size
    return Utterance(str(path.resolve()), "", frames / SAMPLE_RATE, clip_id, SPEAKER)


def nonspeech_clips(src: Path, audio_dir: Path, splits: tuple[str, ...] = PREPARED_SPLITS) -> dict[str, list[Utterance]]:
    """Make (or reuse) every clip of the given splits under `audio_dir`.

    Args:
        src: the folder with babble.txt (data_manifests/nonspeech).
        splits: names from SPLIT_SEEDS; "dev" (not prepared by default, 4x the clips) is for
            choosing settings such as the silence threshold without looking at test
            (benchmarks/silence_threshold.py).
    Returns:
        split -> utterances (text "", speaker "nonspeech", id "nonspeech-<split>-<kind>-<nnnn>").
    Raises:
        SpeechftError: babble.txt is missing or flite is not installed (babble needs it).
    """
    sentences = [s.text for s in read_sentences(src / SENTENCE_FILE)]
    if len(sentences) < 2:
        raise SpeechftError(f"{src / SENTENCE_FILE} needs at least two sentences. Fix: one everyday sentence a line")
    # Test babbles the odd-numbered sentences (1st, 3rd, ...), train the even-numbered ones; dev
    # babbles train's sentences (other talkers and cuts: its own seed), never test's.
    pools = {"train": sentences[1::2], "test": sentences[0::2], "dev": sentences[1::2]}
    out = {}
    for split in splits:
        babble = _Babble(pools[split])  # one per split: its renders serve every clip of the split
        out[split] = [_make_or_reuse(audio_dir, split, kind, i, babble) for kind, count in COUNTS.items()
                      for i in range(count * SPLIT_SCALE[split])]
    return out
