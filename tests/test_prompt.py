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


def test_terms_the_pretrained_model_missed_come_after_the_adapted_models_misses():
    refs = ["start apixaban and heparin", "warfarin twice", "digoxin level"]
    adapted = score(refs, ["start apixaban and heparin", "war for in twice", "digoxin level"], ["a", "b", "c"], TERMS)
    pretrained = score(refs, ["start a pixa ban and heparin", "war for in twice", "dig oxen level"], ["a", "b", "c"], TERMS)
    # warfarin (adapted missed), then apixaban, digoxin (only the pretrained missed), then heparin
    assert missed_terms_first(TERMS, adapted, pretrained) == ["warfarin", "apixaban", "digoxin", "heparin"]
    assert missed_terms_first(TERMS, adapted) == ["warfarin", "apixaban", "heparin", "digoxin"]
