import json

import pytest
from hypothesis import given, settings, strategies as st

from speechft.errors import SpeechftError
from speechft.manifest import Utterance, parse_line, read_manifest, write_manifest


def test_relative_paths_resolve_against_the_manifest_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    m = tmp_path / "sub" / "m.jsonl"
    m.write_text(json.dumps({"audio_filepath": "a/b.wav", "text": "hi", "duration": 1.5}) + "\n\n")
    [u] = read_manifest(m)
    assert u.audio_filepath == str(tmp_path / "sub" / "a" / "b.wav")
    assert u.duration == 1.5 and u.id  # an id is made up when the line has none


def test_round_trip_with_relative_paths(tmp_path):
    utts = [Utterance(str(tmp_path / "audio" / "x.wav"), "héllo wörld", 2.0, "x", "spk")]
    write_manifest(tmp_path / "m.jsonl", utts, relative_to=tmp_path)
    assert '"audio/x.wav"' in (tmp_path / "m.jsonl").read_text(encoding="utf-8")
    assert read_manifest(tmp_path / "m.jsonl") == utts


def test_missing_manifest_names_the_fix(tmp_path):
    with pytest.raises(SpeechftError, match="speechft prepare"):
        read_manifest(tmp_path / "nope.jsonl")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_parser_never_raises_anything_but_a_clear_error(raw):
    try:
        d = parse_line(raw, 7, "m.jsonl")
    except SpeechftError as e:
        assert "m.jsonl:7" in str(e)
    else:
        assert isinstance(d, dict) and "audio_filepath" in d and "text" in d
