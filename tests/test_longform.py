"""Long recordings for the `long` condition, segment timing metrics and the non-speech summary."""

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from speechft.audio import SAMPLE_RATE, speech_edges
from speechft.longform import (MAX_SECONDS, MIN_SECONDS, boundary_errors, build_recordings, has_timestamps,
                               nonspeech_summary, plan_recordings, timing_summary)
from speechft.manifest import Utterance
from support import tone


def _clips(tmp_path, n=30, seconds=5.0):
    utts = []
    for i in range(n):
        x = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
        x[int(0.5 * SAMPLE_RATE): int((seconds - 0.5) * SAMPLE_RATE)] = tone(seconds - 1.0, 200 + 10 * i, seed=i)
        path = tmp_path / f"c{i}.wav"
        sf.write(path, x, SAMPLE_RATE)
        utts.append(Utterance(str(path), f"sentence number {i}", seconds, f"u{i:02d}", "spk"))
    return utts


def test_speech_edges_find_the_speech_inside_silence():
    x = np.zeros(3 * SAMPLE_RATE, np.float32)
    x[SAMPLE_RATE: 2 * SAMPLE_RATE] = tone(1.0, 300)
    start, end = speech_edges(x)
    assert start == pytest.approx(1.0, abs=0.011) and end == pytest.approx(2.0, abs=0.011)


def test_recordings_last_one_to_three_minutes_and_know_their_sentences(tmp_path):
    utts = _clips(tmp_path)
    groups = plan_recordings(utts, seed=1)
    assert sorted(u.id for g in groups for u in g) == sorted(u.id for u in utts)  # every utterance once
    recs = build_recordings(utts, tmp_path / "long", seed=1)
    for rec, group in zip(recs, groups):
        audio, sr = sf.read(rec.audio_filepath)
        assert MIN_SECONDS <= len(audio) / sr <= MAX_SECONDS and rec.duration == pytest.approx(len(audio) / sr, abs=0.01)
        assert rec.text == " ".join(u.text for u in group) and [s["text"] for s in rec.segments] == [u.text for u in group]
        for seg in rec.segments:  # the true speech edges: 0.5 s into each clip, 4 s long
            start, end = speech_edges(audio[int(seg["start"] * sr) - 800: int(seg["end"] * sr) + 800].astype(np.float32))
            assert end - start == pytest.approx(seg["end"] - seg["start"], abs=0.03)
    again = build_recordings(utts, tmp_path / "long", seed=1)
    assert [r.audio_filepath for r in again] == [r.audio_filepath for r in recs]  # deterministic: the same files
    assert [r.audio_filepath for r in build_recordings(utts, tmp_path / "long2", seed=2)] != [r.audio_filepath for r in recs]


def _seg(start, end, tokens):
    return SimpleNamespace(start=start, end=end, tokens=tokens)


def test_timing_metrics():
    begin = 50364
    decoded = [_seg(0.5, 4.4, [begin + 25, 11, begin + 220]), _seg(6.0, 9.6, [begin + 300, 12, begin + 480]), _seg(30.0, 60.0, [13, 14])]
    reference = [{"start": 0.4, "end": 4.5, "text": "a"}, {"start": 6.2, "end": 9.5, "text": "b"}]
    assert has_timestamps(decoded[0], begin) and not has_timestamps(decoded[2], begin)
    assert boundary_errors(reference, decoded) == pytest.approx([0.1, 0.1, 0.2, 0.1])
    rec = Utterance("/x.wav", "a b", 60.0, "r", segments=reference)
    summary = timing_summary([rec], [decoded], begin)
    assert summary["segments"] == 3 and summary["timestamped_share"] == pytest.approx(2 / 3)
    assert summary["boundary_error_s"] == pytest.approx(0.125)
    assert boundary_errors(reference, []) == []


def test_nonspeech_summary():
    out = nonspeech_summary(["", "you", "", "thank you so much"], [30.0, 30.0, 30.0, 30.0])
    assert out == {"clips": 4, "clips_with_words": 2, "share_with_words": 0.5, "words_per_minute": 2.5}
