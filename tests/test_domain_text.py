"""Checks on each domain's training text in data_manifests/<domain>/.

The sentences are spoken by TTS voices and become Whisper training targets, so they must
cover every customer term, read as varied human speech, and keep test apart from train.
Terms are matched the way scoring matches them: normalise sentence and term with
`speechft.text.normalize`, then count whole-word occurrences with `count_term`.

Run one domain with `pytest tests/test_domain_text.py -q -k <domain>`.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from speechft.text import count_term, normalize

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "data_manifests"
# CI has a copy of shared/ beside the repo, so the customer lists live at ../shared.
SHARED_DOMAINS = REPO.parent / "shared" / "domains"

SPLITS = ("train", "dev", "test")
MIN_SENTENCES = {"train": 400, "dev": 60, "test": 100}
MIN_TRAIN_HITS = 3  # per term
MIN_TEST_HITS = 1  # per term
MAX_FRAME_SHARE = 0.05
MAX_OPENING_SHARE = 0.05  # same first three words
CUSTOMER_LIST_DOMAINS = ("medical", "aviation")
MIN_TERMS = {"legal": 50, "finance": 50}
ALLOWED_CHARS = set(string.ascii_letters + " .,?!'-")
PLACEHOLDER = "<term>"


def _domains() -> list[str]:
    if not MANIFESTS.is_dir():
        return []
    return sorted(
        d.name for d in MANIFESTS.iterdir() if d.is_dir() and all((d / f"{s}.txt").is_file() for s in SPLITS)
    )


DOMAINS = _domains()
DOMAIN_SPLITS = [(d, s) for d in DOMAINS for s in SPLITS]


def _ids(param) -> str:
    return "-".join(param) if isinstance(param, tuple) else str(param)


@lru_cache(maxsize=None)
def _lines(domain: str, split: str) -> tuple[str, ...]:
    path = MANIFESTS / domain / f"{split}.txt"
    return tuple(path.read_text(encoding="utf-8").splitlines())


@lru_cache(maxsize=None)
def _sentences(domain: str, split: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in _lines(domain, split) if line.strip())


@lru_cache(maxsize=None)
def _normalized(domain: str, split: str) -> tuple[str, ...]:
    return tuple(normalize(s) for s in _sentences(domain, split))


@lru_cache(maxsize=None)
def _raw_terms(domain: str) -> tuple[str, ...]:
    path = MANIFESTS / domain / "terms.txt"
    if not path.is_file():
        return ()
    return tuple(t.strip() for t in path.read_text(encoding="utf-8").splitlines() if t.strip())


@lru_cache(maxsize=None)
def _terms(domain: str) -> tuple[tuple[str, str], ...]:
    """(term as written, normalised term), longest normalised term first."""
    pairs = [(t, normalize(t)) for t in _raw_terms(domain)]
    return tuple(sorted(((t, n) for t, n in pairs if n), key=lambda p: -len(p[1])))


def _hits(domain: str, split: str, norm_term: str) -> int:
    return sum(count_term(s, norm_term) for s in _normalized(domain, split))


def _frame(domain: str, normalized_sentence: str) -> str:
    frame = normalized_sentence
    for _, norm_term in _terms(domain):
        frame = re.sub(rf"(?<!\S){re.escape(norm_term)}(?!\S)", PLACEHOLDER, frame)
    return frame


def _opening(sentence: str) -> str:
    words = re.sub(r"[^\w\s']", " ", sentence.lower()).split()
    return " ".join(words[:3])


def _top_share(keys: list[str]) -> tuple[str, int, float]:
    if not keys:
        return "", 0, 0.0
    key, n = Counter(keys).most_common(1)[0]
    return key, n, n / len(keys)


pytestmark = pytest.mark.skipif(not DOMAINS, reason="no data_manifests/<domain>/ with train, dev and test .txt")


@pytest.mark.parametrize("domain", DOMAINS)
def test_terms_file_present(domain):
    assert _terms(domain), (
        f"{domain}: data_manifests/{domain}/terms.txt is missing or empty. Fix: write one domain term a line, UTF-8"
    )


@pytest.mark.parametrize(("domain", "split"), DOMAIN_SPLITS, ids=_ids)
def test_split_size(domain, split):
    n = len(_sentences(domain, split))
    need = MIN_SENTENCES[split]
    assert n >= need, f"{domain}/{split}.txt has {n} sentences, needs >= {need}. Fix: write {need - n} more sentences"


@pytest.mark.parametrize(("domain", "split"), DOMAIN_SPLITS, ids=_ids)
def test_lines_are_clean_spoken_text(domain, split):
    allowed = ALLOWED_CHARS | {c for t in _raw_terms(domain) for c in t}
    problems = []
    for i, line in enumerate(_lines(domain, split), 1):
        if not line.strip():
            problems.append(f"line {i}: blank line. Fix: delete it")
        elif any(c.isdigit() for c in line):
            problems.append(f"line {i}: digit in {line!r}. Fix: write numbers as spoken words")
        elif bad := sorted({c for c in line if c not in allowed}):
            problems.append(
                f"line {i}: symbol(s) {''.join(bad)!r} in {line!r}. "
                "Fix: spell it out; use only letters and . , ? ! ' -"
            )
    assert not problems, f"{domain}/{split}.txt:\n" + "\n".join(problems)


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_term_covered_in_train_and_test(domain):
    problems = []
    for term, norm_term in _terms(domain):
        n_train = _hits(domain, "train", norm_term)
        n_test = _hits(domain, "test", norm_term)
        if n_train < MIN_TRAIN_HITS:
            problems.append(
                f"train: {term!r} occurs {n_train} times, needs >= {MIN_TRAIN_HITS}. "
                f"Fix: add {MIN_TRAIN_HITS - n_train} train sentence(s) using it"
            )
        if n_test < MIN_TEST_HITS:
            problems.append(f"test: {term!r} occurs {n_test} times, needs >= {MIN_TEST_HITS}. Fix: add a test sentence")
    assert not problems, f"{domain} term coverage:\n" + "\n".join(problems)


@pytest.mark.parametrize(("domain", "split"), DOMAIN_SPLITS, ids=_ids)
def test_frames_are_varied(domain, split):
    frames = [_frame(domain, s) for s in _normalized(domain, split)]
    frame, n, share = _top_share(frames)
    assert share <= MAX_FRAME_SHARE, (
        f"{domain}/{split}: frame {frame!r} is {n} of {len(frames)} sentences ({share:.1%} > {MAX_FRAME_SHARE:.0%}). "
        "Fix: rewrite those sentences with different structure, not just different terms"
    )


@pytest.mark.parametrize(("domain", "split"), DOMAIN_SPLITS, ids=_ids)
def test_openings_are_varied(domain, split):
    openings = [_opening(s) for s in _sentences(domain, split)]
    opening, n, share = _top_share(openings)
    assert share <= MAX_OPENING_SHARE, (
        f"{domain}/{split}: {n} of {len(openings)} sentences ({share:.1%} > {MAX_OPENING_SHARE:.0%}) "
        f"start with {opening!r}. Fix: start some of them differently"
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_splits_share_no_sentence(domain):
    # Compared after normalisation, so case, punctuation and number spelling do not hide a copy.
    normalized = {split: _normalized(domain, split) for split in SPLITS}
    original = {split: dict(zip(_normalized(domain, split), _sentences(domain, split))) for split in SPLITS}
    problems = []
    for split in SPLITS:
        for s, n in Counter(normalized[split]).items():
            if n > 1:
                problems.append(f"{split}: {original[split][s]!r} appears {n} times. Fix: keep one, write new ones")
    for a, b in (("test", "train"), ("test", "dev"), ("dev", "train")):
        for s in sorted(set(normalized[a]) & set(normalized[b])):
            problems.append(f"{a} and {b} both have {original[a][s]!r}. Fix: write a new {a} sentence")
    assert not problems, f"{domain} duplicate sentences:\n" + "\n".join(problems)


@pytest.mark.parametrize("domain", DOMAINS)
def test_terms_match_customer_list(domain):
    if domain not in CUSTOMER_LIST_DOMAINS:
        pytest.skip(f"{domain} has no customer term list")
    customer = SHARED_DOMAINS / f"{domain}_terms.txt"
    if not customer.is_file():
        pytest.skip(f"{customer} not found")
    want = [t.strip() for t in customer.read_text(encoding="utf-8").splitlines() if t.strip()]
    got = list(_raw_terms(domain))
    missing = [t for t in want if t not in got]
    extra = [t for t in got if t not in want]
    assert got == want, (
        f"{domain}: data_manifests/{domain}/terms.txt differs from {customer} "
        f"(missing {missing}, extra {extra}, order differs: {not missing and not extra}). "
        "Fix: copy the customer's list exactly, same terms, order and spelling"
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_enough_terms(domain):
    need = MIN_TERMS.get(domain)
    if need is None:
        pytest.skip(f"{domain} has no minimum term count")
    n = len(_terms(domain))
    assert n >= need, f"{domain}: terms.txt has {n} terms, needs >= {need}. Fix: add {need - n} domain terms"


PHONE_MENU_WORDS = ("press", "pound", "extension", "mailbox", "voicemail", "conference", "caller", "menu")


def test_everyday_replay_text_is_apart_from_the_regression_sets():
    """data_manifests/everyday/train.txt is replay data (data.replay): it must not hold telephony's
    everyday test sentences, nor the phone-menu wording of the Asterisk `general` set."""
    train = _lines("everyday", "train")
    test = {normalize(s) for s in _lines("everyday", "test")}
    assert len(train) >= 400 and len(set(train)) == len(train)
    assert not [s for s in train if normalize(s) in test]
    assert not [s for s in train if set(s) - ALLOWED_CHARS]  # numbers as words, no symbols
    words = Counter(w for s in train for w in normalize(s).split())
    assert not {w: words[w] for w in PHONE_MENU_WORDS if words[w]}
