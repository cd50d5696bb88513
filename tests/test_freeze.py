import torch
from transformers import WhisperForConditionalGeneration

from speechft.config import FreezeConfig
from speechft.freeze import apply_freeze, plan_freeze


def _names(model):
    return [n for n, _ in model.named_parameters()]


def test_policies_exact_sets(tiny_whisper_dir):
    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir)
    names = _names(model)
    stem = {n for n in names if n.startswith(("model.encoder.conv", "model.encoder.embed_positions"))}
    block = lambda i: {n for n in names if n.startswith(f"model.encoder.layers.{i}.")}
    encoder = {n for n in names if n.startswith("model.encoder.")}

    assert plan_freeze(names, FreezeConfig(policy="full"), "whisper").frozen == set()
    assert plan_freeze(names, FreezeConfig(policy="feature_encoder"), "whisper").frozen == stem
    assert plan_freeze(names, FreezeConfig(policy="lower", layers=1), "whisper").frozen == stem | block(0)
    assert plan_freeze(names, FreezeConfig(policy="encoder"), "whisper").frozen == encoder
    dec0 = {n for n in names if n.startswith("model.decoder.layers.0.")}
    assert plan_freeze(names, FreezeConfig(policy="lower", layers=1, decoder_layers=1), "whisper").frozen == stem | block(0) | dec0


def test_gradual_unfreezes_top_down(tiny_whisper_dir):
    names = _names(WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir))
    cfg = FreezeConfig(policy="gradual", gradual_start="encoder")
    counts = [plan_freeze(names, cfg, "whisper", stage).frozen_units for stage in range(5)]
    assert counts == [3, 2, 1, 0, 0]
    top = {n for n in names if n.startswith(("model.encoder.layers.1.", "model.encoder.layer_norm."))}
    assert top <= plan_freeze(names, cfg, "whisper", 1).trainable
    assert not top & plan_freeze(names, cfg, "whisper", 0).trainable


def test_apply_sets_requires_grad(tiny_whisper_dir):
    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir)
    plan = apply_freeze(model, FreezeConfig(policy="lower", layers=1), "whisper")
    for name, p in model.named_parameters():
        assert p.requires_grad == (name in plan.trainable), name
    assert isinstance(next(model.parameters()), torch.nn.Parameter)


def test_token_embeddings_switch(tiny_whisper_dir):
    names = _names(WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir))
    plan = plan_freeze(names, FreezeConfig(policy="encoder", token_embeddings=True), "whisper")
    assert "model.decoder.embed_tokens.weight" in plan.frozen
    assert "model.decoder.embed_positions.weight" in plan.trainable
