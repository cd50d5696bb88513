"""The frozen-prefix cache gives the same losses as running the prefix, and never serves stale data."""

import shutil

import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from support import write_tone_wav
from speechft.cache import PrefixCache
from speechft.config import FreezeConfig
from speechft.freeze import apply_freeze
from speechft.manifest import read_manifest
from speechft.models.whisper import WhisperAdapter


@pytest.fixture
def adapter(tiny_whisper_dir):
    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir)
    return WhisperAdapter(model, WhisperProcessor.from_pretrained(tiny_whisper_dir))


@pytest.mark.parametrize("policy,k", [("encoder", 3), ("lower:1", 2), ("feature_encoder", 1)])
def test_cached_loss_matches_uncached(adapter, tiny_dataset, tmp_path, policy, k):
    plan = apply_freeze(adapter.model, FreezeConfig(policy=policy), "whisper")
    assert plan.frozen_units == k
    utts = read_manifest(tiny_dataset["train"])[:4]
    texts = [u.text for u in utts]
    cached = PrefixCache(tmp_path, adapter, k, batch_size=2)
    direct = PrefixCache(tmp_path, adapter, k, enabled=False)
    adapter.model.train()
    losses = []
    for cache in (cached, direct):
        torch.manual_seed(0)
        loss, _ = adapter.loss(adapter.collate(cache.get(utts)), k, texts)
        losses.append(loss.item())
    # Entries are stored in fp16: equal up to that rounding.
    assert losses[0] == pytest.approx(losses[1], rel=1e-3)
    assert cached.computed == 4


def test_second_run_reuses_entries(adapter, tiny_dataset, tmp_path):
    utts = read_manifest(tiny_dataset["train"])
    first = PrefixCache(tmp_path, adapter, 3)
    first.build(utts)
    second = PrefixCache(tmp_path, adapter, 3)
    second.build(utts)
    assert (first.computed, second.computed) == (len(utts), 0)


def test_changed_audio_or_model_is_recomputed(adapter, tiny_dataset, tmp_path):
    src = read_manifest(tiny_dataset["train"])[:2]
    for u in src:  # private copies: this test rewrites one file
        dst = tmp_path / "audio" / f"{u.id}.wav"
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(u.audio_filepath, dst)
        u.audio_filepath = str(dst)
    cache_dir = tmp_path / "cache"
    cache = PrefixCache(cache_dir, adapter, 3)
    before = [t.clone() for t in cache.get(src)]
    write_tone_wav(src[0].audio_filepath, 1.5, 900, seed=7)  # same path, new content
    again = PrefixCache(cache_dir, adapter, 3)
    after = again.get(src)
    assert again.computed == 1
    assert not torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    with torch.no_grad():
        adapter.model.model.encoder.layers[0].fc1.weight.add_(0.1)
    changed_model = PrefixCache(cache_dir, adapter, 3)
    changed_model.get(src)
    assert changed_model.computed == 2 and changed_model.dir != again.dir


def test_the_front_end_is_part_of_the_cache_key(tiny_whisper_dir):
    """Features padded as faster-whisper does are other encoder inputs: never served from entries
    made with transformers' padding (and the old default's keys stay what they were)."""
    from speechft.cache import model_fingerprint
    from speechft.config import ModelConfig
    from speechft.models.adapters import load_adapter

    def adapter(padding, precision="fp32"):
        return load_adapter(str(tiny_whisper_dir), ModelConfig(name=str(tiny_whisper_dir), feature_padding=padding,
                                                               encoder_precision=precision))

    waveform, logmel = adapter("waveform"), adapter("logmel")
    assert model_fingerprint(waveform, 1) != model_fingerprint(logmel, 1)
    assert waveform.feature_settings() == waveform.processor.feature_extractor.to_dict()
    # The frozen encoder's precision too: bf16 entries are other numbers.
    assert model_fingerprint(adapter("logmel", "bf16"), 1) != model_fingerprint(logmel, 1)
