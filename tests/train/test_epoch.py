"""One epoch: non-finite losses are skipped and logged, too many in a row stop the run."""

import pytest
import torch

from speechft.errors import SpeechftError
from speechft.train import Trainer


@pytest.fixture
def trainer(tiny_adapter, tiny_cfg, tmp_path):
    cfg = tiny_cfg("train.epochs=2", "train.batch_size=2", "train.select_by=loss", "train.max_nonfinite_batches=3",
                   "train.checkpoint_every=0", "eval.batch_size=4")
    return Trainer(tiny_adapter(), cfg, tmp_path / "cache")


def _poison(trainer, bad_ids):
    real = trainer.batch_loss

    def batch_loss(batch, k):
        loss, n = real(batch, k)
        if trainer.adapter.model.training and any(u.id in bad_ids for u in batch):
            loss = loss * float("nan")
        return loss, n

    trainer.batch_loss = batch_loss


def test_nonfinite_batch_is_skipped_and_logged(trainer, train_dev, caplog):
    _poison(trainer, {"train-3"})
    result = trainer.fit(*train_dev)
    assert result.skipped_batches == 2  # once per epoch
    assert "train-3" in caplog.text
    assert all(torch.isfinite(p).all() for p in trainer.adapter.model.parameters())


def test_too_many_nonfinite_batches_in_a_row_stop_with_the_ids(trainer, train_dev):
    _poison(trainer, {f"train-{i}" for i in range(8)})
    with pytest.raises(SpeechftError, match=r"3 batches in a row .*train-\d.*Fix: lower train.lr"):
        trainer.fit(*train_dev)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_result_names_the_precision_it_trained_in(tiny_adapter, tiny_cfg, train_dev, tmp_path, precision):
    # report.json reads it from here: on a CPU bf16 autocast runs only when asked for.
    cfg = tiny_cfg("train.epochs=1", "train.max_steps=1", "train.batch_size=2", "train.select_by=loss",
                   "train.checkpoint_every=0", f"train.precision={precision}")
    assert Trainer(tiny_adapter(), cfg, tmp_path / "cache").fit(*train_dev).precision == precision
