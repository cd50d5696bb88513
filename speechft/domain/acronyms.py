"""Acronyms the TTS voices should spell: "UR six" is said "u r six", not "er six".

Engines differ on a word of capitals: flite reads "UL" as a word, hibari reads "UR" as "er",
festival spells some. People reading a clinical note or a ticket say most short acronyms letter
by letter, so `speechft new` writes them into the domain's lexicon.txt as spelled letters (the
reference transcript keeps "UR"; scoring joins spelled letters, so "U R" and "UR" compare alike).
"""

from __future__ import annotations

import re
from collections import Counter

# Acronyms people say as words: left to the voices.
SAID_AS_WORDS = frozenset({
    "NATO", "NASA", "AIDS", "SARS", "MERS", "LASER", "RADAR", "SCUBA", "ASAP", "FIFA", "IKEA", "OPEC", "UNESCO",
    "GIF", "JPEG", "PIN", "SIM", "RAM", "ROM", "LAN", "WAN", "SAT", "CAD", "DOS", "ISA", "EULA", "POTS", "NIMBY",
    "CAPTCHA", "WIFI", "TESOL", "OSHA", "HIPAA", "MEDLINE", "AWOL", "FOMO", "YOLO", "ZIP", "SWAT", "SCADA", "NOTAM",
})
ROMAN_NUMERALS = frozenset({"II", "III", "IV", "VI", "VII", "VIII", "IX", "XI", "XII", "XIV", "XV", "XX"})
_CAPITALS = re.compile(r"(?<![\w'-])[A-Z]{2,4}(?![\w'-])")
_VOWELS = set("AEIOU")


def _in_heading(sentence: str, m: re.Match) -> bool:
    """In a run of capitalised words with one of five letters or more ("DECONTAMINATION ROOM FLOW"):
    a heading, whose short words are words."""
    def run(words: list[str]) -> list[str]:
        out = []
        for w in words:
            if not w.strip(".,;:").isupper():
                break
            out.append(w.strip(".,;:"))
        return out

    neighbours = run(sentence[:m.start()].split()[::-1]) + run(sentence[m.end():].split())
    return any(len(w) >= 5 for w in neighbours)


def spelled_acronyms(sentences: list[str], keep: set[str] = frozenset()) -> dict[str, str]:
    """Acronyms of `sentences` with their spelled letters ({"UR": "u r"}), most frequent first.

    An acronym is a word of 2-4 capitals that the sentences never write in lower case (so "OF"
    stays a word), not only met next to longer capitalised words (a heading), not in `keep`
    (terms with a lexicon entry), not a Roman numeral, not one said as a word (SAID_AS_WORDS)
    and, at four letters, with at most one vowel ("CBCT" is spelled, "NATO" is not).
    """
    lower_words = {w.lower() for s in sentences for w in re.findall(r"[A-Za-z]+", s) if not w.isupper()}
    keep = {k.upper() for k in keep}
    counts = Counter(m.group(0) for s in sentences for m in _CAPITALS.finditer(s) if not _in_heading(s, m))
    spelled = {}
    for word, _ in counts.most_common():
        if (word.lower() in lower_words or word in keep or word in SAID_AS_WORDS or word in ROMAN_NUMERALS
                or (len(word) == 4 and sum(c in _VOWELS for c in word) > 1)):
            continue
        spelled[word] = " ".join(word.lower())
    return spelled
