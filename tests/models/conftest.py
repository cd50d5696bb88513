"""Fixtures for the model tests: tiny random Whisper checkpoints in HF and CT2 form and speech
clips made with flite (the private SPEECHFT_HOME and the built-in models: tests/conftest.py)."""

from __future__ import annotations

import os

# Before anything imports huggingface_hub: a hub id given by mistake must fail, not download.
os.environ["HF_HUB_OFFLINE"] = "1"

import shutil
import subprocess
from pathlib import Path

import pytest

# Ten everyday sentences, spoken by flite for the real-weight tests.
SENTENCES = [
    "The weather is lovely today, so we are going for a walk in the park.",
    "Please remember to buy milk, bread and eggs on your way home.",
    "My brother is learning to play the guitar this summer.",
    "The train to the city leaves at half past eight every morning.",
    "Could you close the window? It is getting cold in here.",
    "We had dinner at a small restaurant near the river.",
    "She reads a book before going to bed every night.",
    "The children are playing football in the garden.",
    "I need to call the dentist and make an appointment.",
    "Turn left at the next corner and the shop is on your right.",
]
FLITE = "/usr/bin/flite"
FLITE_VOICE = "slt"
TINY_EN_VOCAB = 51864  # the real tiny.en tokenizer, so ids and special tokens are genuine


@pytest.fixture(scope="session")
def random_whisper(tmp_path_factory, tiny_en_ct2_dir):
    """(HF folder, model) of a tiny random Whisper with the real tiny.en tokenizer.

    Every parameter is random (no all-ones layer norms), so CT2's aliasing of equal
    tensors cannot hide a mapping mistake."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(
        vocab_size=TINY_EN_VOCAB, num_mel_bins=80, d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=1500, max_target_positions=448,
        decoder_start_token_id=50257, pad_token_id=50256, bos_token_id=50256, eos_token_id=50256,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * 0.1)
    model.generation_config.suppress_tokens = [1, 2, 7, 50359]
    model.generation_config.begin_suppress_tokens = [220, 50256]
    model.generation_config.alignment_heads = [[1, 0], [1, 1]]
    folder = tmp_path_factory.mktemp("random_whisper") / "hf"
    model.save_pretrained(folder)
    shutil.copyfile(tiny_en_ct2_dir / "tokenizer.json", folder / "tokenizer.json")
    return folder, model


def _ct2_convert(hf_dir: Path, out_dir: Path, quantization: str) -> Path:
    import ctranslate2

    converter = ctranslate2.converters.TransformersConverter(str(hf_dir), copy_files=["tokenizer.json"])
    return Path(converter.convert(str(out_dir), quantization=quantization))


@pytest.fixture(scope="session")
def ct2_convert():
    """ctranslate2's own converter (hf_dir, out_dir, quantization) -> out_dir, copying
    tokenizer.json as faster-whisper models do. A fixture, so tests need not import conftest."""
    return _ct2_convert


@pytest.fixture(scope="session")
def sentences() -> list[str]:
    """The texts of `speech_clips`."""
    return list(SENTENCES)


@pytest.fixture(scope="session")
def random_ct2_dir(random_whisper, tmp_path_factory) -> Path:
    """The random model converted to CT2 float16 by ctranslate2."""
    return _ct2_convert(random_whisper[0], tmp_path_factory.mktemp("random_ct2") / "fp16", "float16")


@pytest.fixture(scope="session")
def speech_clips(tmp_path_factory) -> list:
    """SENTENCES spoken by flite, as float32 16 kHz arrays (flite writes 8 kHz or 16 kHz WAV)."""
    if not Path(FLITE).is_file():
        pytest.skip(f"{FLITE} missing: apt-get install flite")
    from speechft.audio import load_audio

    folder = tmp_path_factory.mktemp("flite")
    clips = []
    for i, sentence in enumerate(SENTENCES):
        wav = folder / f"clip{i}.wav"
        subprocess.run([FLITE, "-voice", FLITE_VOICE, "-t", sentence, "-o", str(wav)], check=True, timeout=60)
        clips.append(load_audio(wav))
    return clips
