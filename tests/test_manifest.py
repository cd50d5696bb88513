import errno
import json
import os

import pytest
from hypothesis import given, settings, strategies as st

from speechft.errors import SpeechftError
from speechft.manifest import ManifestLineError, Utterance, parse_line, read_manifest, write_manifest


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


# ---- data that lies: every value of the wrong JSON type is named with its line and id ---------

@pytest.mark.parametrize("key,value,problem", [
    ("text", None, "text is null, not a string"),  # was trained on as "None"
    ("text", 123, "text is a number, not a string"),  # was trained on as "123"
    ("text", ["a", "b"], "text is a list"),
    ("text", {"en": "hi"}, "text is an object"),
    ("text", True, "text is a boolean"),
    ("audio_filepath", 7, "audio_filepath is a number, not a string"),
    ("audio_filepath", None, "audio_filepath is null"),
    ("audio_filepath", " ", "audio_filepath is empty"),
    ("duration", "abc", "duration is a string, not a number"),
    ("duration", "1.5", "duration is a string, not a number"),
    ("duration", True, "duration is a boolean"),
    ("duration", [1.0], "duration is a list"),
    ("duration", -1.0, "not a finite number of seconds"),
    ("duration", float("nan"), "not a finite number of seconds"),
    ("speaker", ["a"], "speaker is a list, not a string or number"),
    ("speaker", {"name": "a"}, "speaker is an object"),
])
def test_wrong_types_are_named_with_line_id_and_value(key, value, problem):
    row = {"audio_filepath": "a.wav", "text": "hello", "duration": 1.0, "id": "u1", key: value}
    with pytest.raises(ManifestLineError, match="Fix: ") as e:
        parse_line(json.dumps(row), 3, "m.jsonl")
    assert problem in e.value.problem and e.value.field == key and e.value.value == repr(value)
    assert str(e.value).startswith(f"m.jsonl:3 id=u1 {key}={value!r}: ")


def test_a_wrong_id_is_named_too():
    with pytest.raises(ManifestLineError, match="id is a list") as e:
        parse_line(json.dumps({"audio_filepath": "a.wav", "text": "hi", "id": ["u1"]}), 2, "m.jsonl")
    assert str(e.value).startswith("m.jsonl:2 id=? id=['u1']: ")


def test_missing_key_names_the_id():
    with pytest.raises(ManifestLineError, match="missing key") as e:
        parse_line(json.dumps({"text": "hi", "id": "u5"}), 4, "m.jsonl")
    assert "m.jsonl:4 id=u5 " in str(e.value) and "audio_filepath" in e.value.problem


def test_read_manifest_refuses_null_text(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"audio_filepath": "a.wav", "text": "fine", "id": "u1"}) + "\n"
                 + json.dumps({"audio_filepath": "a.wav", "text": None, "id": "u2"}) + "\n")
    with pytest.raises(SpeechftError, match=r"m.jsonl:2 id=u2 text=None: text is null"):
        read_manifest(m)


def test_numbers_are_fine_where_text_or_number_is_meant(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"audio_filepath": "a.wav", "text": "", "id": 7, "speaker": 3, "duration": 2}) + "\n")
    [u] = read_manifest(m)
    assert (u.id, u.speaker, u.duration, u.text) == ("7", "3", 2.0, "")  # "" is a string: validate judges it


def test_byte_order_mark_on_the_first_line_is_accepted(tmp_path):
    m = tmp_path / "m.jsonl"
    rows = [{"audio_filepath": "a.wav", "text": "hi", "id": "u1"}, {"audio_filepath": "b.wav", "text": "yo", "id": "u2"}]
    m.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(json.dumps(r) for r in rows).encode() + b"\r\n")  # Excel's CSV-to-JSON export
    assert [u.id for u in read_manifest(m)] == ["u1", "u2"]
    assert parse_line("\ufeff" + json.dumps(rows[0]), 1, "m.jsonl")["id"] == "u1"  # already decoded


def test_byte_order_mark_inside_the_file_says_so():
    with pytest.raises(ManifestLineError, match="byte-order mark inside the file") as e:
        parse_line(b"\xef\xbb\xbf" + json.dumps({"audio_filepath": "a.wav", "text": "hi"}).encode(), 5, "m.jsonl")
    assert "m.jsonl:5 " in str(e.value) and "Fix: remove the byte-order mark" in str(e.value)


# ---- writing: through io_utils.atomic_path -----------------------------------------------------

def test_write_manifest_on_a_full_disk_keeps_the_old_manifest(tmp_path, monkeypatch):
    m = tmp_path / "m.jsonl"
    utts = [Utterance(str(tmp_path / "x.wav"), "hello", 1.0, "x")]
    write_manifest(m, utts)
    old = m.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # atomic_path flushes the new manifest to disk before the rename
    with pytest.raises(SpeechftError, match="the disk is full") as e:
        write_manifest(m, utts + [Utterance(str(tmp_path / "y.wav"), "there", 1.0, "y")])
    assert str(m) in str(e.value) and "Fix: " in str(e.value)
    assert m.read_bytes() == old and os.listdir(tmp_path) == ["m.jsonl"]  # no temporary file left
