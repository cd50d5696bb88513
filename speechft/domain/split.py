"""Clean the spoken sentences and split them by document into train, dev and test.

Splitting by document, not by sentence, keeps test honest: sentences of one document share
names, numbers and phrasing, so a test sentence whose neighbours were trained on measures
memory more than adaptation. Test and dev documents are drawn at random (seeded) until they
hold about TEST_SHARE and DEV_SHARE of the sentences; the largest document always trains.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from ..errors import SpeechftError
from ..text import normalize
from .documents import MIN_DOCUMENTS

MIN_WORDS = 4  # shorter lines are mostly labels ("Plan.", "Drug, dose.") rather than speech
MAX_WORDS = 50  # about 20 s of TTS speech: well inside Whisper's 30-s window
TEST_SHARE = 0.2
DEV_SHARE = 0.1
SPLITS = ("train", "dev", "test")


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
                      dev_share: float = DEV_SHARE) -> dict[str, list[SpokenSentence]]:
    """Assign whole documents to test, dev and train (deterministic for a seed).

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
    random.Random(seed).shuffle(docs)
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
    return {split: [s for s in sentences if assigned[s.document] == split] for split in SPLITS}
