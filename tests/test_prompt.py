"""prompt.py: which terms a too-small prompt takes first."""

from speechft.evaluate import score
from speechft.prompt import missed_terms_first

TERMS = ["apixaban", "heparin", "warfarin", "digoxin"]


def test_missed_terms_go_first_each_group_in_list_order():
    refs = ["start apixaban and heparin", "warfarin twice", "digoxin level", "heparin again"]
    hyps = ["start a pixa ban and heparin", "warfarin twice", "dig oxen level", "heparin again"]
    result = score(refs, hyps, ["a", "b", "c", "d"], TERMS)
    assert missed_terms_first(TERMS, result) == ["apixaban", "digoxin", "heparin", "warfarin"]


def test_a_term_missed_in_one_utterance_of_several_counts_as_missed():
    result = score(["heparin now", "heparin heparin"], ["heparin now", "heparin"], ["a", "b"], TERMS)
    assert missed_terms_first(TERMS, result) == ["heparin", "apixaban", "warfarin", "digoxin"]


def test_without_a_result_the_list_stays_as_given():
    assert missed_terms_first(TERMS, None) == TERMS
