"""Packing short training utterances into longer clips (speechft/pack.py)."""

import soundfile as sf

from support import write_tone_wav
from speechft.manifest import Utterance
from speechft.pack import PAUSE_SECONDS, pack_utterances, plan_packs


def _utts(tmp_path, seconds):
    out = []
    for i, s in enumerate(seconds):
        path = write_tone_wav(tmp_path / "src" / f"{i}.wav", s, 200 + 30 * i, seed=i)
        out.append(Utterance(str(path), f"sentence number {i}.", s, f"u{i}", f"spk{i % 2}"))
    return out


def _clip_seconds(group):
    return sum(u.duration for u in group) + PAUSE_SECONDS * (len(group) - 1)


def test_plan_keeps_every_utterance_once_and_within_the_window(tmp_path):
    utts = _utts(tmp_path, [1.0, 2.0, 1.5, 3.0, 0.5, 2.5, 1.0, 2.0])
    groups = plan_packs(utts, 5.0, seed=3)
    assert sorted(u.id for g in groups for u in g) == sorted(u.id for u in utts)
    assert all(_clip_seconds(g) <= 5.0 for g in groups)
    assert len(groups) < len(utts)  # something was packed
    assert [[u.id for u in g] for g in plan_packs(utts, 5.0, seed=3)] == [[u.id for u in g] for g in groups]  # fixed grouping


def test_plan_leaves_an_over_long_utterance_alone_and_respects_the_label_limit(tmp_path):
    utts = _utts(tmp_path, [6.0, 1.0, 1.0, 1.0])
    groups = plan_packs(utts, 5.0, seed=0)
    assert [len(g) for g in groups if g[0].id == "u0"] == [1]
    one_sentence = plan_packs(utts, 5.0, seed=0, fits_label=lambda text: text.count("sentence") <= 1)
    assert all(len(g) == 1 for g in one_sentence)


def test_packed_clip_holds_the_audio_and_text_of_its_parts_and_is_reused(tmp_path):
    utts = _utts(tmp_path, [1.0, 1.2, 0.8])
    packed = pack_utterances(utts, 10.0, tmp_path / "packed", seed=0)
    assert len(packed) == 1
    clip = packed[0]
    parts = [next(u for u in utts if u.id == i) for i in clip.id.split("+")]
    assert clip.text == " ".join(u.text for u in parts)
    audio, sr = sf.read(clip.audio_filepath)
    assert sr == 16000 and abs(audio.size / sr - _clip_seconds(parts)) < 1e-3
    assert abs(clip.duration - _clip_seconds(parts)) < 1e-3
    assert clip.speaker == "spk0+spk1"
    mtime = (tmp_path / "packed").joinpath(clip.audio_filepath.rsplit("/", 1)[1]).stat().st_mtime_ns
    again = pack_utterances(utts, 10.0, tmp_path / "packed", seed=0)
    assert again == packed
    assert (tmp_path / "packed").joinpath(clip.audio_filepath.rsplit("/", 1)[1]).stat().st_mtime_ns == mtime  # not rewritten


def test_a_changed_part_gives_a_new_clip(tmp_path):
    utts = _utts(tmp_path, [1.0, 1.2])
    first = pack_utterances(utts, 10.0, tmp_path / "packed", seed=0)[0]
    write_tone_wav(utts[0].audio_filepath, 1.0, 999, seed=7)  # same name, new content
    second = pack_utterances(utts, 10.0, tmp_path / "packed", seed=0)[0]
    assert second.audio_filepath != first.audio_filepath


def test_utterances_without_a_duration_are_measured_before_planning(tmp_path):
    utts = [Utterance(u.audio_filepath, u.text, None, u.id, u.speaker) for u in _utts(tmp_path, [2.0, 2.0, 2.0])]
    packed = pack_utterances(utts, 4.5, tmp_path / "packed", seed=0)
    assert sorted(len(c.id.split("+")) for c in packed) == [1, 2]  # 2 + 0.4 + 2 fits 4.5 s, a third does not
    assert all(c.duration <= 4.5 for c in packed)
