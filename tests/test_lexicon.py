"""The pronunciation lexicon: reading lexicon.txt and the text a TTS voice is given."""

from __future__ import annotations

import pytest

from speechft.errors import SpeechftError
from speechft.lexicon import Lexicon, LexiconEntry, lexicon_file_text, load_lexicon, read_lexicon, tts_text


def test_respellings_replace_whole_word_terms_in_any_case(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("# comment\napixaban\tuh PIX uh ban\nflight level\tflite level\nQNH\tcue en aitch\t/kjuː ɛn eɪtʃ/\n",
                    encoding="utf-8")
    lex = read_lexicon(path)
    assert lex.entry("qnh") == LexiconEntry("QNH", "cue en aitch", "/kjuː ɛn eɪtʃ/")
    sentence = "Apixaban, not apixabans; FLIGHT LEVEL three, qnh one."
    assert tts_text(sentence, lex) == "uh pix uh ban, not apixabans; flite level three, cue en aitch one."
    assert sentence == "Apixaban, not apixabans; FLIGHT LEVEL three, qnh one."  # the reference keeps the term
    assert tts_text("No term here.", lex) == "No term here."


def test_an_acronym_spelled_as_its_letters_respells_capitals_only():
    lex = Lexicon((LexiconEntry("UR", "u r"), LexiconEntry("IT", "i t"), LexiconEntry("QNH", "cue en aitch")))
    assert tts_text("UR six: it is IT, ur qnh.", lex) == "u r six: it is i t, ur cue en aitch."
    text = lexicon_file_text(spelled={"UR": "u r"})
    assert text.rstrip().endswith("UR\tu r") and "capitals only" in text


def test_longer_terms_win_over_their_parts():
    lex = Lexicon((LexiconEntry("level", "LEV el"), LexiconEntry("flight level", "flite level")))
    assert tts_text("flight level and level", lex) == "flite level and lev el"


def test_a_malformed_lexicon_lists_every_bad_line(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("apixaban uh PIX uh ban\nheparin\tHEP uh rin\nHeparin\tagain\nwarfarin\tWAR far 2\n", encoding="utf-8")
    with pytest.raises(SpeechftError) as e:
        read_lexicon(path)
    message = str(e.value)
    assert ":1:" in message and ":3:" in message and ":4:" in message and ":2:" not in message and "Fix:" in message


def test_a_domain_without_lexicon_has_an_empty_one(tmp_path):
    assert len(load_lexicon(tmp_path)) == 0
    lex = Lexicon().with_entry("apixaban", "banana").with_entry("Apixaban", "uh PIX uh ban")
    assert lex.entries == (LexiconEntry("Apixaban", "uh PIX uh ban"),)
    (tmp_path / "lexicon.txt").write_text(lexicon_file_text(lex), encoding="utf-8")
    assert load_lexicon(tmp_path) == lex
