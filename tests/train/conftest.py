"""Fixtures for the trainer's tests: configs on the tiny dataset, fresh tiny Whisper adapters."""

from __future__ import annotations

import pytest
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from speechft.config import load_config
from speechft.manifest import read_manifest
from speechft.models.whisper import WhisperAdapter


@pytest.fixture
def tiny_cfg(tiny_dataset):
    """tiny_cfg(*overrides): a recipe config on the tiny dataset."""

    def make(*overrides: str):
        return load_config(None, [f"data.train={tiny_dataset['train']}", f"data.dev={tiny_dataset['dev']}",
                                  f"data.test={tiny_dataset['test']}", *overrides])

    return make


@pytest.fixture
def tiny_adapter(tiny_whisper_dir):
    """tiny_adapter(): a fresh adapter on the tiny random Whisper (the same weights every call)."""

    def make() -> WhisperAdapter:
        return WhisperAdapter(WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir),
                              WhisperProcessor.from_pretrained(tiny_whisper_dir))

    return make


@pytest.fixture
def train_dev(tiny_dataset):
    """(train, dev) utterances of the tiny dataset."""
    return read_manifest(tiny_dataset["train"]), read_manifest(tiny_dataset["dev"])
