"""Align the hypothesis words to the reference words (kaldialign's Levenshtein alignment).

Both sides are normalised word by word with the scoring normaliser, so casing, punctuation
and number writing do not count as disagreement. Every reference token (a whitespace-split
word of the transcript, as written) gets the times of the hypothesis words aligned to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import kaldialign

from ..text import normalize
from .words import Word

EPS = "<eps>"


@dataclass
class Token:
    text: str  # as written in the transcript
    start: float | None = None  # s; None when no hypothesis word is aligned to it
    end: float | None = None
    correct: bool = False  # every normalised word of it was heard as written


@dataclass
class Alignment:
    tokens: list[Token]
    errors: int  # substitutions + deletions + insertions over the whole recording
    ref_words: int  # normalised reference words

    @property
    def wer(self) -> float:
        return self.errors / max(self.ref_words, 1)


def _flat(texts: list[str]) -> tuple[list[str], list[int]]:
    words, owners = [], []
    for i, text in enumerate(texts):
        for w in normalize(text).split():
            words.append(w)
            owners.append(i)
    return words, owners


def align_words(transcript: str, words: list[Word]) -> Alignment:
    """Reference tokens of `transcript` with times taken from the aligned hypothesis `words`."""
    tokens = [Token(t) for t in transcript.split()]
    ref, ref_owner = _flat([t.text for t in tokens])
    hyp, hyp_owner = _flat([w.text for w in words])
    good = [0] * len(tokens)  # normalised words of each token heard as written
    need = [0] * len(tokens)
    for k in ref_owner:
        need[k] += 1
    errors = i = j = 0
    for r, h in kaldialign.align(ref, hyp, EPS):
        if r != EPS and h != EPS:
            tok, word = tokens[ref_owner[i]], words[hyp_owner[j]]
            tok.start = word.start if tok.start is None else min(tok.start, word.start)
            tok.end = word.end if tok.end is None else max(tok.end, word.end)
            good[ref_owner[i]] += r == h
        errors += r != h
        i += r != EPS
        j += h != EPS
    for k, tok in enumerate(tokens):
        tok.correct = need[k] > 0 and good[k] == need[k]
    return Alignment(tokens, errors, len(ref))


def piece_wer(reference: str, words: list[Word], start: float, end: float) -> float:
    """WER of the hypothesis words said in [start, end) s against that stretch's reference text."""
    ref = normalize(reference).split()
    hyp = normalize(" ".join(w.text for w in words if start <= (w.start + w.end) / 2 < end)).split()
    return kaldialign.edit_distance(ref, hyp)["total"] / max(len(ref), 1)
