"""The deployed model is the measured model: one front end throughout, the report's deployed rows,
and a run that fails loudly when the export scores worse than the report says."""

import json

import numpy as np
import pytest
from support import write_manifest, write_tiny_recipe, write_tone_wav

from speechft.audio import load_audio
from speechft.cli import main
from speechft.manifest import read_manifest
from speechft.recipe import INCOMPLETE_MARKER


def test_logmel_features_are_faster_whispers_exactly(tiny_whisper_dir, tiny_dataset):
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    from speechft.config import ModelConfig
    from speechft.models.adapters import load_adapter

    adapter = load_adapter(str(tiny_whisper_dir), ModelConfig(name=str(tiny_whisper_dir), feature_padding="logmel"))
    audios = [load_audio(u.audio_filepath) for u in read_manifest(tiny_dataset["test"])]
    ours = adapter.features(audios).numpy()
    fw = FeatureExtractor(feature_size=80)
    theirs = np.stack([pad_or_trim(fw(a)[:, :-1]) for a in audios])  # what faster-whisper's transcribe feeds its encoder
    assert np.array_equal(ours, theirs)
    adapter.feature_padding = "waveform"  # transformers' front end differs in the padded frames only
    hf = adapter.features(audios).numpy()
    assert not np.array_equal(hf, ours) and np.abs(hf[:, :, :90] - ours[:, :, :90]).max() < 1e-4


def test_a_model_trained_on_logmel_features_decodes_the_same_through_faster_whisper(tiny_dataset, tiny_whisper_dir, tmp_path):
    """Train a tiny model 20 steps on the deployed front end, export it (float32) and decode the
    test set both ways: the same tokens, since the features are the same (the documented tolerance
    is the engine's float rounding: at most one utterance in four may differ)."""
    from speechft.cache import uncached
    from speechft.config import ModelConfig
    from speechft.evaluate import transcribe
    from speechft.models.adapters import load_adapter
    from speechft.models.base import DecodeOptions
    from speechft.models.ct2.runtime import ct2_transcribe, load_ct2

    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    out = tmp_path / "out"
    assert main(["run", str(recipe), f"output_dir={out}", "train.max_steps=20", "model.feature_padding=logmel", "eval.deployed=true",
                 "export.quantization=float32", "eval.ship_prompt=never"]) == 0
    utts = read_manifest(tiny_dataset["test"])
    model_dir = str(out / "model")
    adapter = load_adapter(model_dir, ModelConfig(name=model_dir, feature_padding="logmel"))
    hf = transcribe(adapter, utts, uncached(adapter), options=DecodeOptions(max_new_tokens=12))
    ct2 = load_ct2(out / "model-ct2")
    from speechft.models.ct2.runtime import PARITY_DECODE_OPTIONS

    assert PARITY_DECODE_OPTIONS["beam_size"] == 1
    fw = [ct2_transcribe(ct2, load_audio(u.audio_filepath))[0] for u in utts]
    same = sum(a == b[: len(a)] or b == a[: len(b)] for a, b in zip(hf, fw))  # HF stops at 12 tokens
    assert same >= len(utts) - 1, list(zip(hf, fw))


def test_a_deployed_model_worse_than_the_report_fails_the_run_loudly(tiny_dataset, tiny_whisper_dir, tmp_path, capsys):
    """A random model babbles differently through the two engines: with the default
    export.max_wer_gap the run stops, says why and how to fix it, and is not marked finished."""
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    out = tmp_path / "out"
    assert main(["run", str(recipe), f"output_dir={out}", "train.max_steps=2", "export.max_wer_gap=0.01",
                 "eval.deployed=true", "eval.long_utterances=0", "export.quantization=int8"]) == 2
    err = capsys.readouterr().err
    assert "the deployed model (CTranslate2 int8 through faster-whisper) scores test WER" in err and "Fix:" in err
    assert (out / INCOMPLETE_MARKER).exists()  # not a result
    report = json.loads((out / "report.json").read_text())  # but everything is there to inspect
    assert report["eval"]["test"]["deployed"]["wer"] - report["eval"]["test"][report["headline"]]["wer"] > 0.01


def test_deployed_rows_decode_in_parallel_exactly_as_one_at_a_time(tiny_en_ct2_dir, tmp_path):
    """The report's deployed rows run one decoding per core; the texts are those of the server's
    one-clip-at-a-time loop (pretrained tiny.en, real speech from flite, beams 5 and a prompt)."""
    from support import FLITE_SENTENCES, flite_manifest

    from speechft.deployed import DeployedModel
    from speechft.models.ct2.runtime import DeployedDecoding, load_ct2, transcribe_deployed

    utts = read_manifest(flite_manifest(tmp_path / "clips", FLITE_SENTENCES))
    decoding = DeployedDecoding(beams=5, prompt="train, museum, restaurant")
    deployed = DeployedModel(tiny_en_ct2_dir, decoding)
    texts, segments = deployed.transcribe(utts)
    one_model = load_ct2(tiny_en_ct2_dir)
    alone = [transcribe_deployed(one_model, load_audio(u.audio_filepath), decoding)[0] for u in utts]
    assert texts == alone and all(t for t in texts) and len(segments) == len(utts)
    # Another decoding on the same loaded model (the report's deployed+timestamps row).
    greedy = deployed.with_decoding(decoding.replace(beams=1))
    assert greedy.model is deployed.model and deployed.decoding.beams == 5
    assert greedy.transcribe(utts)[0] == [transcribe_deployed(one_model, load_audio(u.audio_filepath), greedy.decoding)[0]
                                          for u in utts]


def test_auto_quantization_with_a_nonspeech_set_decodes_its_before_row(tiny_dataset, tiny_whisper_dir, tmp_path):
    """export.quantization=auto (the default) also exports the pretrained model for the
    non-speech before-row: the run finishes with both non-speech rows and a chosen quantization."""
    clips = []
    for i in range(2):
        write_tone_wav(tmp_path / f"hum{i}.wav", 1.0, 50 + 10 * i, seed=i)
        clips.append({"audio_filepath": f"hum{i}.wav", "text": "", "id": f"hum{i}"})
    nonspeech = write_manifest(tmp_path / "nonspeech.jsonl", clips)
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    out = tmp_path / "out"
    assert main(["run", str(recipe), f"output_dir={out}", "train.max_steps=1", "eval.deployed=true",
                 "eval.long_utterances=0", f"data.nonspeech={nonspeech}"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["eval"]["nonspeech"]) == {"deployed-before", "deployed"}
    assert report["export"]["quantization"] == report["export"]["quantization_choice"]["chosen"] in ("int8", "float32")
