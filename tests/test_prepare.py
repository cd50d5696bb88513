"""speechft.prepare on a tiny fake domain (flite voices only), plus the Asterisk helpers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from speechft import prepare as prep
from speechft import synth
from speechft.errors import SpeechftError
from speechft.manifest import Utterance, read_manifest

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed (apt-get install flite)")

PLAN = """seed: 3
splits:
  train: {voices: [flite:rms, flite:awb], speed_jitter: 0.1, augment_fraction: 0.5, reverb: true}
  dev: {voices: [flite:kal16]}
  test: {voices: [flite:slt]}
"""


@pytest.fixture
def domain(tmp_path):
    src = tmp_path / "sources" / "tiny"
    src.mkdir(parents=True)
    (src / "train.txt").write_text("The patient takes apixaban.\nStart metoprolol now.\n%%%\nCheck the troponin.\n")
    (src / "dev.txt").write_text("Give lisinopril daily.\n")
    (src / "test.txt").write_text("Atorvastatin forty milligrams.\nHold the warfarin.\n")
    (src / "terms.txt").write_text("apixaban\natorvastatin\n")
    (src / "voices.yaml").write_text(PLAN)
    return tmp_path



def _run(root: Path) -> dict[str, Path]:
    return prep.prepare("tiny", sources=root / "sources", data_root=root / "data", jobs=1)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_prepare_twice_is_identical_and_does_no_work(domain, count_synthesis):
    paths = _run(domain)
    assert list(paths) == ["train", "dev", "test"]
    assert len(count_synthesis) == 6  # the "%%%" line is skipped
    out = domain / "data" / "tiny"
    before = _snapshot(out)

    assert _run(domain) == paths
    assert len(count_synthesis) == 6  # no synthesis the second time
    assert _snapshot(out) == before  # byte-identical, not even rewritten

    train = read_manifest(paths["train"])
    assert [u.speaker for u in train] == ["rms", "awb", "rms"]  # round-robin, unspeakable line skipped
    for u in train:
        assert u.id.startswith("tiny-train-") and u.duration == sf.info(u.audio_filepath).frames / 16000
    assert json.loads((out / "voices.json").read_text()) == {"train": ["awb", "rms"], "dev": ["kal"], "test": ["slt"]}
    assert (out / "terms.txt").read_text() == "apixaban\natorvastatin\n"


def test_test_speaker_in_train_is_rejected(domain):
    # festival's slt HTS voice and flite slt are the same person.
    (domain / "sources" / "tiny" / "voices.yaml").write_text(PLAN.replace("flite:awb]", "flite:awb, festival:us_slt_hts]"))
    with pytest.raises(SpeechftError, match=r"speaker 'slt' is in split test .* and in split train"):
        _run(domain)


def test_unknown_plan_key_is_rejected(domain):
    (domain / "sources" / "tiny" / "voices.yaml").write_text(PLAN.replace("reverb: true", "reverbb: true"))
    with pytest.raises(SpeechftError, match="unknown key"):
        _run(domain)


def test_interrupted_prepare_leaves_no_manifest(domain):
    made = []

    def dies_on_third(text, voice, seed):
        if len(made) == 2:
            raise KeyboardInterrupt
        made.append(voice)

    with synth.render_listener(dies_on_third), pytest.raises(KeyboardInterrupt):
        _run(domain)
    out = domain / "data" / "tiny"
    assert not list(out.glob("*.jsonl")) and not (out / "voices.json").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    assert len(list((out / "audio").glob("*.wav"))) == 2  # finished files are kept for the rerun

    assert set(_run(domain)) == {"train", "dev", "test"}


def test_parse_asterisk_transcripts():
    text = """; Core Asterisk Sounds in English

agent-loggedoff: Agent Logged off.
beep: [this is a simple beep tone]
letters/at: at [@]
confbridge-join: <beep ascending>
silence/1: (1 second of silence)
spy-iax2: IAX (note: does not say "2")
priv-callpending: I have a caller waiting, who introduces themselves as:
"""
    assert prep.parse_asterisk_transcripts(text) == {
        "agent-loggedoff": "Agent Logged off.",
        "letters/at": "at",
        "spy-iax2": "IAX",
        "priv-callpending": "I have a caller waiting, who introduces themselves as:",
    }


def _fake_prompts() -> list[Utterance]:
    keys = [f"p{i}" for i in range(60)] + [f"digits/{i}" for i in range(30)] + [f"letters/{c}" for c in "abcdefghij"]
    return [Utterance(f"/x/{k}.wav", f"prompt {k}" if not k.startswith("p1") else "same words", 1.0, k, "allison")
            for k in keys]


def test_general_subset_spreads_across_folders():
    utts = _fake_prompts()
    sub = prep.general_subset(utts, 20)
    assert len(sub) == 20 and sub == prep.general_subset(utts, 20)
    folders = [u.id.rpartition("/")[0] for u in sub]
    assert folders.count("") == 12 and folders.count("digits") == 6 and folders.count("letters") == 2


def test_real_speech_split_keeps_prompt_wording_in_one_split():
    split = prep._split_real_speech(_fake_prompts(), {"train": 0.7, "dev": 0.1, "test": 0.2}, seed=1)
    assert sum(len(v) for v in split.values()) == 100
    texts = {s: {u.text for u in us} for s, us in split.items()}
    assert not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]
    assert 50 <= len(split["train"]) <= 85 and len(split["test"]) >= 10


def test_committed_voice_plans_are_valid():
    plans = sorted((Path(__file__).resolve().parents[1] / "data_manifests").glob("*/voices.yaml"))
    assert plans, "no data_manifests/*/voices.yaml found"
    for path in plans:
        plan = prep.load_plan(path)  # raises on unknown keys, bad voices or a shared test speaker
        if "test" in plan.splits:
            test = {synth.Voice.parse(v).speaker for v in plan.splits["test"].voices}
            assert len(test) >= 2, f"{path}: test needs several held-out speakers"


def test_every_variety_switch_runs_and_is_reused(domain, count_synthesis):
    plan = PLAN.replace("reverb: true}", "reverb: true, pitch_fraction: 1, vtlp_fraction: 1, tempo_fraction: 1, "
                        "telephone_fraction: 1, telephone_codecs: [mulaw], babble_fraction: 1, babble_talkers: 2, "
                        "reverb_rt60: [0.4, 0.6], noise_colors: [pink]}")
    (domain / "sources" / "tiny" / "voices.yaml").write_text(plan)
    paths = _run(domain)
    assert len(count_synthesis) == 6
    plain = {Path(u.audio_filepath).name for u in read_manifest(paths["dev"]) + read_manifest(paths["test"])}
    train = read_manifest(paths["train"])
    assert len(train) == 3 and all(u.duration > 0.3 for u in train)
    before = _snapshot(domain / "data" / "tiny")
    assert _run(domain) == paths and len(count_synthesis) == 6 and _snapshot(domain / "data" / "tiny") == before

    (domain / "sources" / "tiny" / "voices.yaml").write_text(PLAN)  # switches off: dev and test files unchanged
    _run(domain)
    assert {Path(u.audio_filepath).name for u in read_manifest(paths["dev"]) + read_manifest(paths["test"])} == plain
    assert len(count_synthesis) == 9  # only train was made again


def test_the_lexicon_respells_what_the_voices_say_and_the_transcript_keeps_the_term(domain):
    (domain / "sources" / "tiny" / "lexicon.txt").write_text("apixaban\tuh PIX uh ban\n", encoding="utf-8")
    said = []
    with synth.render_listener(lambda text, voice, seed: said.append(text)):
        paths = _run(domain)
    assert "The patient takes uh pix uh ban." in said and not any("apixaban" in t.lower() for t in said)
    assert read_manifest(paths["train"])[0].text == "The patient takes apixaban."
    assert "Start metoprolol now." in said  # sentences without a lexicon term are spoken as written


def test_several_domains_prepare_at_once_as_they_would_one_by_one(domain):
    """prepare_many runs the targets side by side: the same files, results in the given order,
    and a broken target fails the call only after the others are written."""
    src = domain / "sources"
    shutil.copytree(src / "tiny", src / "tiny2")
    (src / "tiny2" / "test.txt").write_text("Hold the heparin.\n")
    alone = {t: prep.prepare(t, sources=src, data_root=domain / "alone", jobs=1) for t in ("tiny", "tiny2")}
    together = prep.prepare_many(["tiny2", "tiny"], sources=src, data_root=domain / "together", jobs=1)
    assert list(together) == ["tiny2", "tiny"]
    for t, paths in alone.items():
        assert list(together[t]) == list(paths)
        for split, path in paths.items():
            ours = read_manifest(together[t][split])
            assert [(u.text, u.speaker, u.duration) for u in ours] == [(u.text, u.speaker, u.duration) for u in read_manifest(path)]
            assert [sf.read(u.audio_filepath)[0].tolist() for u in ours] == [sf.read(u.audio_filepath)[0].tolist() for u in read_manifest(path)]

    (src / "broken").mkdir()
    (src / "broken" / "voices.yaml").write_text(PLAN.replace("reverb: true", "reverbb: true"))
    shutil.rmtree(domain / "together")
    with pytest.raises(SpeechftError, match="unknown key"):
        prep.prepare_many(["broken", "tiny"], sources=src, data_root=domain / "together", jobs=1)
    assert (domain / "together" / "tiny" / "test.jsonl").is_file()  # the other target still finished
