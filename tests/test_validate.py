"""Bad input: every kind gets one clear problem naming line, id, field and the fix.

The inputs come from the bad-input corpus tests/data/bad/ (conftest.bad_corpus makes it).
"""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from support import write_manifest, write_tone_wav
from speechft.cli import main
from speechft.config import DataConfig
from speechft.errors import SpeechftError
from speechft.evaluate import score
from speechft.manifest import read_manifest
from speechft.segment import CannotSplit, parse_segments, split_long
from speechft.validate import Limits, validate_manifest


def _row(path, text="check the troponin", uid=None, duration=None):
    d = {"audio_filepath": str(path), "text": text}
    if uid:
        d["id"] = uid
    if duration is not None:
        d["duration"] = duration
    return d


def _only_problem(tmp_path, rows, limits=None, severity=None):
    m = write_manifest(tmp_path / "m.jsonl", rows)
    usable, problems = validate_manifest(m, limits)
    if severity:
        problems = [p for p in problems if p.severity == severity]
    assert len(problems) == 1, [p.message for p in problems]
    return usable, problems[0]


def test_good_manifest_has_no_problem(tmp_path):
    wav = write_tone_wav(tmp_path / "a.wav", 1.0, 300)
    m = write_manifest(tmp_path / "m.jsonl", [{"audio_filepath": "a.wav", "text": "hello", "duration": 1.0, "id": "u1"}])
    usable, problems = validate_manifest(m)
    assert problems == [] and usable[0].audio_filepath == str(wav)


@pytest.mark.parametrize("name", ["empty.wav", "truncated.wav", "truncated.flac", "not_audio.wav", "zero_length.wav"])
def test_undecodable_audio(tmp_path, bad_corpus, name):
    path = bad_corpus / name
    usable, p = _only_problem(tmp_path, [_row(path, uid="u1")])
    assert usable == []
    assert p.line == 1 and p.id == "u1" and p.field == "audio_filepath"
    assert "Fix:" in p.message and str(path.name) in p.message


@pytest.mark.parametrize("name,problem", [("silent.wav", "silent"), ("nan.wav", "NaN"), ("inf.wav", "NaN or Inf")])
def test_silent_and_nonfinite(tmp_path, bad_corpus, name, problem):
    _, p = _only_problem(tmp_path, [_row(bad_corpus / name, uid="u9")])
    assert problem in p.problem and p.id == "u9"


@pytest.mark.parametrize("name,field", [("rate_8000.wav", "sample_rate"), ("rate_44100.wav", "sample_rate"),
                                        ("stereo.wav", "channels"), ("six_channel.wav", "channels")])
def test_converted_formats_are_warnings(tmp_path, bad_corpus, name, field):
    usable, p = _only_problem(tmp_path, [_row(bad_corpus / name, uid="u1")])
    assert p.severity == "warning" and p.field == field and len(usable) == 1


def test_too_long_is_dropped_with_report(tmp_path, bad_corpus):
    usable, p = _only_problem(tmp_path, [_row(bad_corpus / "long.wav", uid="long")], Limits(max_seconds=30.0))
    assert usable == [] and p.severity == "drop" and "30 s" in p.problem
    assert (p.line, p.id, p.field, p.value) == (1, "long", "duration", "31.0")
    assert "segments" in p.fix and "data.long_audio: split" in p.fix


def test_manifest_line_errors(bad_corpus):
    usable, problems = validate_manifest(bad_corpus / "lines.jsonl")
    by_line = {p.line: p for p in problems}
    assert "not valid JSON" in by_line[1].problem
    assert "missing key" in by_line[2].problem and "audio_filepath" in by_line[2].problem
    assert "UTF-8" in by_line[3].problem
    assert "empty after normalisation" in by_line[4].problem and by_line[4].id == "empty"
    assert "empty after normalisation" in by_line[5].problem
    assert "duplicate id" in by_line[7].problem and "line 6" in by_line[7].problem
    assert by_line[8].field == "duration" and "1.00" in by_line[8].fix
    assert "not found" in by_line[9].problem
    assert all("Fix:" in p.message for p in problems)
    assert [u.id for u in usable] == ["dup"]


def test_text_too_long_for_decoder(bad_corpus):
    limits = Limits(max_label_tokens=5, count_tokens=lambda t: len(t.split()))
    _, problems = validate_manifest(bad_corpus / "long_text.jsonl", limits)
    assert len(problems) == 1 and "7 tokens" in problems[0].problem and problems[0].id == "long"


def test_path_escaping_root(bad_corpus):
    root = bad_corpus / "root"
    _, problems = validate_manifest(root / "escape.jsonl", Limits(root=root))
    assert len(problems) == 1 and "escapes the data root" in problems[0].problem
    assert problems[0].id == "esc" and "Fix:" in problems[0].message
    assert (bad_corpus / "tone.wav").exists()


def test_cli_lists_all_problems_and_exits_nonzero(tmp_path, capsys):
    wav = write_tone_wav(tmp_path / "a.wav", 1.0, 300)
    m = write_manifest(tmp_path / "m.jsonl", [_row(wav, text="", uid="a"), _row(tmp_path / "nope.wav", uid="b")])
    assert main(["validate", str(m)]) == 1
    out = capsys.readouterr().out
    assert "id=a" in out and "id=b" in out and "2 error(s)" in out


def test_cli_names_every_bad_line_without_traceback(bad_corpus, capsys):
    assert main(["validate", str(bad_corpus / "lines.jsonl")]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    for line in (1, 2, 3, 4, 5, 7, 8, 9):  # line 6 is the first "dup", a good line
        assert f"lines.jsonl:{line} " in captured.out
    assert "8 error(s)" in captured.out


# ---- data.long_audio: split ----------------------------------------------------------------

def _long_problems(bad_corpus, long_audio):
    usable, problems = validate_manifest(bad_corpus / "long.jsonl", Limits(max_seconds=30.0, long_audio=long_audio))
    return usable, {p.id: p for p in problems}


def test_long_audio_drop_names_the_split_option(bad_corpus):
    usable, by_id = _long_problems(bad_corpus, "drop")
    assert usable == [] and {p.severity for p in by_id.values()} == {"drop"}
    assert "data.long_audio: split" in by_id["bursts"].fix  # it has segments: only the option is missing
    assert "segments" in by_id["long"].fix and "data.long_audio: split" in by_id["long"].fix


def test_long_audio_split_checks_segments(bad_corpus):
    usable, by_id = _long_problems(bad_corpus, "split")
    assert [u.id for u in usable] == ["bursts"]
    assert by_id["bursts"].severity == "split" and "3 pieces" in by_id["bursts"].problem
    long = by_id["long"]  # no segments: still dropped, naming line, id, field, value and the fix
    assert (long.severity, long.line, long.field, long.value) == ("drop", 2, "duration", "31.0")
    assert "needs the line's segments" in long.problem and "segments" in long.fix
    assert by_id["one_segment"].severity == "drop" and by_id["one_segment"].field == "segments"
    assert "longer than the 30 s window" in by_id["one_segment"].problem and "split that segment" in by_id["one_segment"].fix
    assert by_id["mismatch"].severity == "drop" and "texts joined differ" in by_id["mismatch"].problem


@pytest.mark.parametrize("segments,problem", [
    ([], "not a non-empty list"),
    ([{"start": 2.0, "end": 1.0, "text": "a"}], "segment 1 is not {start, end, text}"),
    ([{"start": 0.0, "end": 1.0}], "segment 1 is not {start, end, text}"),
    ([{"start": 0.0, "end": 70.0, "text": "a"}], "after the audio's end"),
    ([{"start": 0.0, "end": 5.0, "text": "a"}, {"start": 4.0, "end": 6.0, "text": "b"}], "segment 2 starts before segment 1 ends"),
])
def test_malformed_segments_are_named(segments, problem):
    with pytest.raises(CannotSplit, match="Fix: ") as e:
        parse_segments(segments, 64.0, "a b")
    assert problem in e.value.problem


def test_split_checks_each_piece_text_as_a_label(bad_corpus):
    limits = Limits(long_audio="split", max_label_tokens=3, count_tokens=lambda t: len(t.split()))
    usable, problems = validate_manifest(bad_corpus / "long.jsonl", limits)
    assert [u.id for u in usable] == ["bursts"]  # 8 words in all, but at most 3 per piece
    limits.max_label_tokens = 2
    usable, problems = validate_manifest(bad_corpus / "long.jsonl", limits)
    errors = [p for p in problems if p.id == "bursts" and p.severity == "error"]
    assert usable == [] and [p.problem.split(" (")[0] for p in errors] == ["piece 1", "piece 2"]  # piece 3 has 2 words
    assert all(p.field == "text" and "3 tokens" in p.problem for p in errors)


def test_split_pieces_fit_cut_in_pauses_and_lose_nothing(bad_corpus, tmp_path):
    usable, _ = validate_manifest(bad_corpus / "long.jsonl", Limits(long_audio="split"))
    src = usable[0]
    pieces, stats = split_long(usable, 30.0, tmp_path / "pieces")
    assert stats == {"utterances": 1, "pieces": 3} and len(pieces) == 3
    audio = [sf.read(p.audio_filepath, dtype="float32")[0] for p in pieces]
    assert all(a.size <= 30 * 16000 for a in audio)
    assert [p.duration for p in pieces] == [round(a.size / 16000, 3) for a in audio]
    source = sf.read(src.audio_filepath, dtype="float32")[0]
    assert np.array_equal(np.concatenate(audio), source)  # the pieces tile the recording exactly
    pauses = [(a["end"], b["start"]) for a, b in zip(src.segments, src.segments[1:])]
    cuts = np.cumsum([a.size for a in audio])[:-1] / 16000
    assert all(any(lo < c < hi for lo, hi in pauses) for c in cuts), cuts
    assert " ".join(p.text for p in pieces) == src.text  # whole segments, in order
    assert [p.text for p in pieces] == ["alpha bravo charlie", "delta echo foxtrot", "golf hotel"]
    assert [p.id for p in pieces] == ["bursts-part1", "bursts-part2", "bursts-part3"]


def test_split_is_deterministic_and_reuses_pieces(bad_corpus, tmp_path):
    usable = [u for u in read_manifest(bad_corpus / "long.jsonl") if u.id == "bursts"]
    first, _ = split_long(usable, 30.0, tmp_path / "pieces")
    stamps = {p.audio_filepath: os.stat(p.audio_filepath).st_mtime_ns for p in first}
    second, _ = split_long(usable, 30.0, tmp_path / "pieces")
    assert second == first
    assert {p.audio_filepath: os.stat(p.audio_filepath).st_mtime_ns for p in second} == stamps  # reused, not rewritten
    assert sorted(os.listdir(tmp_path / "pieces")) == sorted(os.path.basename(p.audio_filepath) for p in first)


def test_short_audio_with_segments_is_left_alone(tmp_path, bad_corpus):
    utt = read_manifest(write_manifest(tmp_path / "m.jsonl", [
        {"audio_filepath": str(bad_corpus / "tone.wav"), "text": "hi", "segments": [{"start": 0, "end": 1, "text": "hi"}]}]))
    assert split_long(utt, 30.0, tmp_path / "pieces") == (utt, {"utterances": 0, "pieces": 0})
    assert not (tmp_path / "pieces").exists()


# ---- data that lies: wrong types, a byte-order mark, clips that cannot match their text -----------

def _data_checks(**kw) -> Limits:
    """Limits with the recipe's plausibility checks (DataConfig defaults), as `speechft validate` uses."""
    return Limits().with_data_checks(DataConfig(train="-", dev="-", test="-", **kw))


def test_lies_are_each_named_with_line_id_and_reason(bad_corpus):
    usable, problems = validate_manifest(bad_corpus / "lies.jsonl", _data_checks())
    by_line = {p.line: p for p in problems}
    assert len(by_line) == len(problems) == 6 and 1 not in by_line  # the byte-order-mark line is fine
    assert [u.id for u in usable] == ["bom"] and usable[0].text == "hi there"
    expect = {
        2: ("error", "null", "text", "None", "text is null, not a string"),
        3: ("error", "number", "text", "123", "text is a number, not a string"),
        4: ("error", "abc", "duration", "'abc'", "duration is a string, not a number"),
        5: ("drop", "blip", "duration", "0.02", "too short to hold speech"),
        6: ("drop", "slow", "speaking_rate", "0.17", "speaking rate implausibly slow"),
        7: ("drop", "fast", "speaking_rate", "60.0", "speaking rate implausibly fast"),
    }
    for line, (severity, uid, field, value, problem) in expect.items():
        p = by_line[line]
        assert (p.severity, p.id, p.field, p.value) == (severity, uid, field, value), p.message
        assert p.problem.startswith(problem) and "Fix: " in p.message
        assert p.message.startswith(f"{severity.upper()} {bad_corpus / 'lies.jsonl'}:{line} id={uid} {field}={value}: ")
    assert "'hi' (2 characters) in 12.00 s" in by_line[6].problem and "data.min_chars_per_second=0.5" in by_line[6].problem


def test_cli_lists_every_lie_without_traceback(bad_corpus, capsys):
    assert main(["validate", str(bad_corpus / "lies.jsonl")]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    for line, uid in ((2, "null"), (3, "number"), (4, "abc"), (5, "blip"), (6, "slow"), (7, "fast")):
        assert f"lies.jsonl:{line} id={uid} " in captured.out
    assert "lies.jsonl:1 " not in captured.out and "BOM" not in captured.out
    assert "3 error(s), 3 dropped, 0 warning(s)" in captured.out


def test_cli_plausibility_thresholds_are_options(bad_corpus, capsys):
    assert main(["validate", str(bad_corpus / "lies.jsonl"), "--min-seconds", "0", "--min-chars-per-second", "0",
                 "--max-chars-per-second", "0"]) == 1
    assert "3 error(s), 0 dropped" in capsys.readouterr().out


def test_plausibility_checks_are_off_without_data_limits(bad_corpus):
    """Limits() describes only what a model can take; the recipe and `speechft validate` add the data checks."""
    _, problems = validate_manifest(bad_corpus / "lies.jsonl")
    assert {p.line for p in problems} == {2, 3, 4}


def test_an_over_long_clip_gets_one_reason_only(bad_corpus):
    _, problems = validate_manifest(bad_corpus / "long.jsonl", _data_checks())  # "a long tone": 0.35 characters/s too
    assert [p.problem for p in problems if p.id == "long"] == ["longer than the model's 30 s window; dropped"]


def test_empty_text_is_allowed_only_for_a_nonspeech_set(bad_corpus, capsys):
    usable, problems = validate_manifest(bad_corpus / "nonspeech.jsonl", _data_checks())
    assert usable == [] and [(p.id, p.problem) for p in problems] == [
        ("noise", "text is empty after normalisation (nothing to learn)"), ("punct", "text is empty after normalisation (nothing to learn)")]
    usable, problems = validate_manifest(bad_corpus / "nonspeech.jsonl", Limits(allow_empty_text=True).with_data_checks(
        DataConfig(train="-", dev="-", test="-")))
    assert [u.id for u in usable] == ["noise"]  # "" = should output nothing; no speaking rate to check
    assert [p.id for p in problems] == ["punct"]  # "?!" is still a transcript that lost its words
    assert main(["validate", "--allow-empty-text", str(bad_corpus / "nonspeech.jsonl")]) == 1
    out = capsys.readouterr().out
    assert "id=punct" in out and "id=noise" not in out and "1 error(s)" in out


def test_recipe_counts_drops_by_reason(bad_corpus, tiny_dataset, tmp_path):
    from speechft.config import load_config
    from speechft.recipe import load_sets

    rows = [json.loads(line) for line in (bad_corpus / "lies.jsonl").read_bytes().decode("utf-8-sig").splitlines()]
    rows = [dict(r, audio_filepath=str(bad_corpus / r["audio_filepath"])) for r in rows if r["id"] in ("bom", "blip", "slow", "fast")]
    rows.append(dict(rows[-1], id="fast2"))
    train = write_manifest(tmp_path / "train.jsonl", rows)
    cfg = load_config(None, [f"data.train={train}", f"data.dev={tiny_dataset['dev']}", f"data.test={tiny_dataset['test']}"])
    sets, skipped, _ = load_sets(cfg, Limits())
    assert [u.id for u in sets["train"]] == ["bom"]
    assert skipped == {"count": 4, "reasons": {"too short to hold speech": 1, "speaking rate implausibly slow": 1,
                                               "speaking rate implausibly fast": 2}}
    off = load_config(None, [f"data.train={train}", f"data.dev={tiny_dataset['dev']}", f"data.test={tiny_dataset['test']}",
                             "data.min_seconds=0", "data.min_chars_per_second=0", "data.max_chars_per_second=0"])
    assert load_sets(off, Limits())[1] == {"count": 0, "reasons": {}}


@pytest.mark.parametrize("override,named", [
    ("data.min_seconds=-1", "data.min_seconds=-1"),
    ("data.min_seconds=40", "data.min_seconds=40"),
    ("data.min_chars_per_second=-1", "data.min_chars_per_second=-1"),
    ("data.min_chars_per_second=50", "data.min_chars_per_second=50"),
])
def test_plausibility_settings_are_checked(override, named):
    from speechft.config import load_config

    with pytest.raises(SpeechftError, match=named):
        load_config(None, ["data.train=a", "data.dev=b", "data.test=c", override])


# ---- suspect transcripts: what a pretrained model hears, listed, never dropped -----------------

def _fake_heard(hyps: dict[str, str]):
    """evaluate() with a model that hears `hyps` (by id)."""
    def heard(utts):
        return score([u.text for u in utts], [hyps[u.id] for u in utts], [u.id for u in utts])
    return heard


def test_suspect_transcripts_are_warnings(tmp_path, bad_corpus):
    tone = bad_corpus / "tone.wav"
    m = write_manifest(tmp_path / "m.jsonl", [_row(tone, "check the troponin", "ok"), _row(tone, "hold the metformin", "wrong"),
                                              _row(tmp_path / "gone.wav", "x", "gone"), {"audio_filepath": str(tone), "text": "", "id": "quiet"}])
    heard = _fake_heard({"ok": "check the troponin", "wrong": "start apixaban now", "quiet": "thank you"})
    usable, problems = validate_manifest(m, Limits(allow_empty_text=True), heard=heard, max_wer=0.5)
    assert [u.id for u in usable] == ["ok", "wrong", "quiet"]  # listed, not dropped
    by_id = {p.id: p for p in problems}
    assert set(by_id) == {"wrong", "gone", "quiet"}  # the missing file is not transcribed
    w = by_id["wrong"]
    assert (w.severity, w.line, w.field, w.value) == ("warning", 2, "text", "'hold the metformin'")
    assert w.problem == "suspect transcript: model heard 'start apixaban now' (WER 1.00 > 0.5)" and "listen to the clip" in w.fix
    assert "model heard 'thank you'" in by_id["quiet"].problem and "non-speech" in by_id["quiet"].problem


def test_max_wer_needs_a_model(bad_corpus, capsys):
    assert main(["validate", str(bad_corpus / "lies.jsonl"), "--max-wer", "0.5"]) == 2
    assert "Fix: add --model" in capsys.readouterr().err


@pytest.mark.slow
def test_real_model_flags_the_mislabelled_clip(tiny_en_dir, tmp_path, capsys):
    from support import flite_manifest

    sentences = ["please hold while I try to locate the person you are calling", "the weather is lovely today"]
    manifest = flite_manifest(tmp_path / "clips", sentences)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[1]["text"] = "hello there general kenobi"  # the label of another clip
    manifest = write_manifest(manifest, rows)
    assert main(["validate", str(manifest), "--model", str(tiny_en_dir), "--max-wer", "0.5"]) == 0  # warnings only
    out = capsys.readouterr().out
    assert "manifest.jsonl:1 " not in out, out
    assert "WARNING" in out and "manifest.jsonl:2 id=s1 text='hello there general kenobi': suspect transcript: model heard '" in out, out
    assert "0 error(s), 0 dropped, 1 warning(s)" in out
