"""Confidence intervals for the report: a seeded percentile bootstrap over utterances.

A test set of 150 utterances gives a WER whose sampling error is often a point or more, so
every WER, term recall and before -> after change in the report carries a 95% interval.
Each draw resamples utterances with replacement (Bisani & Ney 2004, the method behind
kaldialign's `bootstrap_wer_ci` and Kaldi's compute-wer-bootci) and recomputes the corpus
statistic from the resampled utterances' error and word counts; a change is resampled
*paired* (the same utterances for both conditions), which is what makes it tighter than the
two intervals side by side. Percentile intervals, not mean +- 1.96 sd: WER is bounded below
by 0 and its distribution is skewed on good systems.
"""

from __future__ import annotations

import dataclasses

import numpy as np

DRAWS = 1000
SEED = 0
LEVEL = 0.95


def _draws(n: int, draws: int, seed: int) -> np.ndarray:
    """[draws, n] utterance indices, the same for every statistic of one set (seeded)."""
    return np.random.default_rng(seed).integers(0, n, size=(draws, n))


def _interval(values: np.ndarray) -> list[float]:
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return [float(lo), float(hi)]


def _ratio(num: np.ndarray, den: np.ndarray, idx: np.ndarray) -> np.ndarray:
    total = den[idx].sum(axis=1)
    return num[idx].sum(axis=1) / np.maximum(total, 1)


def _utterances(result) -> list[dict]:
    """Per-utterance rows of an EvalResult or of its JSON form (eval/<set>-<condition>.json)."""
    rows = result["utterances"] if isinstance(result, dict) else result.utterances
    return [r if isinstance(r, dict) else dataclasses.asdict(r) for r in rows]


def counts(result) -> dict[str, np.ndarray]:
    """Per-utterance errors, words, term occurrences and term hits as arrays."""
    rows = _utterances(result)
    return {k: np.array([r[k] for r in rows], dtype=np.float64) for k in ("errors", "words", "term_total", "term_hits")}


def bootstrap_ci(result, draws: int = DRAWS, seed: int = SEED) -> dict[str, list[float] | None]:
    """95% intervals of corpus WER and term recall of one EvalResult.

    Returns:
        {"wer": [lo, hi], "term_recall": [lo, hi] or None when the set has no term}
    """
    c = counts(result)
    n = len(c["words"])
    if n == 0:
        return {"wer": None, "term_recall": None}
    idx = _draws(n, draws, seed)
    out = {"wer": _interval(_ratio(c["errors"], c["words"], idx)), "term_recall": None}
    if c["term_total"].sum() > 0:
        out["term_recall"] = _interval(_ratio(c["term_hits"], c["term_total"], idx))
    return out


def bootstrap_change(before, after, draws: int = DRAWS, seed: int = SEED) -> dict[str, list[float] | None]:
    """95% intervals of `after - before` (WER and term recall), resampling utterances paired.

    Both results must score the same utterances in the same order (same ids).

    Raises:
        ValueError: the two results are not of the same utterances.
    """
    ids = [[r["id"] for r in _utterances(result)] for result in (before, after)]
    if ids[0] != ids[1]:
        raise ValueError("bootstrap_change needs the same utterances, in the same order, in both results")
    b, a = counts(before), counts(after)
    n = len(b["words"])
    if n == 0:
        return {"wer": None, "term_recall": None}
    idx = _draws(n, draws, seed)
    out = {"wer": _interval(_ratio(a["errors"], a["words"], idx) - _ratio(b["errors"], b["words"], idx)), "term_recall": None}
    if b["term_total"].sum() > 0:
        out["term_recall"] = _interval(_ratio(a["term_hits"], a["term_total"], idx) - _ratio(b["term_hits"], b["term_total"], idx))
    return out
