"""Acronyms `speechft new` asks the voices to spell letter by letter."""

from speechft.domain.acronyms import spelled_acronyms

SENTENCES = [
    "The UR six crown and the UL one veneer, see the CBCT and the OPG.",
    "GREENWAY DENTAL PRACTICE, DECONTAMINATION ROOM FLOW.",  # a heading: ROOM and FLOW are words
    "Ask IT, then NATO; part IV of the NHS form.",
    "It is fine, and it works.",  # "it" in lower case: IT stays a word for the voices
    "The UR crown again.",
]


def test_short_capital_words_are_spelled_most_frequent_first():
    assert spelled_acronyms(SENTENCES) == {"UR": "u r", "UL": "u l", "CBCT": "c b c t", "OPG": "o p g",
                                          "NHS": "n h s"}


def test_terms_with_their_own_entry_are_left_to_it():
    assert "OPG" not in spelled_acronyms(SENTENCES, keep={"opg"})
