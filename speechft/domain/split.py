"""Clean the spoken sentences and split them by document into train, dev and test.

Splitting by document, not by sentence, keeps test honest: sentences of one document share
names, numbers and phrasing, so a test sentence whose neighbours were trained on measures
memory more than adaptation. Test and dev documents are drawn at random (seeded) until they
hold about TEST_SHARE and DEV_SHARE of the sentences; the largest document always trains.

Given the domain's terms, the draw is repeated (DRAWS times, seeded) and the one whose test and
dev documents use the most distinct terms is kept: dev chooses the shipped decoding and test
measures term recall, and a dev document without terms chooses on words the recipe is not for
(a held-out dental domain's random draw gave dev one document with 4 of its 30 terms, while
another held 8). Train keeps its share of sentences, and carrier sentences top up its terms.

A run's time grows with the sentences (speech synthesis, training steps, every decoding of dev
and test), so `cap` keeps at most MAX_SENTENCES of each split, about the medical recipe's sizes
(12 minutes cold on 2 cores): a seeded sample in reading order; train keeps its sentences that
use a term first. The rest is counted, never moved to another split.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from ..errors import SpeechftError
from ..text import normalize
from .coverage import count_terms
from .documents import MIN_DOCUMENTS

MIN_WORDS = 4  # shorter lines are mostly labels ("Plan.", "Drug, dose.") rather than speech
MAX_WORDS = 50  # about 20 s of TTS speech: well inside Whisper's 30-s window
TEST_SHARE = 0.2
DEV_SHARE = 0.1
DRAWS = 64  # random document draws compared when terms are given
MIN_TRAIN_SHARE = 0.5  # of the sentences, in every draw that may be chosen for its terms
SPLITS = ("train", "dev", "test")
MAX_SENTENCES = {"train": 450, "dev": 80, "test": 150}  # medical: 444 / 78 / 155 (carriers come on top of train)


@dataclass(frozen=True)
class SpokenSentence:
    """A sentence in spoken form, with the written original and where it came from."""

    text: str
    written: str
    source: str
    line: int
    document: str


def clean(sentences: list[SpokenSentence], min_words: int = MIN_WORDS, max_words: int = MAX_WORDS,
          held_out: set[str] | None = None) -> tuple[list[SpokenSentence], Counter]:
    """Drop empty, too short, too long and duplicate sentences (compared after `normalize`).

    Args:
        held_out: normalised transcripts of a real-speech test set; sentences equal to one are
            dropped so that set stays unseen.
    Returns:
        (the kept sentences in order, {reason: count}).
    """
    kept, seen, dropped = [], set(), Counter()
    for s in sentences:
        key = normalize(s.text)
        n_words = len(s.text.split())
        if not key:
            dropped["no words left after spoken normalisation"] += 1
        elif n_words < min_words:
            dropped[f"too short (< {min_words} words)"] += 1
        elif n_words > max_words:
            dropped[f"too long (> {max_words} words)"] += 1
        elif key in seen:
            dropped["duplicates (after normalisation)"] += 1
        elif held_out and key in held_out:
            dropped["also a real-speech test transcript"] += 1
        else:
            seen.add(key)
            kept.append(s)
    return kept, dropped


def split_by_document(sentences: list[SpokenSentence], seed: int = 0, test_share: float = TEST_SHARE,
                      dev_share: float = DEV_SHARE, terms: list[str] | None = None) -> dict[str, list[SpokenSentence]]:
    """Assign whole documents to test, dev and train (deterministic for a seed).

    Args:
        terms: the domain's terms; when given, of DRAWS seeded draws that leave train at least
            MIN_TRAIN_SHARE of the sentences, the one whose test and dev documents hold the most
            distinct terms (the first such draw on a tie).
    Returns:
        {"train": [...], "dev": [...], "test": [...]}, sentences in reading order, each split
        from documents no other split has.
    Raises:
        SpeechftError: fewer than MIN_DOCUMENTS documents have sentences left.
    """
    sizes = Counter(s.document for s in sentences)
    docs = list(sizes)  # first-appearance order, then shuffled: the seed alone decides
    if len(docs) < MIN_DOCUMENTS:
        raise SpeechftError(
            f"the text has {len(docs)} document(s) with usable sentences; train, dev and test need {MIN_DOCUMENTS} "
            "(test must come from documents train never saw). Fix: give more files, or separate documents in one "
            "file with '# ' headings or blank lines")
    rng = random.Random(seed)
    draws = []
    for _ in range(DRAWS if terms else 1):
        order = list(docs)
        rng.shuffle(order)
        draws.append(_assign(order, sizes, test_share, dev_share))
    assigned = draws[0]
    if terms:
        used = _terms_by_document(sentences, terms)
        total = sum(sizes.values())

        def held_out_terms(draw: dict[str, str]) -> int:
            return sum(len(set().union(*(used[d] for d, split in draw.items() if split == name))) for name in ("test", "dev"))

        # Only draws that leave train at least MIN_TRAIN_SHARE of the sentences: terms in dev and
        # test are worth little if training loses the documents that use them.
        fair = [d for d in draws if sum(sizes[doc] for doc, split in d.items() if split == "train") >= MIN_TRAIN_SHARE * total]
        if fair:
            assigned = max(fair, key=held_out_terms)  # max keeps the first of equals
    return {split: [s for s in sentences if assigned[s.document] == split] for split in SPLITS}


def cap(splits: dict[str, list[SpokenSentence]], limits: dict[str, int], seed: int = 0,
        terms: list[str] | None = None) -> tuple[dict[str, list[SpokenSentence]], Counter]:
    """At most limits[split] sentences of each split (0: no limit), a seeded sample kept in
    reading order; train keeps its sentences that use one of `terms` before the others.

    Returns:
        (the capped splits, {what was left out: count}).
    """
    rng = random.Random(seed)
    out, left_out = {}, Counter()
    for split in SPLITS:
        sentences, limit = splits[split], limits.get(split, 0)
        if not limit or len(sentences) <= limit:
            out[split] = sentences
            continue
        order = list(range(len(sentences)))
        rng.shuffle(order)
        if split == "train" and terms:
            coverage = count_terms(terms, {str(i): [s.text] for i, s in enumerate(sentences)})
            with_terms = {int(i) for c in coverage for i, n in c.counts.items() if n}
            order.sort(key=lambda i: i not in with_terms)  # stable: the shuffled order within each group
        out[split] = [sentences[i] for i in sorted(order[:limit])]
        left_out[f"{split} sentences left out, over the {limit} a run affords (--max-{split})"] += len(sentences) - limit
    return out, left_out


def _assign(docs: list[str], sizes: Counter, test_share: float, dev_share: float) -> dict[str, str]:
    """Document -> split for one drawn order: test, then dev, take documents in that order until
    they hold their share of the sentences; the largest document and the rest train."""
    largest = max(docs, key=lambda d: (sizes[d], -docs.index(d)))
    rest = [d for d in docs if d != largest]
    total = sum(sizes.values())
    assigned: dict[str, str] = {largest: "train"}
    for split, share in (("test", test_share), ("dev", dev_share)):
        count = 0
        while rest and (count == 0 or count < share * total) and len(rest) > (1 if split == "test" else 0):
            doc = rest.pop(0)
            assigned[doc] = split
            count += sizes[doc]
    assigned.update({d: "train" for d in rest})
    return assigned


def _terms_by_document(sentences: list[SpokenSentence], terms: list[str]) -> dict[str, set[str]]:
    """The terms each document uses (counted as the coverage report counts them)."""
    texts: dict[str, list[str]] = {}
    for s in sentences:
        texts.setdefault(s.document, []).append(s.text)
    coverage = count_terms(terms, texts)
    return {doc: {c.term for c in coverage if c.counts[doc]} for doc in texts}
