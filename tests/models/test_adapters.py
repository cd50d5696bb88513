"""One way to a model: load_adapter, the declared ModelAdapter protocol and typed decode options."""

import shutil

import pytest

from speechft.config import ModelConfig
from speechft.errors import SpeechftError
from speechft.models.adapters import load_adapter
from speechft.models.base import DecodeOptions, ModelAdapter, make_decode_options
from speechft.models.shipped import ShippedDecoding, write_shipped


def test_load_adapter_gives_a_model_adapter(tiny_whisper_dir):
    adapter = load_adapter(str(tiny_whisper_dir))
    assert isinstance(adapter, ModelAdapter) and adapter.family == "whisper"
    assert adapter.feature_padding == ModelConfig().feature_padding


def test_a_trained_folder_decodes_with_the_front_end_it_shipped_with(tiny_whisper_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_whisper_dir, folder)
    write_shipped(folder, ShippedDecoding(num_beams=5, feature_padding="logmel"))
    assert load_adapter(str(folder)).feature_padding == "logmel"
    cfg = ModelConfig(name=str(folder), feature_padding="waveform")  # an explicit config wins
    assert load_adapter(str(folder), cfg).feature_padding == "waveform"


def test_a_trained_folder_computes_its_encoder_in_the_precision_it_shipped_with(tiny_whisper_dir, tmp_path):
    """A model measured with a bf16 frozen encoder is decoded with one wherever it is loaded; a
    folder from before the setting existed was measured in fp32."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_whisper_dir, folder)
    write_shipped(folder, ShippedDecoding(num_beams=5, encoder_precision="bf16"))
    assert load_adapter(str(folder)).encoder_precision == "bf16"
    write_shipped(folder, ShippedDecoding(num_beams=5))
    assert load_adapter(str(folder)).encoder_precision == "fp32"
    with pytest.raises(SpeechftError, match="model.encoder_precision='fp16'"):
        ModelConfig(encoder_precision="fp16")


def test_decode_options_are_typed_and_unknown_ones_are_errors():
    assert make_decode_options(num_beams=3) == DecodeOptions(num_beams=3)
    with pytest.raises(SpeechftError, match="unknown decoding option.*beam. Fix: use num_beams"):
        make_decode_options(beam=3)
    with pytest.raises(SpeechftError, match="num_beams=0"):
        DecodeOptions(num_beams=0)
    assert DecodeOptions(prompt="").prompt is None and DecodeOptions(language=" EN ").language == "en"
    assert DecodeOptions(num_beams=2, hotwords=["a"]).non_default() == {"num_beams", "hotwords"}


def test_whisper_refuses_ctc_only_options(tiny_whisper_dir):
    import torch

    adapter = load_adapter(str(tiny_whisper_dir))
    enc = torch.zeros(1, 1500, adapter.model.config.d_model)
    with pytest.raises(SpeechftError, match="hotwords do not apply to whisper"):
        adapter.transcribe_encoded(enc, DecodeOptions(hotwords=("apixaban",)))
    with pytest.raises(SpeechftError, match="English-only"):
        adapter.transcribe_encoded(enc, DecodeOptions(language="de"))
