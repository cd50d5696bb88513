"""CTranslate2 export: the folder loads in faster-whisper, parity.json is written, a failed
parity check keeps `<out>.failed` and leaves an older export untouched, and the real tiny.en
keeps its WER through int8."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import FLITE_SENTENCES as SENTENCES
from support import PARITY_SLACK, flite_export_int8, write_manifest, write_tone_wav

from speechft.errors import SpeechftError
from speechft.export import PARITY_FILE, export_ct2


def tone_manifest(folder: Path, n: int) -> Path:
    rows = []
    for i in range(n):
        write_tone_wav(folder / "clips" / f"{i}.wav", 0.8 + 0.2 * i, 300 + 100 * i, seed=i)
        rows.append({"audio_filepath": f"clips/{i}.wav", "text": "hello there", "id": f"t{i}"})
    return write_manifest(folder / "tones.jsonl", rows)


def test_export_loads_in_faster_whisper(tiny_whisper_dir, tmp_path):
    from faster_whisper import WhisperModel

    out = tmp_path / "ct2"
    summary = export_ct2(tiny_whisper_dir, out, "int8")
    assert summary["parity_checked"] is False and summary["quantization"] == "int8"
    json.dumps(summary)  # the recipe stores it in report.json
    names = {p.name for p in out.iterdir()}
    assert {"model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"} <= names
    assert PARITY_FILE not in names
    assert [p.name for p in tmp_path.iterdir()] == ["ct2"]  # no temp folder left behind
    model = WhisperModel(str(out), device="cpu", compute_type="default", cpu_threads=1)
    assert model.feat_kwargs["feature_size"] == 80 and not model.model.is_multilingual
    segments, info = model.transcribe(np.zeros(16000, dtype=np.float32), beam_size=1, max_new_tokens=8)
    list(segments)  # decodes without error (a random model's text means nothing)
    assert info.language == "en"


def test_parity_json_written(tiny_whisper_dir, tmp_path, capsys):
    tones = tone_manifest(tmp_path, 2)
    out = tmp_path / "ct2"
    summary = export_ct2(tiny_whisper_dir, out, "float32", manifest=tones, max_wer_gap=1e9, terms=["hello"])
    parity = json.loads((out / PARITY_FILE).read_text())
    assert parity["n"] == 2 and parity["quantization"] == "float32" and parity["passed"] is True
    for key in ("hf_wer", "ct2_wer", "gap", "ct2_hf_features_wer", "hf_term_recall", "ct2_term_recall", "identical_fraction"):
        assert key in parity
    assert parity["gap"] == pytest.approx(parity["ct2_wer"] - parity["hf_wer"])
    assert parity["gap"] == pytest.approx(parity["gap_engine"] + parity["gap_padding"])
    assert {"hf_decode_s", "ct2_decode_s", "convert_s"} <= set(parity["timings"])
    assert [u["id"] for u in parity["utterances"]] == ["t0", "t1"]
    assert all({"ref", "hf", "ct2", "ct2_hf_features"} <= set(u) for u in parity["utterances"])
    assert summary["parity_checked"] and "utterances" not in summary["parity"]
    assert "HF WER" in capsys.readouterr().out


def test_failed_parity_keeps_failed_folder_and_old_export(tiny_whisper_dir, tmp_path, capsys):
    """Through the CLI: exit code 2, the message names the kept folder, an older export survives."""
    from speechft.cli import main

    tones = tone_manifest(tmp_path, 1)  # one clip: a random model decodes all 128 tokens, slowly
    out = tmp_path / "ct2"
    out.mkdir()
    (out / "model.bin").write_text("older export")  # an earlier export (only such a folder may be replaced)
    (out / "config.json").write_text("{}")
    # The gap is signed (CT2 minus HF) and a random model's WERs run far above 1, so -1
    # need not fail here: a huge negative limit always does.
    code = main(["export", "--model", str(tiny_whisper_dir), "--out", str(out), "--manifest", str(tones),
                 "--max-wer-gap=-1e6", "--quantization", "int8"])
    assert code == 2 and "ct2.failed" in capsys.readouterr().err
    failed = tmp_path / "ct2.failed"
    assert (failed / "model.bin").is_file() and json.loads((failed / PARITY_FILE).read_text())["passed"] is False
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.bin"]
    assert (out / "model.bin").read_text() == "older export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips", "ct2", "ct2.failed", "tones.jsonl"]


def test_rejects_bad_input(tiny_whisper_dir, tmp_path):
    with pytest.raises(SpeechftError, match="quantization"):
        export_ct2(tiny_whisper_dir, tmp_path / "a", "int3")
    with pytest.raises(SpeechftError, match="not found"):
        export_ct2(tmp_path / "missing", tmp_path / "b")
    (tmp_path / "ctc").mkdir()
    (tmp_path / "ctc" / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    with pytest.raises(SpeechftError, match="not a Whisper"):
        export_ct2(tmp_path / "ctc", tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


@pytest.mark.slow
def test_real_tiny_en_int8_parity(tmp_path_factory):
    """The real tiny.en: int8 through faster-whisper keeps the HF model's WER on flite speech."""
    out, _ = flite_export_int8(tmp_path_factory)
    parity = json.loads((out / PARITY_FILE).read_text())
    assert parity["n"] == len(SENTENCES) and parity["quantization"] == "int8"
    assert parity["hf_wer"] < 0.15 and parity["ct2_wer"] < 0.15, parity
    assert parity["gap"] <= PARITY_SLACK


def test_parity_decodes_the_hf_side_with_the_front_end_the_folder_ships(tiny_whisper_dir, tmp_path):
    """A recipe's model trained and reported on faster-whisper's log-mel padding: the parity
    check's HF side must use it too, or it measures a front end the report never used (the
    medical LoRA model's int8 export was refused for a +0.54-point 'padding' gap that way)."""
    import shutil

    from speechft.export import _hf_adapter
    from speechft.models.shipped import ShippedDecoding, write_shipped

    assert _hf_adapter(tiny_whisper_dir, None).feature_padding == "waveform"  # no shipped file: the HF default
    model = shutil.copytree(tiny_whisper_dir, tmp_path / "model")
    write_shipped(model, ShippedDecoding(num_beams=5, feature_padding="logmel"))
    assert _hf_adapter(model, None).feature_padding == "logmel"
