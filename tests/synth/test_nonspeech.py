"""`speechft prepare nonspeech`: deterministic clips with no speech, train and test apart."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechft import prepare as prep
from speechft.manifest import read_manifest
from speechft.synth.nonspeech import COUNTS

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed (apt-get install flite)")
SOURCES = Path(__file__).resolve().parents[2] / "data_manifests"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_nonspeech_set_is_deterministic_varied_and_split(tmp_path, count_synthesis):
    paths = prep.prepare("nonspeech", sources=SOURCES, data_root=tmp_path / "a")
    assert list(paths) == ["train", "test"]
    made = len(count_synthesis)
    assert made > 0  # the babble's TTS
    before = snapshot(tmp_path / "a")
    assert prep.prepare("nonspeech", sources=SOURCES, data_root=tmp_path / "a") == paths
    assert len(count_synthesis) == made and snapshot(tmp_path / "a") == before  # no work, nothing rewritten
    prep.prepare("nonspeech", sources=SOURCES, data_root=tmp_path / "b")  # a fresh folder: the same bytes
    assert {k: v[0] for k, v in snapshot(tmp_path / "b").items()} == {k: v[0] for k, v in before.items()}

    split = {s: read_manifest(p) for s, p in paths.items()}
    test = split["test"]
    assert len(test) >= 50 and all(1.0 <= u.duration <= 30.0 for us in split.values() for u in us)
    assert all(u.text == "" and u.speaker == "nonspeech" for us in split.values() for u in us)
    assert {u.id.split("-")[2] for u in test} == set(COUNTS)  # every kind: nonspeech-test-<kind>-<n>
    for u in test:
        assert sf.info(u.audio_filepath).frames == round(u.duration * 16000)
    digest = {s: {hashlib.sha1(Path(u.audio_filepath).read_bytes()).hexdigest() for u in us} for s, us in split.items()}
    assert len(digest["test"]) == len(test) and not digest["train"] & digest["test"]  # no clip twice
    assert not {u.id for u in split["train"]} & {u.id for u in test}

    x, _ = sf.read(next(u for u in test if "-silence-" in u.id).audio_filepath)
    assert not np.any(x)  # digital silence
    hum, _ = sf.read(next(u for u in test if "-hum-" in u.id).audio_filepath)
    spectrum = np.abs(np.fft.rfft(hum))
    assert round(np.argmax(spectrum) * 16000 / hum.size) % 10 == 0 and np.argmax(spectrum) * 16000 / hum.size < 500


def test_dev_clips_are_their_own_and_babble_no_test_sentence(tmp_path, monkeypatch):
    from speechft.synth import nonspeech

    spoken = []
    real = nonspeech.synthesize
    monkeypatch.setattr(nonspeech, "synthesize", lambda text, voice: spoken.append(text) or real(text, voice))
    test_sentences = [s.text for s in nonspeech.read_sentences(SOURCES / "nonspeech" / nonspeech.SENTENCE_FILE)][0::2]
    made = nonspeech.nonspeech_clips(SOURCES / "nonspeech", tmp_path, splits=("dev",))
    assert list(made) == ["dev"]
    dev_spoken = set(spoken)
    assert dev_spoken and not dev_spoken & set(test_sentences)  # dev babbles train's sentences only
    made.update(nonspeech.nonspeech_clips(SOURCES / "nonspeech", tmp_path, splits=("test",)))
    assert len(made["dev"]) == 4 * len(made["test"])  # dev: 4x the clips of every kind
    kinds = [u.id.split("-")[2] for u in made["dev"]]
    assert {k: kinds.count(k) for k in COUNTS} == {k: 4 * n for k, n in COUNTS.items()}
    assert all(u.id.startswith("nonspeech-dev-") for u in made["dev"])
    digest = {s: {hashlib.sha1(Path(u.audio_filepath).read_bytes()).hexdigest() for u in us} for s, us in made.items()}
    assert not digest["dev"] & digest["test"]
