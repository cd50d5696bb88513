"""The one text normaliser used for training targets' scoring, and domain-term matching.

Scoring uses Whisper's English normaliser on both sides (reference and hypothesis), so
"flight level three five zero" and "FL 350" compare equal and punctuation or casing
never counts as an error. On top of it, letters spelled one by one are one word: "A.M.",
"a m" and "AM", or "C.V.S." and "CVS", are written all these ways by people and by Whisper
(the general set's "A.M." decoded as "AM" counted two errors).
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import SpeechftError
from .io_utils import read_lines

# Spoken-number variants the Whisper normaliser does not know (ICAO radiotelephony).
_SPOKEN_VARIANTS = {r"\bniner\b": "nine"}
# For scoring also "ninth", which it misses because it builds ordinals as cardinal + "th": "the
# ninth" stayed a word while the hypothesis "the 9th" became "9th", one error for the same date.
# (Training targets keep their words: `written_form` uses _SPOKEN_VARIANTS only.)
# And "o'clock", whose "o" it reads as a zero ("ten o'clock" -> "100 clock").
_SCORING_VARIANTS = {**_SPOKEN_VARIANTS, r"\bninth\b": "nineth", r"\bo'\s?clock\b": "oclock"}


@lru_cache(maxsize=1)
def _whisper_normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    mapping = json.loads(resources.files("speechft").joinpath("data/english_spelling.json").read_text("utf-8"))
    return EnglishTextNormalizer(mapping)


def normalize(text: str) -> str:
    """Normalise for scoring: lower case, no punctuation, numbers as digits, US spelling,
    spelled letters as one word."""
    # Compatibility forms first ("℠" -> "SM", "ﬁ" -> "fi"): the Whisper normaliser decomposes
    # them after lower-casing, which would leave capitals behind.
    text = unicodedata.normalize("NFKC", text or "")
    for pattern, repl in _SCORING_VARIANTS.items():
        text = re.sub(pattern, repl, text, flags=re.IGNORECASE)
    # Dotted or spaced letters are joined before punctuation is gone, so "A and E, q.d.s."
    # keeps "E" and "qds" apart.
    text = _SPELLED_WRITTEN.sub(lambda m: re.sub(r"[. ]", "", m.group(0)), text)
    # A comma between words is a pause, and two numbers either side of it stay two numbers:
    # Whisper's normaliser drops the comma first, so "eighty thousand, two point two" became
    # "80002.2" (the hypothesis "80,000 2.2" then scored two errors). Clauses are normalised apart.
    return join_spelled_letters(" ".join(filter(None, map(_normalize_clause, _CLAUSE_COMMA.split(text)))))


_CLAUSE_COMMA = re.compile(r",(?!\d)|(?<!\d),")  # not the thousands comma of "80,000"


def _normalize_clause(text: str) -> str:
    # Whisper's number normaliser is not idempotent ("o1" -> "0 one" -> "one"): apply it until the
    # text stops changing, so a reference and a hypothesis that normalise alike compare alike.
    for _ in range(4):
        out = _normalize_once(text)
        if out == text:
            break
        text = out
    return out


def _normalize_once(text: str) -> str:
    # The Whisper normaliser keeps "." and "," inside numbers; a token of bare punctuation is no word.
    return join_spelled_letters(" ".join(w for w in _whisper_normalizer()(text).split() if any(c.isalnum() for c in w)))


# Single letters joined by a dot or one space: "A.M.", "c v s", "q.d.s." (not "B. A new", and not
# the "s" of "there's a": a letter after a word's apostrophe is no spelled letter).
_SPELLED_WRITTEN = re.compile(r"(?<![^\s(\[\"'])(?<!\w')[A-Za-z](?:[. ][A-Za-z](?![^\s.)\]\"',;:!?]))+\.?(?![^\s)\]\"',;:!?])")
_SPELLED = re.compile(r"(?<!\S)[a-z](?: [a-z])+(?!\S)")


def join_spelled_letters(normalized: str) -> str:
    """Two or more single letters in a row as one word: "c v s disease" -> "cvs disease".

    Applied to reference and hypothesis alike, so only the spacing of spelled letters stops
    counting; "i am" or "a cup" are untouched (one single letter is no run).
    """
    return _SPELLED.sub(lambda m: m.group(0).replace(" ", ""), normalized)


@lru_cache(maxsize=1)
def _number_normalizer():
    from transformers.models.whisper.english_normalizer import EnglishNumberNormalizer

    return EnglishNumberNormalizer()


def written_form(text: str) -> str:
    """Text in Whisper's own writing style: spoken numbers as digits ("runway two seven left"
    -> "runway 27 left"), casing and punctuation kept. Training on this keeps an adapted
    Whisper writing numbers the way it did before, instead of teaching it a new style.
    A sentence the number parser garbles ("one point five" -> "one.5") is kept as written."""
    for pattern, repl in _SPOKEN_VARIANTS.items():
        text = re.sub(pattern, repl, text, flags=re.IGNORECASE)
    spaced = re.sub(r"([,.!?;:])(?=\s|$)", r" \1", text)  # the parser reads whole words only
    out = re.sub(r" ([,.!?;:])", r"\1", _number_normalizer()(spaced))
    return text if re.search(r"[A-Za-z]\.\d", out) else out


def spoken_form(text: str) -> str:
    """Training target for character models: words as written (numbers stay words), lower
    case, letters, digits and apostrophes only. Scoring still uses `normalize` on both sides."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = re.sub(r"[^\w']|_", " ", text)
    return " ".join(w for w in text.split() if w.strip("'"))


def read_terms(path: str | Path) -> list[str]:
    """Read a terms file: one term a line (multi-word allowed); blank lines, `#` comments
    and duplicates (after normalisation) are skipped.

    Raises:
        SpeechftError: the file is missing, not UTF-8, or has no term.
    """
    lines = read_lines(path, "terms file", "one term a line, UTF-8")
    terms, seen = [], set()
    for line in lines:
        term = line.split("#", 1)[0].strip()
        key = normalize(term)
        if not key or key in seen:
            continue
        seen.add(key)
        terms.append(term)
    if not terms:
        raise SpeechftError(f"terms file {path} has no term. Fix: one term a line")
    return terms


def count_term(normalized_text: str, normalized_term: str) -> int:
    """Occurrences of a (normalised, possibly multi-word) term as whole words."""
    if not normalized_term:
        return 0
    return len(re.findall(rf"(?<!\S){re.escape(normalized_term)}(?!\S)", normalized_text))


def term_hits(ref: str, hyp: str, normalized_terms: list[str]) -> tuple[int, int]:
    """(occurrences of terms in the normalised reference, how many of them the hypothesis has).

    An occurrence counts as recalled when the hypothesis holds the term at least as many
    times as the reference does (so two mentions need two in the hypothesis).
    """
    total = hit = 0
    for term in normalized_terms:
        n_ref = count_term(ref, term)
        if n_ref:
            total += n_ref
            hit += min(n_ref, count_term(hyp, term))
    return total, hit
