"""Alignment of long recordings to their transcripts (speechft.align, `speechft align`,
data.long_audio: align).

The fast tests give the planner made-up word timestamps over synthetic audio; the slow ones
run the real whisper-tiny.en on a recording of flite sentences joined with natural pauses.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from support import SR, tone
from speechft.align.match import align_words
from speechft.align.plan import TranscriptMismatch, plan_recording
from speechft.align.words import Word
from speechft.errors import SpeechftError
from speechft.manifest import read_manifest

EVERYDAY = Path(__file__).resolve().parents[1] / "data_manifests" / "everyday" / "train.txt"
N_SENTENCES = 45  # about 3 min 10 s of flite speech with the pauses
CUT_TOLERANCE = 0.05  # s: a cut this close to a pause's edge still lies in the pause


# ---- fast: made-up timestamps over tone "words" ----
def _synthetic(sentences: list[list[str]], word_s=0.5, word_gap=0.05, pause=0.8):
    """Audio of one tone burst per word (quiet between), the exact Word list and the sentences' times."""
    words, spans, t = [], [], 0.3
    for sentence in sentences:
        start = t
        for w in sentence:
            words.append(Word(w, round(t, 3), round(t + word_s, 3)))
            t += word_s + word_gap
        spans.append((start, t - word_gap))
        t += pause
    x = 0.001 * np.random.default_rng(0).standard_normal(int((t + 0.3) * SR)).astype(np.float32)
    for k, w in enumerate(words):
        a = int(w.start * SR)
        x[a:a + int(word_s * SR)] += tone(word_s, 200 + 10 * (k % 30), seed=k)
    return x, words, spans


SENTENCES = [["alpha", "bravo", "charlie."], ["delta", "echo", "foxtrot", "golf."], ["hotel", "india."],
             ["juliet", "kilo", "lima", "mike."], ["november", "oscar", "papa."], ["quebec", "romeo", "sierra", "tango."]]


def test_align_words_times_each_reference_token():
    words = [Word("Alpha", 0.0, 0.5), Word("bravos", 0.5, 1.0), Word("delta", 1.5, 2.0), Word("now", 2.0, 2.2)]
    al = align_words("alpha, bravo charlie delta", words)
    assert [(t.text, t.start, t.end, t.correct) for t in al.tokens] == [
        ("alpha,", 0.0, 0.5, True), ("bravo", 0.5, 1.0, False), ("charlie", None, None, False), ("delta", 1.5, 2.0, True)]
    assert (al.errors, al.ref_words) == (3, 4)  # one substitution, one deletion, one insertion


def test_pieces_fit_the_window_and_cut_at_sentence_pauses():
    x, words, spans = _synthetic(SENTENCES)
    transcript = " ".join(" ".join(s) for s in SENTENCES)
    segs, planned, _ = plan_recording(transcript, words, x, SR, max_seconds=6.0)
    assert " ".join(p.piece.text for p in planned) == transcript  # every word in exactly one piece
    assert all(p.kept and p.piece.end - p.piece.start <= 6.0 for p in planned)
    ends = {" ".join(s).split()[-1] for s in SENTENCES}
    for p, q in zip(planned, planned[1:]):
        assert p.piece.text.split()[-1] in ends  # cut where a sentence ends...
        k = next(i for i, s in enumerate(SENTENCES) if s[-1] == p.piece.text.split()[-1])
        assert spans[k][1] < p.piece.end < spans[k + 1][0]  # ...inside the pause after it
    assert len(planned) >= 3


def test_a_sentence_longer_than_the_window_is_cut_between_words():
    long_sentence = [[f"word{i}" for i in range(12)] + ["end."]]
    x, words, _ = _synthetic(long_sentence)
    segs, planned, _ = plan_recording(" ".join(long_sentence[0]), words, x, SR, max_seconds=3.0)
    assert len(planned) >= 3 and all(p.piece.end - p.piece.start <= 3.0 for p in planned)
    assert " ".join(p.piece.text for p in planned) == " ".join(long_sentence[0])


def test_a_piece_that_disagrees_with_its_text_is_dropped():
    x, words, _ = _synthetic(SENTENCES)
    wrong = {"juliet": "banana", "kilo": "apple", "lima": "cherry", "mike.": "plum."}  # the 4th sentence misheard
    heard = [Word(wrong.get(w.text, w.text), w.start, w.end) for w in words]
    transcript = " ".join(" ".join(s) for s in SENTENCES)
    _, planned, _ = plan_recording(transcript, heard, x, SR, max_seconds=4.0)
    dropped = [p for p in planned if not p.kept]
    assert [p.piece.text for p in dropped] == ["juliet kilo lima mike."] and dropped[0].wer == 1.0
    assert all(p.wer == 0 for p in planned if p.kept)


def test_another_recordings_transcript_is_refused():
    x, words, _ = _synthetic(SENTENCES)
    with pytest.raises(TranscriptMismatch, match="does not match the recording.*another recording's transcript"):
        plan_recording("the cat sat on the mat and then it went to sleep in the warm sun all day", words, x, SR, 6.0)


# ---- slow: real whisper-tiny.en on flite speech ----
def _flite(text: str, path: Path) -> np.ndarray:
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(path)], check=True)
    x, sr = sf.read(str(path), dtype="float32")
    assert sr == SR
    return x


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    """>= 3 minutes: N_SENTENCES everyday sentences with 0.3-1.2 s pauses, its manifest (no
    segments) and each sentence's true (start, end) s."""
    if shutil.which("flite") is None:
        pytest.skip("needs Debian flite")
    root = tmp_path_factory.mktemp("long")
    sentences = EVERYDAY.read_text(encoding="utf-8").splitlines()[:N_SENTENCES]
    rng = np.random.default_rng(0)
    parts, spans, t = [], [], 0.0
    for k, s in enumerate(sentences):
        x = _flite(s, root / "tts.wav")
        spans.append((t, t + x.size / SR))
        pause = np.zeros(int(rng.uniform(0.3, 1.2) * SR), np.float32)
        parts += [x, pause]
        t += (x.size + pause.size) / SR
    sf.write(str(root / "long.wav"), np.concatenate(parts), SR, subtype="PCM_16")
    assert t >= 180
    manifest = root / "long.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "long.wav", "text": " ".join(sentences), "id": "long", "speaker": "slt"}) + "\n")
    return {"root": root, "manifest": manifest, "sentences": sentences, "spans": spans, "seconds": t}


@pytest.fixture(scope="module")
def aligned(long_recording, tiny_en_ct2_dir):
    """`speechft align` on the recording, into the folder data.long_audio: align uses (aligned/)."""
    from speechft.cli import main

    out = long_recording["root"] / "aligned"
    assert main(["align", str(long_recording["manifest"]), "--out", str(out)]) == 0
    return out / "long.jsonl"


@pytest.mark.slow
def test_pieces_are_sentence_spans_cut_in_the_pauses(long_recording, aligned):
    pieces = read_manifest(aligned)
    assert len(pieces) >= 6 and all(p.duration <= 30.0 for p in pieces)
    assert " ".join(p.text for p in pieces) == " ".join(long_recording["sentences"])  # every word in exactly one piece
    sentence_ends = np.cumsum([len(s.split()) for s in long_recording["sentences"]])
    spans, exact, t, n_words = long_recording["spans"], 0, 0.0, 0
    for p in pieces[:-1]:
        t, n_words = t + p.duration, n_words + len(p.text.split())
        k = int(np.searchsorted(sentence_ends, n_words))
        # A cut is exact when the text ends with sentence k and the audio is cut in the pause after it.
        if sentence_ends[k] == n_words and spans[k][1] - CUT_TOLERANCE <= t <= spans[k + 1][0] + CUT_TOLERANCE:
            exact += 1
    assert exact >= 0.95 * (len(pieces) - 1), f"{exact} of {len(pieces) - 1} cuts on sentence boundaries"
    assert abs(t + pieces[-1].duration - long_recording["seconds"]) < 0.05  # the pieces tile the recording


@pytest.mark.slow
def test_aligning_again_does_no_work(long_recording, aligned, monkeypatch):
    from speechft.align import align_long_lines, words

    before = {p: p.stat().st_mtime_ns for p in aligned.parent.rglob("*") if p.is_file()}
    monkeypatch.setattr(words, "load_ct2", lambda *a, **k: pytest.fail("transcribed again"))
    report = align_long_lines(long_recording["manifest"], aligned.parent)
    assert report.pieces == len(read_manifest(aligned)) and not report.dropped
    assert {p: p.stat().st_mtime_ns for p in aligned.parent.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_a_mismatched_transcript_is_refused(long_recording, aligned, tmp_path, capsys):
    from speechft.cli import main

    other = " ".join(EVERYDAY.read_text(encoding="utf-8").splitlines()[200:200 + N_SENTENCES])
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({"audio_filepath": str(long_recording["root"] / "long.wav"), "text": other, "id": "long"}) + "\n")
    # The words of this audio are cached in aligned/words: the same out folder decodes nothing.
    assert main(["align", str(wrong), "--out", str(aligned.parent)]) == 2
    err = capsys.readouterr().err
    assert "long: " in err and "does not match the recording" in err and "Traceback" not in err
    assert not (aligned.parent / "wrong.jsonl").exists()


@pytest.mark.slow
def test_recipe_trains_on_aligned_pieces(long_recording, aligned, tiny_dataset, tiny_whisper_dir, tmp_path, caplog):
    from speechft.cli import main

    caplog.set_level(logging.INFO, logger="speechft")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"""name: aligned
data:
  train: {long_recording['manifest']}
  dev: {tiny_dataset['dev']}
  test: {tiny_dataset['test']}
  long_audio: align
model:
  name: {tiny_whisper_dir}
train:
  epochs: 1
  max_steps: 2
  batch_size: 4
eval:
  batch_size: 4
  max_new_tokens: 8
  prompted: false
export:
  max_wer_gap: 1000.0  # a random model babbles differently through the two engines
""", encoding="utf-8")
    out = tmp_path / "run"
    assert main(["run", str(recipe), f"output_dir={out}"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["train"]["steps"] == 2 and report["skipped"]["count"] == 0  # the 3-minute line was not dropped
    n = len(read_manifest(aligned))
    assert f"data.long_audio=align (train): aligned 1 recording(s) into {n} piece(s) -> {aligned}" in caplog.text


def test_align_refuses_a_hub_aligner_offline(tmp_path):
    from speechft.align import aligner_dir

    with pytest.raises(SpeechftError, match="not a local model"):
        aligner_dir("someorg/some-whisper")


def test_an_hf_whisper_folder_is_converted_once_for_aligning(tiny_whisper_dir):
    from speechft.align import aligner_dir
    from speechft.models.ct2.runtime import is_ct2_dir

    first = aligner_dir(str(tiny_whisper_dir))
    assert is_ct2_dir(first)
    stamp = (first / "model.bin").stat().st_mtime_ns
    assert aligner_dir(str(tiny_whisper_dir)) == first and (first / "model.bin").stat().st_mtime_ns == stamp
