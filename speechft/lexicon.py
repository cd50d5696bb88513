"""Pronunciation lexicon: how the TTS voices should say a domain's terms.

`data_manifests/<domain>/lexicon.txt`, one entry a line, `#` starts a comment line:

    apixaban<TAB>uh PIX uh ban
    QNH<TAB>cue en aitch
    rivaroxaban<TAB>riva ROX a ban<TAB>ɹɪvəˈɹɒksəbæn

The respelling is ordinary English words and syllables that every engine can read; capitals
mark the stressed syllable for the person writing it. An optional third column gives
phonemes (IPA) for engines that accept them. `tts_text` replaces whole-word, case-insensitive
matches of a term by its respelling in the text a voice speaks (an acronym spelled letter by
letter, "UR<TAB>u r", only where it is written in capitals, so that "IT<TAB>i t" never respells
"it"); the reference transcript keeps the term as written, so the model learns to write
"apixaban" from audio that says it right.
`speechft lexicon check DOMAIN` (domain/pronunciation.py) finds the terms to add here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import SpeechftError
from .io_utils import read_lines

LEXICON_FILE = "lexicon.txt"
FORMAT = "term<TAB>respelling[<TAB>phonemes], e.g. 'apixaban<TAB>uh PIX uh ban'"


@dataclass(frozen=True)
class LexiconEntry:
    """One term's pronunciation."""

    term: str
    respelling: str
    phonemes: str | None = None


@dataclass(frozen=True)
class Lexicon:
    """Terms -> respellings, matched as whole words regardless of case."""

    entries: tuple[LexiconEntry, ...] = ()

    def __len__(self) -> int:
        return len(self.entries)

    def entry(self, term: str) -> LexiconEntry | None:
        """The entry of `term` (case-insensitive), None when it has none."""
        return next((e for e in self.entries if e.term.lower() == term.strip().lower()), None)

    def with_entry(self, term: str, respelling: str) -> "Lexicon":
        """A copy where `term` is said as `respelling` (replacing its entry, if any)."""
        kept = tuple(e for e in self.entries if e.term.lower() != term.lower())
        return Lexicon(kept + (LexiconEntry(term, respelling),))


def _spells_capitals(entry: LexiconEntry) -> bool:
    """An all-capital term respelled as its own letters ("UR" -> "u r") matches capitals only."""
    return entry.term.isupper() and entry.term.isalpha() and entry.respelling.lower().split() == list(entry.term.lower())


def _pattern(entries: list[LexiconEntry]) -> re.Pattern:
    def alternative(entry: LexiconEntry) -> str:
        words = r"\s+".join(map(re.escape, entry.term.split()))
        return words if _spells_capitals(entry) else f"(?i:{words})"

    return re.compile(rf"(?<![\w-])(?:{'|'.join(map(alternative, entries))})(?![\w-])")


def tts_text(sentence: str, lexicon: Lexicon) -> str:
    """The text a TTS engine should speak for `sentence`: each lexicon term (whole words, any
    case; the longest term where terms overlap) replaced by its respelling in lower case
    (capitals only mark stress for the writer; some engines spell capitalised words letter by
    letter). One pass, so a respelling is never respelled again.

    Args:
        sentence: the reference text (it is not changed).
    Returns:
        the text to synthesise; `sentence` itself when no term matches.
    """
    if not lexicon.entries:
        return sentence
    exact = {e.term: e.respelling.lower() for e in lexicon.entries if _spells_capitals(e)}
    by_words = {" ".join(e.term.lower().split()): e.respelling.lower() for e in lexicon.entries if not _spells_capitals(e)}
    pattern = _pattern(sorted(lexicon.entries, key=lambda e: len(e.term), reverse=True))

    def respell(m: re.Match) -> str:
        words = " ".join(m.group(0).split())
        return exact[words] if words in exact else by_words[words.lower()]

    return pattern.sub(respell, sentence)


def read_lexicon(path: str | Path) -> Lexicon:
    """Read a lexicon.txt (see the module docstring).

    Raises:
        SpeechftError: the file is missing or not UTF-8, or lines are malformed (all listed).
    """
    entries, problems, seen = [], [], {}
    for n, line in enumerate(read_lines(path, "lexicon", FORMAT), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) not in (2, 3) or not fields[0] or not fields[1]:
            problems.append(f"{path}:{n}: {line!r} is not {FORMAT}")
        elif any(c.isdigit() for c in fields[1]):
            problems.append(f"{path}:{n}: respelling {fields[1]!r} of {fields[0]!r} has digits; write them as words")
        elif fields[0].lower() in seen:
            problems.append(f"{path}:{n}: {fields[0]!r} already has an entry on line {seen[fields[0].lower()]}; keep one")
        else:
            seen[fields[0].lower()] = n
            entries.append(LexiconEntry(fields[0], fields[1], fields[2] if len(fields) == 3 and fields[2] else None))
    if problems:
        raise SpeechftError("\n".join(problems) + f"\nFix: one entry a line: {FORMAT}")
    return Lexicon(tuple(entries))


def load_lexicon(domain_dir: str | Path) -> Lexicon:
    """The lexicon of a domain folder; an empty one when it has no lexicon.txt.

    Raises:
        SpeechftError: lexicon.txt exists but is malformed.
    """
    path = Path(domain_dir) / LEXICON_FILE
    return read_lexicon(path) if path.is_file() else Lexicon()


def lexicon_file_text(lexicon: Lexicon | None = None, spelled: dict[str, str] | None = None) -> str:
    """The text of a lexicon.txt: the format as comments, then the entries, then `spelled`
    (acronym -> letters, written by `speechft new`) under a comment that says where they come from."""
    lines = [
        "# How the TTS voices say this domain's terms (speechft/lexicon.py).",
        f"# One entry a line: {FORMAT}; an optional third TAB column holds IPA phonemes.",
        "# The reference transcript keeps the term; only the synthesised audio uses the respelling.",
        "# `speechft lexicon check DOMAIN` lists the terms whose audio is probably mispronounced.",
    ]
    for e in (lexicon.entries if lexicon else ()):
        lines.append("\t".join([e.term, e.respelling] + ([e.phonemes] if e.phonemes else [])))
    if spelled:
        lines += [
            "# Acronyms spelled letter by letter (written by `speechft new`: words of 2-4 capitals that the",
            "# documents never write in lower case; engines otherwise read some as words, \"UR\" as \"er\").",
            "# Delete a line to let the voices read that one as a word; these entries match capitals only.",
        ]
        lines += [f"{term}\t{letters}" for term, letters in spelled.items()]
    return "\n".join(lines) + "\n"
