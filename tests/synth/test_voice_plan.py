"""The voice plan's variety switches: off by default, each drawn from its own seeded stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechft.errors import SpeechftError
from speechft.synth import Effects, Sentence, Voice
from speechft.synth.plan import SplitPlan, assign_voices, load_plan

SENTS = [Sentence(f"Sentence number {i}.", i, "x.txt") for i in range(1, 201)]
VOICES = [Voice("flite", "rms"), Voice("flite", "awb"), Voice("flite", "kal16")]
ORIGINAL = dict(voices=["flite:rms"], speed_jitter=0.12, augment_fraction=0.3, noise_snr_db=[20, 35], reverb=True)
EVERY_KIND = dict(tempo_fraction=0.5, pitch_fraction=0.5, vtlp_fraction=0.5, telephone_fraction=0.5,
                  telephone_codecs=["mulaw", "alaw"], babble_fraction=0.5, babble_talkers=2,
                  reverb_rt60=[0.3, 0.9], reverb_wet=[0.2, 0.5], noise_colors=["white", "pink", "brown"])
NEW_FIELDS = ("tempo", "pitch_semitones", "vtlp", "telephone", "babble", "reverb_rt60", "reverb_wet")


def assign(seed=1, **kw):
    """The first (with voices_per_sentence 1: the only) voice of each sentence."""
    return [vs[0] for vs in assign_voices(SENTS, SplitPlan(**{**ORIGINAL, **kw}), VOICES, seed, "train")]


def original_part(v: Voice):
    return v.engine, v.voice, v.speed, v.noise_snr_db, v.reverb


def test_new_switches_do_not_move_the_original_draws():
    plain, varied = assign(), assign(**EVERY_KIND)
    assert all(v.effects == Effects() for v in plain)  # off by default: the same voices and keys as before
    assert [original_part(v) for v in plain] == [original_part(v) for v in varied]
    assert sum(v.effects != Effects() for v in varied) > 150


def test_each_kind_has_its_own_stream():
    pitch_only = assign(pitch_fraction=0.5)
    with_others = assign(**EVERY_KIND)
    assert [v.effects.pitch_semitones for v in pitch_only] == [v.effects.pitch_semitones for v in with_others]
    wider_tempo = assign(**{**EVERY_KIND, "tempo": [0.7, 1.3], "babble_talkers": 4})
    for name in ("pitch_semitones", "vtlp", "telephone", "reverb_rt60"):
        assert [getattr(v.effects, name) for v in wider_tempo] == [getattr(v.effects, name) for v in with_others]


def test_draws_are_seeded_shares_and_ranges_respected():
    varied = assign(**EVERY_KIND)
    assert varied == assign(**EVERY_KIND)
    assert varied != assign(seed=2, **EVERY_KIND)
    fx = [v.effects for v in varied]
    for name, (lo, hi) in (("tempo", (0.9, 1.1)), ("pitch_semitones", (-2, 2)), ("vtlp", (0.9, 1.1)),
                           ("reverb_rt60", (0.3, 0.9)), ("babble_snr_db", (10, 20))):
        values = [getattr(f, name) for f in fx if getattr(f, name) is not None]
        assert all(lo <= x <= hi for x in values) and len(set(values)) > 10, name
    for name in ("tempo", "pitch_semitones", "vtlp", "telephone", "babble"):
        assert 70 <= sum(bool(getattr(f, name)) for f in fx) <= 130, name  # fraction 0.5 of 200
    assert {f.telephone for f in fx} == {None, "mulaw", "alaw"}
    reverberant = [f for v, f in zip(varied, fx) if v.reverb]
    assert reverberant and all(f.reverb_rt60 is not None for f in reverberant)
    assert {f.noise_color for v, f in zip(varied, fx) if v.noise_snr_db is not None} == {"white", "pink", "brown"}


def test_babble_talkers_say_other_sentences_of_the_split():
    varied = assign(**EVERY_KIND)
    for sent, v in zip(SENTS, varied):
        assert all(t.text != sent.text and t.text in {s.text for s in SENTS} for t in v.effects.babble)
        assert len(v.effects.babble) in (0, 2)
        assert all((t.engine, t.voice) in {(w.engine, w.voice) for w in VOICES} for t in v.effects.babble)


def write_plan(tmp_path: Path, train: str) -> Path:
    path = tmp_path / "voices.yaml"
    path.write_text(f"seed: 1\nsplits:\n  train: {{voices: [flite:rms], {train}}}\n", encoding="utf-8")
    return path


def test_plan_file_accepts_the_switches_and_names_bad_ones(tmp_path):
    plan = load_plan(write_plan(tmp_path, "pitch_fraction: 0.2, pitch_semitones: 1.5, telephone_fraction: 1"))
    assert plan.splits["train"].pitch_semitones == [1.5, 1.5] and plan.splits["train"].telephone_fraction == 1.0
    for bad, named in (("tempo_fraction: 2", "tempo_fraction"), ("vtlp: [1.2, 0.9]", "vtlp"),
                       ("telephone_codecs: [opus]", "telephone_codecs"), ("babble_talkers: 0", "babble_talkers"),
                       ("pitch_semitones: [-20, 0]", "pitch_semitones"), ("tempo_fraction: lots", "tempo_fraction"),
                       ("noise_colors: [blue]", "noise_colors"), ("voices_per_sentence: 2", "voices_per_sentence"),
                       ("voices_per_sentence: 0", "voices_per_sentence")):
        with pytest.raises(SpeechftError, match=rf"voices.yaml splits.train: .*{named}"):
            load_plan(write_plan(tmp_path, bad))


def test_committed_plans_keep_held_out_splits_clean():
    # dev and test measure voices as they are: the variety switches act on training data only.
    for path in sorted((Path(__file__).resolve().parents[2] / "data_manifests").glob("*/voices.yaml")):
        for name, sp in load_plan(path).splits.items():
            if name in ("dev", "test", "general"):
                assert all(v.effects == Effects() for vs in assign_voices(SENTS[:20], sp, VOICES, 1, name) for v in vs), (path, name)


def test_several_voices_per_sentence_prefer_other_speakers_and_keep_the_first_voice():
    voices = [Voice("flite", "rms"), Voice("flite", "kal16"), Voice("festival", "kal_diphone"), Voice("festival", "ked_diphone")]
    specs = dict(voices=[f"{v.engine}:{v.voice}" for v in voices])
    one = assign_voices(SENTS, SplitPlan(**{**ORIGINAL, **EVERY_KIND, **specs}), voices, 1, "train")
    two = assign_voices(SENTS, SplitPlan(**{**ORIGINAL, **EVERY_KIND, **specs, "voices_per_sentence": 2}), voices, 1, "train")
    assert [vs[0] for vs in two] == [vs[0] for vs in one]  # the first voice and its variety as with one voice
    assert all(len(vs) == 2 and vs[0].speaker != vs[1].speaker for vs in two)
    # kal16 (sentence 1) is followed by ked, not by festival's rendering of the same speaker
    assert [(v.engine, v.voice) for v in two[1]] == [("flite", "kal16"), ("festival", "ked_diphone")]
    seconds = [vs[1] for vs in two]
    assert seconds == [vs[1] for vs in assign_voices(SENTS, SplitPlan(**{**ORIGINAL, **EVERY_KIND, **specs, "voices_per_sentence": 2}),
                                                     voices, 1, "train")]  # seeded
    assert [v.effects for v in seconds] != [vs[0].effects for vs in two]  # drawn apart from the first voice's
    assert sum(v.effects.pitch_semitones is not None for v in seconds) > 70  # pitch_fraction 0.5 of 200
    both = assign_voices(SENTS[:4], SplitPlan(voices=["flite:rms", "flite:awb"], voices_per_sentence=2), VOICES[:2], 1, "dev")
    assert all({(v.engine, v.voice) for v in vs} == {("flite", "rms"), ("flite", "awb")} for vs in both)
