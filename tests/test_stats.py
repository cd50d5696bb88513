"""Bootstrap confidence intervals: equal to a direct computation, and sensible."""

import numpy as np
import pytest

from speechft.evaluate import score
from speechft.stats import DRAWS, bootstrap_change, bootstrap_ci

REFS = ["give atorvastatin daily", "start apixaban now", "check the troponin level", "hold it", "stop the heparin drip"]
BEFORE = ["give a torvastatin daily", "start apixaban now", "check the troponin", "hold it", "stop heparin"]
AFTER = ["give atorvastatin daily", "start apixaban now", "check the troponin level", "hold it", "stop the heparin"]
TERMS = ["atorvastatin", "apixaban", "troponin", "heparin"]
IDS = [f"u{i}" for i in range(len(REFS))]


def _direct(result, seed=0, draws=DRAWS):
    """The same bootstrap written as a plain loop: draw utterances, pool counts, take percentiles."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, result.n, size=(draws, result.n))
    wers, recalls = [], []
    for row in idx:
        us = [result.utterances[i] for i in row]
        wers.append(sum(u.errors for u in us) / max(sum(u.words for u in us), 1))
        recalls.append(sum(u.term_hits for u in us) / max(sum(u.term_total for u in us), 1))
    return np.percentile(wers, [2.5, 97.5]).tolist(), np.percentile(recalls, [2.5, 97.5]).tolist()


def test_interval_equals_a_direct_computation():
    before = score(REFS, BEFORE, IDS, TERMS)
    ci = bootstrap_ci(before)
    wer, recall = _direct(before)
    assert ci["wer"] == pytest.approx(wer) and ci["term_recall"] == pytest.approx(recall)
    assert ci["wer"][0] <= before.wer <= ci["wer"][1]


def test_paired_change_uses_the_same_draws():
    before, after = score(REFS, BEFORE, IDS, TERMS), score(REFS, AFTER, IDS, TERMS)
    change = bootstrap_change(before, after)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 5, size=(DRAWS, 5))
    e_b = np.array([u.errors for u in before.utterances])
    e_a = np.array([u.errors for u in after.utterances])
    w = np.array([u.words for u in before.utterances])
    direct = np.percentile((e_a[idx].sum(1) - e_b[idx].sum(1)) / w[idx].sum(1), [2.5, 97.5])
    assert change["wer"] == pytest.approx(direct.tolist())
    assert change["wer"][1] <= 0  # every draw improves or ties: after never makes more errors here


def test_identical_systems_have_a_zero_change_and_mismatched_sets_are_refused():
    before = score(REFS, BEFORE, IDS, TERMS)
    assert bootstrap_change(before, before)["wer"] == [0.0, 0.0]
    with pytest.raises(ValueError):
        bootstrap_change(before, score(REFS[:4], BEFORE[:4], IDS[:4], TERMS))
    assert bootstrap_ci(score(REFS, BEFORE, IDS))["term_recall"] is None  # no terms: no recall interval


def test_seeded_and_close_to_kaldialign():
    kaldialign = pytest.importorskip("kaldialign")
    before = score(REFS * 8, BEFORE * 8, [f"u{i}" for i in range(40)], TERMS)
    assert bootstrap_ci(before) == bootstrap_ci(before)
    ref = kaldialign.bootstrap_wer_ci([u.ref_norm.split() for u in before.utterances],
                                      [u.hyp_norm.split() for u in before.utterances], replications=1000, seed=0)
    lo, hi = bootstrap_ci(before)["wer"]
    # kaldialign reports mean +- 1.96 sd; the percentile interval has about the same centre and width.
    assert abs((lo + hi) / 2 - ref["wer"]) < 0.02 and abs((hi - lo) / 2 - ref["ci95"]) < 0.02
