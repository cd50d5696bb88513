"""Cleaning, the split by document, term coverage and carrier sentences."""

from __future__ import annotations

import re

import pytest

from speechft.domain.coverage import add_carriers, count_terms, coverage_tsv
from speechft.domain.split import SpokenSentence, cap, clean, split_by_document
from speechft.domain.templates import TEMPLATES, carrier_sentences
from speechft.errors import SpeechftError
from speechft.text import count_term, normalize


def _s(text: str, doc: str = "d0") -> SpokenSentence:
    return SpokenSentence(text, text, "x.txt", 1, doc)


def test_clean_drops_duplicates_short_long_and_held_out_sentences_with_counts():
    sents = [_s("Give five milligrams of apixaban now."), _s("give 5 milligrams of apixaban now"), _s("Too short."),
             _s(" ".join(["word"] * 60) + "."), _s("This one is the real speech sentence."), _s("")]
    kept, dropped = clean(sents, held_out={normalize("This one is the real speech sentence.")})
    assert [s.text for s in kept] == ["Give five milligrams of apixaban now."]
    assert dropped == {"duplicates (after normalisation)": 1, "too short (< 4 words)": 1, "too long (> 50 words)": 1,
                       "also a real-speech test transcript": 1, "no words left after spoken normalisation": 1}


def _corpus(sizes: list[int]) -> list[SpokenSentence]:
    return [_s(f"Document {d} sentence {i} is here.", f"doc{d}") for d, n in enumerate(sizes) for i in range(n)]


def test_splits_take_whole_documents_and_the_largest_trains():
    sents = _corpus([5, 30, 4, 6, 5, 7, 3, 8])
    splits = split_by_document(sents, seed=0)
    docs = {name: {s.document for s in ss} for name, ss in splits.items()}
    assert all(docs.values())
    assert not docs["train"] & docs["test"] and not docs["train"] & docs["dev"] and not docs["dev"] & docs["test"]
    assert "doc1" in docs["train"]
    assert sum(len(ss) for ss in splits.values()) == len(sents)
    assert len(splits["test"]) >= 0.2 * len(sents) and len(splits["dev"]) >= 0.1 * len(sents)
    assert split_by_document(sents, seed=0) == splits  # deterministic
    assert any(split_by_document(sents, seed=k)["test"] != splits["test"] for k in range(1, 6))


def test_with_terms_dev_and_test_take_the_documents_that_use_them():
    # Eight small documents, two of which use the terms; the largest trains whatever happens.
    sents = _corpus([5, 30, 4, 6, 5, 7, 3, 8])
    sents += [_s("Start apixaban before the procedure.", "doc3"), _s("Heparin was stopped last night.", "doc6")]
    terms = ["apixaban", "heparin"]
    plain = split_by_document(sents, seed=0)
    chosen = split_by_document(sents, seed=0, terms=terms)
    held_out = {s.document for name in ("dev", "test") for s in chosen[name]}
    assert {"doc3", "doc6"} <= held_out and not {"doc3", "doc6"} <= {s.document for n in ("dev", "test") for s in plain[n]}
    assert len(chosen["train"]) >= 0.5 * len(sents) and "doc1" in {s.document for s in chosen["train"]}
    assert split_by_document(sents, seed=0, terms=terms) == chosen  # deterministic


def test_three_documents_give_one_to_each_split():
    splits = split_by_document(_corpus([3, 3, 9]), seed=3)
    assert [len({s.document for s in splits[n]}) for n in ("train", "dev", "test")] == [1, 1, 1]
    assert {s.document for s in splits["train"]} == {"doc2"}


def test_fewer_than_three_documents_is_an_error():
    with pytest.raises(SpeechftError, match="2 document"):
        split_by_document(_corpus([4, 4]))


def test_carrier_sentences_fill_train_to_the_minimum_and_name_terms_they_cannot_hold():
    cov = count_terms(["apixaban", "flight level", "heparin", "+++"],
                      {"train": ["Start apixaban today.", "Heparin then heparin again.", "Climb to flight level three."],
                       "dev": ["Apixaban was held."], "test": []})
    assert [(c.term, c.counts["train"], c.counts["dev"]) for c in cov] == [
        ("apixaban", 1, 1), ("flight level", 1, 0), ("heparin", 2, 0), ("+++", 0, 0)]
    sentences, problems = add_carriers(cov, speak=lambda s: s, min_train=3)
    assert [c.templates for c in cov] == [2, 2, 1, 0]
    assert len(sentences) == 5 and all(any(count_term(normalize(s), t) for t in ("apixaban", "flight level", "heparin"))
                                       for s in sentences)
    assert len(problems) == 1 and "'+++'" in problems[0] and "Fix:" in problems[0]
    assert coverage_tsv(cov, ["train", "dev", "test"]).splitlines()[:2] == ["term\ttrain\tdev\ttest\ttemplates",
                                                                            "apixaban\t1\t1\t0\t2"]


def test_templates_are_plain_spoken_text_and_vary():
    for t in TEMPLATES:
        assert t.count("{term}") == 1 and not re.search(r"\d", t)
        assert set(t.replace("{term}", "")) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,?!'-")
    assert len({t.split()[0] for t in TEMPLATES}) >= len(TEMPLATES) // 2  # varied openings
    three = carrier_sentences("apixaban", 3)
    assert len(set(three)) == 3 and carrier_sentences("apixaban", 3) == three
    assert carrier_sentences("heparin", 1) != carrier_sentences("apixaban", 1)


def test_cap_keeps_a_seeded_sample_in_reading_order_and_train_keeps_term_sentences_first():
    splits = {"train": [_s(f"Train sentence {i} says {'apixaban' if i % 10 == 0 else 'nothing'} here.", "t") for i in range(100)],
              "dev": [_s(f"Dev sentence {i} is here.", "d") for i in range(30)],
              "test": [_s(f"Test sentence {i} is here.", "x") for i in range(8)]}
    capped, left_out = cap(splits, {"train": 20, "dev": 12, "test": 0}, seed=3, terms=["apixaban"])
    assert [len(capped[s]) for s in ("train", "dev", "test")] == [20, 12, 8]
    for split in ("train", "dev"):  # a subset, in the documents' order
        positions = [splits[split].index(s) for s in capped[split]]
        assert positions == sorted(positions)
    assert sum("apixaban" in s.text for s in capped["train"]) == 10  # every sentence with the term, then the rest
    assert left_out == {"train sentences left out, over the 20 a run affords (--max-train)": 80,
                        "dev sentences left out, over the 12 a run affords (--max-dev)": 18}
    assert cap(splits, {"train": 20, "dev": 12}, seed=3, terms=["apixaban"])[0] == capped  # deterministic
    assert cap(splits, {"train": 20, "dev": 12}, seed=4, terms=["apixaban"])[0]["dev"] != capped["dev"]
    assert cap(splits, {}, seed=3)[0] == splits
