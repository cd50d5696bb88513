"""`speechft lexicon check`: terms whose synthesised audio the model does not hear as the term."""

from __future__ import annotations

import numpy as np
import pytest

from speechft import synth
from speechft.cli import main
from speechft.domain.pronunciation import check_domain, term_distance


def test_distance_is_taken_on_the_closest_stretch_of_the_hypothesis():
    assert term_distance("apixaban", "Please note a pixaban in the record.") == 0.0
    assert term_distance("apixaban", "Apexabin.") == 0.25
    assert term_distance("flight level", "climb flight level three") == 0.0
    assert term_distance("apixaban", "Banana split.") > 0.5
    assert term_distance("apixaban", "") == 1.0


class _Ears:
    """A fake model that hears the text it was given, except where `heard` says otherwise."""

    def __init__(self, heard: dict[str, str]):
        self.heard = heard

    def transcribe_audio(self, audios, options):
        texts = [a.tobytes().decode("utf-8") for a in audios]
        return [self.heard.get(t, t) for t in texts]


@pytest.fixture
def fake_voices(monkeypatch):
    monkeypatch.setattr(synth, "usable_voices", lambda voices: list(voices))
    monkeypatch.setattr(synth, "synthesize", lambda text, voice, seed=0: np.frombuffer(text.encode("utf-8"), np.uint8))


def _domain(root, lexicon: str):
    d = root / "dm" / "cardio"
    d.mkdir(parents=True)
    (d / "terms.txt").write_text("apixaban\nheparin\n", encoding="utf-8")
    (d / "voices.yaml").write_text("splits:\n  train:\n    voices: [flite:rms]\n  test:\n    voices: [flite:slt, flite:rms]\n")
    (d / "lexicon.txt").write_text(lexicon, encoding="utf-8")
    return d


def test_a_wrong_respelling_is_flagged_for_every_voice_and_a_fixed_one_is_not(tmp_path, fake_voices):
    d = _domain(tmp_path, "apixaban\tbanana split\n")
    ears = _Ears({"uh pix uh ban": "a pixaban", "Please note uh pix uh ban in the record.": "Please note a pix a ban in the record."})
    checks = check_domain("cardio", sources=tmp_path / "dm", adapter=ears)
    assert [(c.term, c.flagged) for c in checks] == [("apixaban", True), ("heparin", False)]
    assert {clip.voice for clip in checks[0].clips} == {"flite:rms", "flite:slt"} and len(checks[0].clips) == 4
    assert checks[0].clips[0].text == "banana split"
    (d / "lexicon.txt").write_text("apixaban\tuh PIX uh ban\n", encoding="utf-8")
    assert not any(c.flagged for c in check_domain("cardio", sources=tmp_path / "dm", adapter=ears))


def test_one_good_voice_is_enough_not_to_flag_a_term(tmp_path, fake_voices):
    _domain(tmp_path, "")

    class OneVoiceWrong(_Ears):  # only rms saying heparin in the carrier sentence (the last clip) is heard right
        def transcribe_audio(self, audios, options):
            return ["something else entirely"] * (len(audios) - 1) + ["heparin"]

    checks = check_domain("cardio", sources=tmp_path / "dm", voices=["flite:slt", "flite:rms"], adapter=OneVoiceWrong({}))
    assert [c.flagged for c in checks] == [True, False]


def test_lexicon_check_of_an_unknown_domain_is_one_clear_error(tmp_path, capsys):
    assert main(["lexicon", "check", "nope", "--sources", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("speechft: error: unknown domain 'nope'") and "Traceback" not in err


@pytest.mark.slow
def test_real_voices_and_model_flag_a_wrong_entry_until_it_is_fixed(tmp_path, tiny_en_dir, capsys):
    """flite slt + rms and Whisper tiny.en: "apixaban" said as "banana split" is heard as banana split
    by both voices (flagged); said as "uh PIX uh ban" slt is heard as "A Pixaban" (not flagged)."""
    d = _domain(tmp_path, "apixaban\tbanana split\n")
    (d / "terms.txt").write_text("apixaban\n", encoding="utf-8")
    args = ["lexicon", "check", "cardio", "--sources", str(tmp_path / "dm"), "--voices", "flite:slt", "flite:rms",
            "--model", str(tiny_en_dir)]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "PROBABLY MISPRONOUNCED 'apixaban'" in out and "1 of 1 term(s)" in out
    (d / "lexicon.txt").write_text("apixaban\tuh PIX uh ban\n", encoding="utf-8")
    assert main(args) == 0
    assert "0 of 1 term(s)" in capsys.readouterr().out
