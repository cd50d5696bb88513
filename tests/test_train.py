"""Training loop: batching and non-finite losses."""

import random

import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from speechft.config import load_config
from speechft.errors import SpeechftError
from speechft.manifest import Utterance, read_manifest
from speechft.models.whisper import WhisperAdapter
from speechft.train import Trainer, length_batches


def test_length_batches_cover_everything_once_and_vary():
    utts = [Utterance(f"{i}.wav", "x" * (i % 37), 1.0, id=str(i)) for i in range(200)]
    rng = random.Random(0)
    first, second = length_batches(utts, 8, rng), length_batches(utts, 8, rng)
    assert sorted(u.id for b in first for u in b) == sorted(u.id for u in utts)
    assert {tuple(u.id for u in b) for b in first} != {tuple(u.id for u in b) for b in second}


@pytest.fixture
def trainer(tiny_whisper_dir, tiny_dataset, tmp_path):
    cfg = load_config(None, [f"data.train={tiny_dataset['train']}", f"data.dev={tiny_dataset['dev']}", f"data.test={tiny_dataset['test']}",
                             "train.epochs=2", "train.batch_size=2", "train.select_by=loss", "train.max_nonfinite_batches=3",
                             "train.checkpoint_every=0", "eval.batch_size=4"])
    adapter = WhisperAdapter(WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir), WhisperProcessor.from_pretrained(tiny_whisper_dir))
    return Trainer(adapter, cfg, tmp_path / "cache")


def _poison(trainer, bad_ids):
    real = trainer.batch_loss

    def batch_loss(batch):
        loss, n = real(batch)
        if trainer.adapter.model.training and any(u.id in bad_ids for u in batch):
            loss = loss * float("nan")
        return loss, n

    trainer.batch_loss = batch_loss


def test_nonfinite_batch_is_skipped_and_logged(trainer, tiny_dataset, caplog):
    _poison(trainer, {"train-3"})
    result = trainer.fit(read_manifest(tiny_dataset["train"]), read_manifest(tiny_dataset["dev"]))
    assert result.skipped_batches == 2  # once per epoch
    assert "train-3" in caplog.text
    assert all(torch.isfinite(p).all() for p in trainer.adapter.model.parameters())


def test_too_many_nonfinite_batches_in_a_row_stop_with_the_ids(trainer, tiny_dataset):
    _poison(trainer, {f"train-{i}" for i in range(8)})
    with pytest.raises(SpeechftError, match=r"3 batches in a row .*train-\d.*Fix: lower train.lr"):
        trainer.fit(read_manifest(tiny_dataset["train"]), read_manifest(tiny_dataset["dev"]))


def _fit(tiny_whisper_dir, tiny_dataset, tmp_path, *overrides):
    cfg = load_config(None, [f"data.train={tiny_dataset['train']}", f"data.dev={tiny_dataset['dev']}", f"data.test={tiny_dataset['test']}",
                             "train.epochs=2", "train.batch_size=2", "train.lr=1e-2", "train.select_by=loss",
                             "train.early_stopping_patience=10", "train.checkpoint_every=0", "freeze.policy=lower:1", *overrides])
    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    Trainer(WhisperAdapter(model, WhisperProcessor.from_pretrained(tiny_whisper_dir)), cfg, tmp_path / "cache").fit(
        read_manifest(tiny_dataset["train"]), read_manifest(tiny_dataset["dev"]))
    return start, {n: p.detach().clone() for n, p in model.named_parameters()}


def test_weight_interpolation_mixes_trained_and_starting_weights(tiny_whisper_dir, tiny_dataset, tmp_path):
    start, trained = _fit(tiny_whisper_dir, tiny_dataset, tmp_path)
    _, mixed = _fit(tiny_whisper_dir, tiny_dataset, tmp_path, "train.weight_interpolation=0.25")
    moved = [n for n in start if not torch.equal(start[n], trained[n])]
    assert moved  # training changed something, so the check below is not vacuous
    for n in start:
        torch.testing.assert_close(mixed[n], 0.25 * trained[n] + 0.75 * start[n], rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.2"])
def test_weight_interpolation_outside_0_1_is_refused(bad):
    with pytest.raises(SpeechftError, match="weight_interpolation"):
        load_config(None, [f"train.weight_interpolation={bad}"])
