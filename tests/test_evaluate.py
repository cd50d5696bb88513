import pytest

from speechft.evaluate import score


def test_score_counts_errors_on_normalised_text():
    res = score(["Give five hundred milligrams of metformin.", "Start apixaban now"],
                ["give 500 milligrams of metformin", "start a pixa ban now"], ["a", "b"], ["metformin", "apixaban"])
    assert res.n == 2
    assert res.utterances[0].errors == 0
    # "apixaban" -> "a pixa ban": 1 substitution + 2 insertions over 8 reference words
    assert res.wer == pytest.approx(3 / 8)
    assert res.term_recall == pytest.approx(0.5)
    # Characters: the first pair is identical once normalised; "apixaban" -> "a pixa ban" inserts
    # 2 spaces, over 32 + 18 reference characters.
    assert res.cer == pytest.approx(2 / 50)


def test_no_terms_gives_null_recall_and_summary_fields():
    res = score(["hello there"], ["hello"], ["x"])
    assert res.term_recall is None
    assert set(res.summary()) == {"wer", "cer", "term_recall", "n"}
    assert set(res.to_dict()) == {"wer", "cer", "term_recall", "n", "utterances"}
