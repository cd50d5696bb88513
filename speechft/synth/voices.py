"""Who speaks and what: Voice (engine + voice + rate + augmentation), Sentence, sentence files."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import SpeechftError
from ..io_utils import read_lines
from .effects import Effects
from .engines import ENGINES

log = logging.getLogger(__name__)

MIN_SPEED, MAX_SPEED = 0.5, 2.0  # speaking-rate factors all engines accept (1.0 = the voice's own pace)

# (engine, voice) -> the real speaker. Engines ship recordings of the same people (flite slt and
# festival's slt HTS voice are both CMU ARCTIC SLT), so speaker-disjoint splits compare these.
# A voice not listed is its own speaker.
SPEAKERS = {
    ("hibari", "heart"): "heart",  # Kokoro af_heart, US female, neural
    ("piper", "joe"): "joe",  # US male, neural
    ("flite", "slt"): "slt", ("festival", "cmu_us_slt_arctic_hts"): "slt",  # CMU ARCTIC SLT, US female
    ("flite", "kal"): "kal", ("flite", "kal16"): "kal", ("festival", "kal_diphone"): "kal",  # Kal, US male
    ("flite", "awb"): "awb",  # CMU ARCTIC AWB, Scottish male
    ("flite", "rms"): "rms",  # CMU ARCTIC RMS, US male
    ("festival", "ked_diphone"): "ked",  # Kurt, US male diphones
}


@dataclass(frozen=True)
class Voice:
    """One way of speaking: engine + voice + speaking rate + optional augmentation.

    `speaker` is the person behind the voice (filled from SPEAKERS when left empty); splits
    that must not share speakers compare it, not engine+voice. `noise_snr_db` and `reverb` are
    the original light augmentation; `effects` holds the others (none by default).
    """

    engine: str
    voice: str
    speed: float = 1.0
    noise_snr_db: float | None = None  # dB, white noise at this SNR when set
    reverb: bool = False
    speaker: str = ""
    effects: Effects = field(default_factory=Effects)

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise SpeechftError(f"unknown TTS engine {self.engine!r} (voice {self.voice!r}). Fix: one of {', '.join(ENGINES)}")
        voice = ENGINES[self.engine].canonical_voice(self.voice)
        # Plain Python types: numpy scalars would change the cache key's JSON (or break it).
        fixed = dict(voice=voice, speed=float(self.speed), reverb=bool(self.reverb),
                     noise_snr_db=None if self.noise_snr_db is None else float(self.noise_snr_db),
                     speaker=self.speaker or SPEAKERS.get((self.engine, voice), voice),
                     effects=Effects() if self.effects is None else self.effects)
        for name, value in fixed.items():
            object.__setattr__(self, name, value)
        if not MIN_SPEED <= self.speed <= MAX_SPEED:
            raise SpeechftError(f"voice {self.tag}: speed {self.speed} out of range. Fix: {MIN_SPEED}..{MAX_SPEED}")

    @classmethod
    def parse(cls, spec: str, **kw) -> "Voice":
        """'engine:voice' or 'engine:voice@speed', e.g. 'flite:slt', 'hibari:heart@1.1'."""
        name, _, speed = spec.strip().partition("@")
        engine, sep, voice = name.partition(":")
        if not sep or not engine or not voice:
            raise SpeechftError(f"voice {spec!r} is not engine:voice. Fix: e.g. hibari:heart, flite:slt, festival:kal")
        try:
            return cls(engine, voice, float(speed) if speed else kw.pop("speed", 1.0), **kw)
        except ValueError:
            raise SpeechftError(f"voice {spec!r}: speed {speed!r} is not a number. Fix: e.g. flite:slt@1.1") from None

    @property
    def tag(self) -> str:
        return f"{self.engine}:{self.voice}"


@dataclass(frozen=True)
class Sentence:
    """A sentence with where it came from, so problems can name file and line."""

    text: str
    line: int = 0
    source: str = ""
    id: str = ""  # utterance id stem; default "<source stem>-<line>"
    spoken: str = ""  # what the voice says when it differs from the transcript (a lexicon respelling)

    @property
    def tts_text(self) -> str:
        return self.spoken or self.text

    @property
    def stem(self) -> str:
        return self.id or f"{Path(self.source).stem or 'sentence'}-{self.line:05d}"


def read_sentences(path: str | Path) -> list[Sentence]:
    """Sentences of a text file, one a line; blank lines and `#` comment lines are skipped.

    Raises:
        SpeechftError: the file is missing or not UTF-8.
    """
    lines = read_lines(path, "sentence file", "one sentence a line, UTF-8")
    return [Sentence(t.strip(), i, str(path)) for i, t in enumerate(lines, 1) if t.strip() and not t.lstrip().startswith("#")]


def unspeakable(text: str) -> str | None:
    """Why no engine can say `text`, or None when one can."""
    from ..text import normalize

    if not text.strip():
        return "empty sentence"
    if not any(c.isalnum() for c in text):
        return "no letters or digits (symbols only)"
    if not normalize(text):
        return "nothing left after text normalisation"
    return None


def speakable(sentences: Iterable[Sentence]) -> list[Sentence]:
    """The sentences an engine can say; each other one is logged as a warning naming file and line."""
    keep = []
    for sent in sentences:
        reason = unspeakable(sent.text)
        if reason:
            log.warning("%s:%d skipped: %s (%r). Fix: write it as words, or delete the line",
                        sent.source or "sentence", sent.line, reason, sent.text[:60])
        else:
            keep.append(sent)
    return keep
