"""Bad input: every kind gets one clear problem naming line, id, field and the fix."""

import json

import numpy as np
import pytest
import soundfile as sf

from support import write_manifest, write_tone_wav
from speechft.cli import main
from speechft.validate import Limits, validate_manifest


def _row(path, text="check the troponin", uid=None, duration=None):
    d = {"audio_filepath": str(path), "text": text}
    if uid:
        d["id"] = uid
    if duration is not None:
        d["duration"] = duration
    return d


@pytest.fixture
def bad_dir(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
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


@pytest.mark.parametrize("kind", ["empty_file", "truncated_wav", "truncated_flac", "not_audio", "zero_length"])
def test_undecodable_audio(tmp_path, bad_dir, kind):
    path = bad_dir / f"{kind}.wav"
    if kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "truncated_wav":
        good = write_tone_wav(bad_dir / "full.wav", 1.0, 300)
        path.write_bytes(good.read_bytes()[:30])
    elif kind == "truncated_flac":
        path = bad_dir / "t.flac"
        sf.write(str(bad_dir / "full.flac"), np.zeros(16000, np.float32) + 0.1, 16000)
        path.write_bytes((bad_dir / "full.flac").read_bytes()[:20])
    elif kind == "not_audio":
        path.write_bytes(b"this is not audio at all, just text " * 10)
    elif kind == "zero_length":
        sf.write(str(path), np.zeros(0, np.float32), 16000)
    usable, p = _only_problem(tmp_path, [_row(path, uid="u1")])
    assert usable == []
    assert p.line == 1 and p.id == "u1" and p.field == "audio_filepath"
    assert "Fix:" in p.message and str(path.name) in p.message


@pytest.mark.parametrize("fill,problem", [(0.0, "silent"), (np.nan, "NaN"), (np.inf, "NaN or Inf")])
def test_silent_and_nonfinite(tmp_path, fill, problem):
    path = tmp_path / "x.wav"
    x = np.zeros(16000, np.float32)
    x[100:200] = fill
    sf.write(str(path), x, 16000, subtype="FLOAT")
    _, p = _only_problem(tmp_path, [_row(path, uid="u9")])
    assert problem in p.problem and p.id == "u9"


@pytest.mark.parametrize("sr,channels,field", [(8000, 1, "sample_rate"), (44100, 1, "sample_rate"), (16000, 2, "channels"), (16000, 6, "channels")])
def test_converted_formats_are_warnings(tmp_path, sr, channels, field):
    path = write_tone_wav(tmp_path / "x.wav", 1.0, 300, sr=sr, channels=channels)
    usable, p = _only_problem(tmp_path, [_row(path, uid="u1")])
    assert p.severity == "warning" and p.field == field and len(usable) == 1


def test_too_long_is_dropped_with_report(tmp_path):
    path = write_tone_wav(tmp_path / "long.wav", 31.0, 300)
    usable, p = _only_problem(tmp_path, [_row(path, uid="long")], Limits(max_seconds=30.0))
    assert usable == [] and p.severity == "drop" and "30 s" in p.problem


def test_manifest_line_errors(tmp_path):
    write_tone_wav(tmp_path / "a.wav", 1.0, 300)
    m = tmp_path / "m.jsonl"
    lines = [
        b"{not json",
        json.dumps({"text": "no audio key"}).encode(),
        json.dumps({"audio_filepath": "a.wav", "text": "caf\xe9"}).encode("latin-1").replace(b"\\u00e9", b"\xe9"),
        json.dumps({"audio_filepath": "a.wav", "text": "", "id": "empty"}).encode(),
        json.dumps({"audio_filepath": "a.wav", "text": "?!...", "id": "punct"}).encode(),
        json.dumps({"audio_filepath": "a.wav", "text": "ok", "id": "dup"}).encode(),
        json.dumps({"audio_filepath": "a.wav", "text": "ok", "id": "dup"}).encode(),
        json.dumps({"audio_filepath": "a.wav", "text": "ok", "id": "dur", "duration": 3.0}).encode(),
        json.dumps({"audio_filepath": "missing.wav", "text": "ok", "id": "gone"}).encode(),
    ]
    m.write_bytes(b"\n".join(lines) + b"\n")
    usable, problems = validate_manifest(m)
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


def test_text_too_long_for_decoder(tmp_path):
    wav = write_tone_wav(tmp_path / "a.wav", 1.0, 300)
    limits = Limits(max_label_tokens=5, count_tokens=lambda t: len(t.split()))
    _, p = _only_problem(tmp_path, [_row(wav, text="one two three four five six seven", uid="long")], limits)
    assert "7 tokens" in p.problem


def test_path_escaping_root(tmp_path):
    root = tmp_path / "root"
    outside = write_tone_wav(tmp_path / "outside.wav", 1.0, 300)
    m = write_manifest(root / "m.jsonl", [{"audio_filepath": "../outside.wav", "text": "hi", "id": "esc"}])
    _, problems = validate_manifest(m, Limits(root=root))
    assert len(problems) == 1 and "escapes the data root" in problems[0].problem
    assert outside.exists()


def test_cli_lists_all_problems_and_exits_nonzero(tmp_path, capsys):
    wav = write_tone_wav(tmp_path / "a.wav", 1.0, 300)
    m = write_manifest(tmp_path / "m.jsonl", [_row(wav, text="", uid="a"), _row(tmp_path / "nope.wav", uid="b")])
    assert main(["validate", str(m)]) == 1
    out = capsys.readouterr().out
    assert "id=a" in out and "id=b" in out and "2 error(s)" in out
