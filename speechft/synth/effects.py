"""Effects: the signal-level variety one utterance gets, beyond the original noise and reverb.

Every field is off by default; an utterance with no effect set has exactly the audio and the
cache key it had before these effects existed (`key()` is empty then).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import SpeechftError
from .room import NOISE_COLORS
from .telephone import CODECS

LIMITS = {  # field -> (low, high): wider values make speech unintelligible or the DSP unreliable
    "tempo": (0.5, 2.0),  # time-stretch factor (>1: faster)
    "pitch_semitones": (-12.0, 12.0),
    "vtlp": (0.7, 1.4),  # formant warp factor (>1: shorter vocal tract)
    "babble_snr_db": (-10.0, 60.0),
    "reverb_rt60": (0.05, 3.0),  # s
    "reverb_wet": (0.0, 1.0),
}


@dataclass(frozen=True)
class BabbleTalker:
    """One background talker: `text` spoken by engine:voice at its own pace."""

    text: str
    engine: str
    voice: str


@dataclass(frozen=True)
class Effects:
    """Signal-level effects, applied in this order: tempo, pitch, vtlp (the speaker), babble,
    reverb and noise (the room; `reverb_*` and `noise_color` refine Voice.reverb and
    Voice.noise_snr_db), telephone (the channel)."""

    tempo: float | None = None  # speak this many times faster, same pitch
    pitch_semitones: float | None = None  # f0 shift, formants kept
    vtlp: float | None = None  # vocal-tract length: formants x this factor, pitch kept
    babble: tuple[BabbleTalker, ...] = ()  # background talkers, mixed at babble_snr_db
    babble_snr_db: float | None = None
    reverb_rt60: float | None = None  # s; replaces the default room when Voice.reverb is set
    reverb_wet: float | None = None  # reverberant share of the mix (0..1)
    noise_color: str = "white"  # of Voice.noise_snr_db's noise: white, pink or brown
    telephone: str | None = None  # codec of a phone line: mulaw, alaw, gsm

    def __post_init__(self):
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if value is not None:
                # Plain floats: numpy scalars would change the cache key's JSON (or break it).
                object.__setattr__(self, name, float(value))
                if not lo <= float(value) <= hi:
                    raise SpeechftError(f"effect {name}={value} out of range. Fix: {lo}..{hi}")
        object.__setattr__(self, "babble", tuple(self.babble))
        if self.babble and self.babble_snr_db is None:
            raise SpeechftError("effect babble needs babble_snr_db. Fix: e.g. babble_snr_db=10")
        if self.noise_color not in NOISE_COLORS:
            raise SpeechftError(f"effect noise_color={self.noise_color!r} unknown. Fix: one of {', '.join(NOISE_COLORS)}")
        if self.telephone is not None and self.telephone not in CODECS:
            raise SpeechftError(f"effect telephone={self.telephone!r} unknown. Fix: one of {', '.join(CODECS)}")

    def key(self) -> dict:
        """The fields that differ from the defaults (what enters the cache key); {} for none."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = [[t.text, t.engine, t.voice] for t in value] if f.name == "babble" else value
        return out
