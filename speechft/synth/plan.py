"""The voice plan (a domain's voices.yaml): which voices speak each split, and how varied.

Each sentence of a split is spoken once, round-robin over the split's voices (or by
`voices_per_sentence` of them, preferring different speakers). Every kind of
variety is a switch, off by default; a plan that sets none of the newer switches gives the
same voices, speeds, noise levels, audio and cache keys as before they existed.

Random draws are seeded per split. The original options (speed jitter, augment_fraction,
noise_snr_db) draw from one stream; each newer kind has its own stream, so switching one kind
on, or changing its range, never moves another kind's draws.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..config import build_dataclass
from ..errors import SpeechftError
from .effects import LIMITS, BabbleTalker, Effects
from .room import NOISE_COLORS
from .telephone import CODECS, available_codecs
from .voices import Sentence, Voice

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
HELD_OUT_SPLITS = ("test", "general")  # their speakers must not occur in any other split
PLAN_FILE = "voices.yaml"
EXAMPLE = f"data_manifests/medical/{PLAN_FILE}"
MAX_BABBLE_TALKERS = 8
# Stream ids of the newer kinds (fixed numbers: reordering code must not reseed a kind).
STREAMS = {"tempo": 1, "pitch": 2, "vtlp": 3, "telephone": 4, "babble": 5, "room": 6}
# A sentence's further voices (voices_per_sentence > 1) draw from streams of their own, so the
# first voice of every sentence keeps its draws: copy c uses [seed, split, COPY_STREAMS + c, ...].
COPY_STREAMS = 100
# The [low, high] options; those named like an Effects field must stay within its LIMITS.
RANGES = ("noise_snr_db", "reverb_rt60", "reverb_wet", "tempo", "pitch_semitones", "vtlp", "babble_snr_db")
OPTIONAL_RANGES = ("reverb_rt60", "reverb_wet")  # None: the fixed default room


@dataclass
class SplitPlan:
    """How one split is spoken (a section of voices.yaml). Ranges are [low, high], drawn uniformly."""

    voices: list[str]
    sentences: str = ""  # path relative to the domain folder; default "<split>.txt"
    voices_per_sentence: int = 1  # each sentence spoken by this many of the voices (different speakers first)
    speed_jitter: float = 0.0  # each sentence's speed is 1 +- uniform(0, jitter)
    augment_fraction: float = 0.0  # share of sentences that get noise (and reverb when set)
    noise_snr_db: list[float] = field(default_factory=lambda: [20.0, 35.0])  # dB
    reverb: bool = False
    # The newer switches (speechft.synth.effects.Effects), each off by default.
    noise_colors: list[str] = field(default_factory=lambda: ["white"])  # augmented share's noise, one drawn per sentence
    reverb_rt60: list[float] | None = None  # s; default a fixed 0.3 s room
    reverb_wet: list[float] | None = None  # reverberant share; default 0.35
    tempo_fraction: float = 0.0  # share of sentences time-stretched (on top of the speed jitter)
    tempo: list[float] = field(default_factory=lambda: [0.9, 1.1])  # factor, >1 faster
    pitch_fraction: float = 0.0  # share of sentences pitch-shifted (formants kept)
    pitch_semitones: list[float] = field(default_factory=lambda: [-2.0, 2.0])
    vtlp_fraction: float = 0.0  # share with a vocal-tract-length (formant) warp, pitch kept
    vtlp: list[float] = field(default_factory=lambda: [0.9, 1.1])  # formant factor, >1 shorter tract
    telephone_fraction: float = 0.0  # share sent through a phone line (8 kHz, 300-3400 Hz, codec)
    telephone_codecs: list[str] = field(default_factory=lambda: list(CODECS))  # one drawn per sentence
    babble_fraction: float = 0.0  # share with background talkers (other sentences of the split)
    babble_snr_db: list[float] = field(default_factory=lambda: [10.0, 20.0])  # at 5 dB three clear talkers drown Whisper tiny.en
    babble_talkers: int = 3

    def __post_init__(self):
        for name in RANGES:
            if isinstance(getattr(self, name), (int, float)):  # one number: a fixed value
                setattr(self, name, [getattr(self, name)] * 2)
        checks = [
            (isinstance(self.voices, list) and self.voices and all(isinstance(v, str) for v in self.voices),
             "voices", "a non-empty list such as [flite:slt, hibari:heart]"),
            (isinstance(self.speed_jitter, (int, float)) and 0 <= self.speed_jitter <= 0.5, "speed_jitter", "a number in 0..0.5"),
            (isinstance(self.reverb, bool), "reverb", "true or false"),
            (_is_subset(self.noise_colors, NOISE_COLORS), "noise_colors", f"a non-empty list of {', '.join(NOISE_COLORS)}"),
            (_is_subset(self.telephone_codecs, CODECS), "telephone_codecs", f"a non-empty list of {', '.join(CODECS)}"),
            (isinstance(self.voices_per_sentence, int) and not isinstance(self.voices_per_sentence, bool)
             and 1 <= self.voices_per_sentence <= (len(self.voices) if isinstance(self.voices, list) else 1),
             "voices_per_sentence", "a whole number from 1 to the number of voices listed"),
            (isinstance(self.babble_talkers, int) and 1 <= self.babble_talkers <= MAX_BABBLE_TALKERS,
             "babble_talkers", f"a whole number in 1..{MAX_BABBLE_TALKERS}"),
        ]
        checks += [(isinstance(getattr(self, f.name), (int, float)) and 0 <= getattr(self, f.name) <= 1, f.name, "a number in 0..1")
                   for f in fields(self) if f.name.endswith("_fraction")]
        for name in RANGES:
            lo, hi = LIMITS.get(name, (-np.inf, np.inf))
            value = getattr(self, name)
            ok = (value is None and name in OPTIONAL_RANGES) or _is_range(value, lo, hi)
            checks.append((ok, name, "[low, high] with low <= high" + (f", within {lo}..{hi}" if name in LIMITS else "")))
        for ok, name, fix in checks:
            if not ok:
                raise SpeechftError(f"{name}={getattr(self, name)!r} is invalid. Fix: {fix}")


def _is_range(value, lo: float, hi: float) -> bool:
    return (isinstance(value, list) and len(value) == 2 and all(isinstance(x, (int, float)) for x in value)
            and lo <= value[0] <= value[1] <= hi)


def _is_subset(value, allowed) -> bool:
    return isinstance(value, list) and bool(value) and all(v in allowed for v in value)


@dataclass
class Plan:
    """A domain's voices.yaml."""

    splits: dict[str, SplitPlan]
    seed: int = 0
    real_speech: dict[str, float] | None = None  # split -> fraction of the Asterisk prompts


def _reject_unknown(values, cls, where: str) -> None:
    if not isinstance(values, dict):
        raise SpeechftError(f"{where}: expected a mapping, got {type(values).__name__}. Fix: see {EXAMPLE}")
    unknown = set(values) - {f.name for f in fields(cls)}
    if unknown:
        raise SpeechftError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}. Fix: use only "
                            + ", ".join(f.name for f in fields(cls)))


def _split_plan(values, where: str) -> SplitPlan:
    _reject_unknown(values, SplitPlan, where)
    # A range may be one number; build_dataclass would reject it as "not a list".
    values = {k: [v, v] if k in RANGES and isinstance(v, (int, float)) and not isinstance(v, bool) else v
              for k, v in values.items()}
    try:
        return build_dataclass(SplitPlan, values)
    except SpeechftError as e:  # wrong types, out-of-range values
        raise SpeechftError(f"{where}: {e}") from None


def load_plan(path: Path) -> Plan:
    """Read and check a voices.yaml.

    Raises:
        SpeechftError: missing file, unknown keys, wrong types, bad voice specs, or a held-out
        split sharing a speaker with another split.
    """
    import yaml

    if not path.is_file():
        raise SpeechftError(f"voice plan not found: {path}. Fix: write it (see {EXAMPLE})")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    _reject_unknown(raw, Plan, str(path))
    splits = {}
    for name, sp in (raw.get("splits") or {}).items():
        where = f"{path} splits.{name}"
        if not str(name).isidentifier():
            raise SpeechftError(f"{where}: split names are single words. Fix: e.g. train, dev, test, general")
        splits[str(name)] = _split_plan(sp, where)
    real = raw.get("real_speech")
    if real is not None and not (isinstance(real, dict) and set(real) <= set(SPLITS) and not set(real) & set(splits)
                                 and all(isinstance(f, (int, float)) and f > 0 for f in real.values())):
        raise SpeechftError(f"{path} real_speech={real!r} is invalid. Fix: fractions per split not in splits, "
                            "e.g. {train: 0.7, dev: 0.1, test: 0.2}")
    plan = Plan(splits=splits, seed=int(raw.get("seed", 0)), real_speech=real)
    check_speakers(plan, path)
    return plan


def check_speakers(plan: Plan, where: Path | str) -> None:
    """Raise when a held-out split (test, general) shares a speaker with another split."""
    speakers = {name: {Voice.parse(v).speaker: v for v in sp.voices} for name, sp in plan.splits.items()}
    for held in HELD_OUT_SPLITS:
        for other, spk in speakers.items():
            if held not in speakers or other == held:
                continue
            for s in sorted(set(speakers[held]) & set(spk)):
                raise SpeechftError(
                    f"{where}: speaker {s!r} is in split {held} (voice {speakers[held][s]}) and in split {other} "
                    f"(voice {spk[s]}); {held} must measure held-out speakers (flite slt and festival slt are one "
                    f"person, so are flite kal/kal16 and festival kal). Fix: remove that speaker's voices from {other} or {held}"
                )


def _uniform(bounds: list[float], u: float, digits: int) -> float:
    lo, hi = bounds
    return round(lo + (hi - lo) * u, digits)


def _pick(options: list, u: float):
    return options[min(int(u * len(options)), len(options) - 1)]


def assign_voices(sents: list[Sentence], sp: SplitPlan, voices: list[Voice], seed: int, split: str) -> list[list[Voice]]:
    """Each sentence's Voices: round-robin over the split's voices, `sp.voices_per_sentence` of
    them (the next voices in the list whose speakers the sentence has not got yet, then any), with
    variety drawn from seeded streams."""
    base = [seed, zlib.crc32(split.encode())]
    codecs = [c for c in sp.telephone_codecs if c in available_codecs()] if sp.telephone_fraction else []
    if sp.telephone_fraction and codecs != sp.telephone_codecs:
        log.warning("%s: telephone codec(s) %s skipped: not available here. Fix: apt-get install ffmpeg (with libgsm)",
                    split, ", ".join(sorted(set(sp.telephone_codecs) - set(codecs))))
    copies = min(sp.voices_per_sentence, len(voices))
    draws = [_VarietyDraws(sents, sp, voices, codecs, [*base] if c == 0 else [*base, COPY_STREAMS + c]) for c in range(copies)]
    out = []
    for i in range(len(sents)):
        chosen = _voices_of_sentence(i, voices, copies)
        out.append([draw.voice(i, v) for draw, v in zip(draws, chosen)])
    return out


def _voices_of_sentence(i: int, voices: list[Voice], copies: int) -> list[Voice]:
    """Voice i (round-robin), then the following voices of the list, those of a speaker the
    sentence has not got yet first (flite kal16 and festival kal are one person)."""
    order = [voices[(i + k) % len(voices)] for k in range(len(voices))]
    chosen = [order[0]]
    for v in order[1:]:
        if len(chosen) < copies and v.speaker not in {c.speaker for c in chosen}:
            chosen.append(v)
    chosen += [v for v in order[1:] if v not in chosen][: copies - len(chosen)]
    return chosen


class _VarietyDraws:
    """The seeded random draws that make one voice per sentence varied (speed, noise, effects)."""

    def __init__(self, sents: list[Sentence], sp: SplitPlan, voices: list[Voice], codecs: list[str], base: list[int]):
        self.sents, self.sp, self.voices, self.codecs = sents, sp, voices, codecs
        self.rng = np.random.default_rng(base)
        self.streams = {kind: np.random.default_rng([*base, sid]) for kind, sid in STREAMS.items()}

    def voice(self, i: int, v: Voice) -> Voice:
        """Sentence i spoken by `v`, varied as the plan says; call once per sentence, in order."""
        sp, streams = self.sp, self.streams
        u_speed, u_aug, u_snr = self.rng.random(3)  # always three draws, so options do not shift later sentences
        # Every stream draws the same count per sentence whatever is switched on, for the same reason.
        (t_on, t_val), (p_on, p_val), (v_on, v_val) = (streams[k].random(2) for k in ("tempo", "pitch", "vtlp"))
        tel_on, tel_codec = streams["telephone"].random(2)
        b_on, b_snr, *b_picks = streams["babble"].random(2 + 2 * sp.babble_talkers)
        u_rt60, u_wet, u_color = streams["room"].random(3)

        speed = round(1.0 + sp.speed_jitter * (2 * u_speed - 1), 2)
        aug = u_aug < sp.augment_fraction
        reverb = aug and sp.reverb
        babble = ()
        if b_on < sp.babble_fraction:
            babble = tuple(_talker(self.sents, i, self.voices, u_sent, u_voice)
                           for u_sent, u_voice in zip(b_picks[::2], b_picks[1::2]))
        effects = Effects(
            tempo=_uniform(sp.tempo, t_val, 3) if t_on < sp.tempo_fraction else None,
            pitch_semitones=_uniform(sp.pitch_semitones, p_val, 2) if p_on < sp.pitch_fraction else None,
            vtlp=_uniform(sp.vtlp, v_val, 3) if v_on < sp.vtlp_fraction else None,
            babble=babble,
            babble_snr_db=_uniform(sp.babble_snr_db, b_snr, 1) if babble else None,
            reverb_rt60=_uniform(sp.reverb_rt60, u_rt60, 2) if reverb and sp.reverb_rt60 else None,
            reverb_wet=_uniform(sp.reverb_wet, u_wet, 2) if reverb and sp.reverb_wet else None,
            noise_color=_pick(sp.noise_colors, u_color) if aug else "white",
            telephone=_pick(self.codecs, tel_codec) if self.codecs and tel_on < sp.telephone_fraction else None,
        )
        return Voice(v.engine, v.voice, speed, _uniform(sp.noise_snr_db, u_snr, 1) if aug else None, reverb,
                     effects=effects)


def _talker(sents: list[Sentence], i: int, voices: list[Voice], u_sent: float, u_voice: float) -> BabbleTalker:
    # Another sentence of the split (the same one only when the split has a single sentence).
    j = 0
    if len(sents) > 1:
        j = min(int(u_sent * (len(sents) - 1)), len(sents) - 2)
        j += j >= i  # skip sentence i itself
    v = _pick(voices, u_voice)
    return BabbleTalker(sents[j].text, v.engine, v.voice)
