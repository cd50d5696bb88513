from pathlib import Path

import pytest

from speechft.config import load_config, save_config
from speechft.errors import SpeechftError

REPO = Path(__file__).resolve().parents[1]
BASE = ["data.train=a.jsonl", "data.dev=b.jsonl", "data.test=c.jsonl"]


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes").glob("*/recipe*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_loads(recipe):
    cfg = load_config(recipe)
    assert cfg.name and cfg.data.train and cfg.data.test
    assert cfg.freeze.policy in ("full", "feature_encoder", "encoder", "lower", "gradual", "lora")
    assert (cfg.freeze.policy == "lora") == recipe.name.endswith("-lora.yaml")  # LoRA recipes are named so


def test_overrides_are_typed():
    cfg = load_config(None, BASE + ["train.max_steps=20", "train.lr=1e-3", "freeze.policy=lower:2", "data.prepare=medical,general"])
    assert cfg.train.max_steps == 20 and cfg.train.lr == pytest.approx(1e-3)
    assert (cfg.freeze.policy, cfg.freeze.layers) == ("lower", 2)
    assert cfg.data.prepare == ["medical", "general"]


@pytest.mark.parametrize("override,named", [
    ("train.lrr=1", "train.lrr"),
    ("bogus=1", "bogus"),
    ("train.epochs=many", "train.epochs"),
    ("train.cache=maybe", "train.cache"),
    ("freeze.policy=sideways", "freeze.policy"),
    ("data.long_audio=chop", "data.long_audio"),
    # values refused when the recipe loads, not minutes later in training or evaluation
    ("train.lr=nan", "train.lr"),
    ("train.lr=inf", "train.lr"),
    ("train.warmup_ratio=2", "train.warmup_ratio"),
    ("train.max_steps=0", "train.max_steps"),
    ("eval.num_beams=0", "eval.num_beams"),
    ("eval.batch_size=0", "eval.batch_size"),
])
def test_bad_keys_and_types_name_the_key(override, named):
    with pytest.raises(SpeechftError, match=named.replace(".", r"\.")):
        load_config(None, BASE + [override])


def test_missing_required_key_is_named(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\ndata:\n  train: a.jsonl\n  dev: b.jsonl\n")
    with pytest.raises(SpeechftError, match=r"data\.test is required"):
        load_config(recipe)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, BASE + ["train.epochs=7"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_long_audio_choices():
    assert load_config(None, BASE).data.long_audio == "drop"  # today's behaviour stays the default
    assert load_config(None, BASE + ["data.long_audio=split"]).data.long_audio == "split"
    with pytest.raises(SpeechftError, match="use drop or split"):
        load_config(None, BASE + ["data.long_audio=chop"])


def test_prepare_accepts_a_recipe_for_its_data_prepare_targets():
    from speechft.cli import prepare_targets

    assert prepare_targets([str(REPO / "recipes/aviation/recipe.yaml")]) == ["aviation", "general", "everyday", "nonspeech"]
    assert prepare_targets(["medical", str(REPO / "recipes/medical/recipe.yaml")]) == ["medical", "general", "everyday", "nonspeech"]  # each once
