"""`speechft lexicon check DOMAIN`: find the terms the TTS voices probably mispronounce.

Each term is spoken alone and in a carrier sentence by each voice (through the domain's
lexicon.txt) and transcribed by a pretrained model. A pretrained model misspells new words
even when they are said well ("apexabin" for apixaban), so a clip counts as heard right when
some stretch of the hypothesis is within MAX_CER of the term (characters, spaces ignored);
a term is listed only when every clip of every voice is further off than that. Those terms'
audio would teach the model a wrong sound: fix their lexicon entries before training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpeechftError
from ..lexicon import Lexicon, load_lexicon, tts_text
from ..text import normalize, read_terms
from .templates import TEMPLATES

MAX_CER = 0.5  # character error rate of the closest stretch of the hypothesis; above it, the clip missed the term
CARRIER = TEMPLATES[0]  # "Please note {term} in the record."
EXTRA_SPAN_WORDS = 3  # a term may be heard as up to this many more words ("a picks a band")
BATCH = 16  # clips per transcription call


@dataclass
class Clip:
    """One voice saying one term (alone or in the carrier sentence), and what the model heard."""

    voice: str
    text: str  # what the voice was given (after the lexicon)
    alone: bool  # the term on its own (else in the carrier sentence)
    hypothesis: str = ""
    cer: float = 1.0


@dataclass
class TermCheck:
    """A term's clips; `flagged` when none of them was heard close to the term."""

    term: str
    respelling: str | None
    clips: list[Clip] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.clips) and all(c.cer > MAX_CER for c in self.clips)

    @property
    def best(self) -> Clip | None:
        return min(self.clips, key=lambda c: c.cer, default=None)


def term_distance(term: str, hypothesis: str) -> float:
    """Character error rate of the stretch of `hypothesis` closest to `term`, both normalised
    and without spaces (1.0 when nothing was heard)."""
    import jiwer

    target = normalize(term).replace(" ", "")
    words = normalize(hypothesis).split()
    if not target or not words:
        return 1.0
    longest = len(normalize(term).split()) + EXTRA_SPAN_WORDS
    return min(jiwer.cer(target, "".join(words[i:j]))
               for i in range(len(words)) for j in range(i + 1, min(len(words), i + longest) + 1))


def plan_voices(domain_dir: Path) -> list[str]:
    """Every voice of the domain's voices.yaml (all splits), each once, in order.

    Raises:
        SpeechftError: voices.yaml is missing or lists no voice.
    """
    import yaml

    path = domain_dir / "voices.yaml"
    if not path.is_file():
        raise SpeechftError(f"voice plan not found: {path}. Fix: pass --voices, or create the domain with `speechft new`")
    splits = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("splits") or {}
    voices = [v for sp in splits.values() if isinstance(sp, dict) for v in sp.get("voices") or []]
    if not voices:
        raise SpeechftError(f"{path} lists no voice. Fix: pass --voices, e.g. --voices flite:slt hibari:heart")
    return list(dict.fromkeys(voices))


def check_pronunciations(terms: list[str], lexicon: Lexicon, voices: list[str], adapter) -> list[TermCheck]:
    """Speak and transcribe every term with every voice.

    Args:
        voices: "engine:voice" specs; missing engines are skipped with a warning.
        adapter: a loaded model (`speechft.models.adapters.load_adapter`).
    Returns:
        one TermCheck per term, in order.
    Raises:
        SpeechftError: no voice is usable, or an engine fails.
    """
    from ..models.base import DecodeOptions
    from ..synth import Voice, synthesize, usable_voices

    usable = list(dict.fromkeys(usable_voices(Voice.parse(v) for v in voices)))
    checks, clips, audio = [], [], []
    for term in terms:
        entry = lexicon.entry(term)
        check = TermCheck(term, entry.respelling if entry else None)
        for voice in usable:
            for text in (term, CARRIER.format(term=term)):
                spoken = tts_text(text, lexicon)
                check.clips.append(Clip(voice.tag, spoken, alone=text == term))
                audio.append(synthesize(spoken, voice, seed=0))
        checks.append(check)
        clips += check.clips
    hyps: list[str] = []
    for i in range(0, len(audio), BATCH):
        hyps += adapter.transcribe_audio(audio[i:i + BATCH], DecodeOptions())
    for clip, hyp in zip(clips, hyps):
        clip.hypothesis = hyp.strip()
    for check in checks:
        for clip in check.clips:
            clip.cer = term_distance(check.term, clip.hypothesis)
    return checks


def check_domain(domain: str, sources: str | Path = "data_manifests", voices: list[str] | None = None,
                 model: str = "whisper-tiny.en", adapter=None) -> list[TermCheck]:
    """`speechft lexicon check`: the domain's terms through its lexicon and voices.

    Args:
        voices: override the voices of voices.yaml.
        adapter: an already loaded model (else `model` is loaded).
    Raises:
        SpeechftError: the domain, its terms or voices are missing, or lexicon.txt is malformed.
    """
    domain_dir = Path(sources) / domain
    if not domain_dir.is_dir():
        raise SpeechftError(f"unknown domain {domain!r}: {domain_dir} does not exist. Fix: create it with `speechft new`")
    terms = read_terms(domain_dir / "terms.txt")
    lexicon = load_lexicon(domain_dir)
    if adapter is None:
        from ..models.adapters import load_adapter

        adapter = load_adapter(model)
    return check_pronunciations(terms, lexicon, voices or plan_voices(domain_dir), adapter)


def format_checks(checks: list[TermCheck], domain_dir: str | Path) -> str:
    """The report: one line per flagged term (its closest hypothesis per voice), then a summary."""
    lines = []
    for c in checks:
        if not c.flagged:
            continue
        heard = "; ".join(f"{clip.voice}: {clip.hypothesis!r}" for clip in c.clips if clip.alone)
        said = f"said as {c.respelling!r}" if c.respelling else "no lexicon entry"
        lines.append(f"PROBABLY MISPRONOUNCED {c.term!r} ({said}); heard {heard}")
    flagged = sum(c.flagged for c in checks)
    lines.append(f"{flagged} of {len(checks)} term(s) probably mispronounced by every voice (closest stretch of the "
                 f"hypothesis over {MAX_CER:.0%} character errors)."
                 + (f" Fix: add or correct their respellings in {Path(domain_dir) / 'lexicon.txt'} "
                    "(term<TAB>respelling), then check again" if flagged else ""))
    return "\n".join(lines)
