"""Term coverage per split, and carrier sentences for the terms train rarely hears.

Terms are matched the way scoring matches them: `speechft.text.normalize` on sentence and
term, then whole-word occurrences (`count_term`), so "FL 350" and "flight level three five
zero" count alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..text import count_term, normalize
from .templates import carrier_sentences

# Train occurrences per term that carrier sentences make up. 6 is the median term density of the
# hand-written medical, legal and finance recipes (aviation: 12). With 3, two user-made domains'
# terms stayed below 0.85 recall (dental 0.75, veterinary 0.78), misses being near-spellings of the
# rarest terms ("Arcticane" for articaine).
MIN_TRAIN_OCCURRENCES = 6
TEMPLATED = "templates"


@dataclass
class TermCoverage:
    """One term's occurrences per split (and in carrier sentences)."""

    term: str
    counts: dict[str, int] = field(default_factory=dict)
    templates: int = 0


def count_terms(terms: list[str], texts: dict[str, list[str]]) -> list[TermCoverage]:
    """Occurrences of every term in every split's sentences.

    Args:
        texts: split name -> sentences (spoken form).
    """
    normalized = {split: [normalize(t) for t in ts] for split, ts in texts.items()}
    out = []
    for term in terms:
        key = normalize(term)
        out.append(TermCoverage(term, {split: sum(count_term(t, key) for t in ts) for split, ts in normalized.items()}))
    return out


def add_carriers(coverage: list[TermCoverage], speak: Callable[[str], str], min_train: int = MIN_TRAIN_OCCURRENCES,
                 seed: int = 0) -> tuple[list[str], list[str]]:
    """Carrier sentences for every term with fewer than `min_train` train occurrences.

    Args:
        speak: written -> spoken text (the same normalisation the documents went through).
    Returns:
        (the carrier sentences in spoken form, problems: terms no carrier sentence can hold,
        each a message naming the term and the fix). `coverage` is updated in place.
    """
    sentences, problems = [], []
    for cov in coverage:
        missing = min_train - cov.counts.get("train", 0)
        if missing <= 0:
            continue
        key = normalize(cov.term)
        spoken = [speak(s) for s in carrier_sentences(cov.term, missing, seed)]
        if not key or not all(count_term(normalize(s), key) for s in spoken):
            problems.append(f"term {cov.term!r} occurs {cov.counts.get('train', 0)} time(s) in train and cannot be put "
                            "into a carrier sentence (it is no word once spoken). Fix: write it as words in terms.txt, "
                            "or delete it")
            continue
        sentences += spoken
        cov.templates = len(spoken)
    return sentences, problems


def coverage_tsv(coverage: list[TermCoverage], splits: list[str]) -> str:
    """coverage.tsv: term, occurrences per split, carrier sentences added."""
    rows = ["\t".join(["term", *splits, TEMPLATED])]
    rows += ["\t".join([c.term, *(str(c.counts.get(s, 0)) for s in splits), str(c.templates)]) for c in coverage]
    return "\n".join(rows) + "\n"


def coverage_report(coverage: list[TermCoverage], splits: list[str], min_train: int = MIN_TRAIN_OCCURRENCES) -> str:
    """The coverage table as aligned text, then what it means (templated terms, terms test lacks)."""
    header = ["term", *splits, TEMPLATED]
    rows = [[c.term, *(str(c.counts.get(s, 0)) for s in splits), str(c.templates)] for c in coverage]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    templated = [c.term for c in coverage if c.templates]
    untested = [c.term for c in coverage if not c.counts.get("test", 0)]
    if templated:
        lines.append(f"{len(templated)} term(s) used fewer than {min_train} times in train got carrier sentences "
                     f"(train only): {', '.join(templated[:10])}{' ...' if len(templated) > 10 else ''}")
    if untested:
        lines.append(f"{len(untested)} term(s) never occur in test, so their recall is not measured: "
                     f"{', '.join(untested[:10])}{' ...' if len(untested) > 10 else ''}. Fix: add documents that use them")
    return "\n".join(lines)
