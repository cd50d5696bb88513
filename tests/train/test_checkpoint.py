"""Checkpoint I/O: an exact round trip, atomic writes, and a clear error for a bad file."""

import errno
import random
import re

import numpy as np
import pytest
import torch

from speechft.errors import SpeechftError
from speechft.train import CHECKPOINT_NAME, LoopState, Trainer, load_checkpoint, save_checkpoint


def _state(value: float = 1.0):
    """A tiny trainable dict, optimizer, schedule and batching RNG."""
    p = torch.nn.Parameter(torch.full((3,), value))
    opt = torch.optim.AdamW([p], lr=0.1)
    return {"w": p}, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1)), random.Random(0)


def _step(trainable, opt, sched):
    trainable["w"].grad = torch.ones(3)
    opt.step()
    sched.step()


def test_round_trip_restores_weights_optimizer_schedule_and_every_rng(tmp_path):
    trainable, opt, sched, rng = _state()
    _step(trainable, opt, sched)
    st = LoopState(step=1, epoch=1, batch_index=2, losses=[0.5], history=[{"epoch": 1}], best_epoch=1)
    rng.random()
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    save_checkpoint(tmp_path, st, trainable, opt, sched, rng)
    expected = (trainable["w"].detach().clone(), torch.rand(2), np.random.rand(), random.random(), rng.random())

    trainable2, opt2, sched2, rng2 = _state(value=9.0)
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    restored = load_checkpoint(tmp_path, trainable2, opt2, sched2, rng2)
    assert restored == st
    assert torch.equal(trainable2["w"], expected[0])
    assert (torch.equal(torch.rand(2), expected[1]) and np.random.rand() == expected[2] and random.random() == expected[3]
            and rng2.random() == expected[4])
    assert sched2.last_epoch == sched.last_epoch
    _step(trainable, opt, sched), _step(trainable2, opt2, sched2)  # the optimizer state came back too
    assert torch.equal(trainable["w"], trainable2["w"])


def test_no_checkpoint_means_a_fresh_start(tmp_path):
    assert load_checkpoint(tmp_path, *_state()) is None


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, LoopState(step=1), *_state())
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    real = torch.save

    def disk_full(obj, f, *a, **kw):
        real(obj, f, *a, **kw)  # written in part, then the disk fills up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(SpeechftError, match=r"last\.pt: the disk is full"):
        save_checkpoint(tmp_path, LoopState(step=2), *_state())
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncate", "garbage", "not_a_checkpoint"])
def test_a_bad_file_is_named_with_the_fix(tmp_path, damage):
    save_checkpoint(tmp_path, LoopState(step=1), *_state())
    path = tmp_path / CHECKPOINT_NAME
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"this is not a checkpoint")
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    trainable, opt, sched, rng = _state(value=9.0)
    with pytest.raises(SpeechftError, match=rf"{re.escape(str(path))}.*Fix: start fresh .*or pick another run"):
        load_checkpoint(tmp_path, trainable, opt, sched, rng)
    assert torch.equal(trainable["w"], torch.full((3,), 9.0))  # nothing restored from it


def _fit(tiny_adapter, tiny_cfg, train_dev, tmp_path, *overrides, resume=False):
    cfg = tiny_cfg("train.epochs=1", "train.batch_size=4", "train.select_by=loss", "train.checkpoint_every=1",
                   "eval.batch_size=4", *overrides)
    return Trainer(tiny_adapter(), cfg, tmp_path / "cache").fit(*train_dev, checkpoint_dir=tmp_path / "ckpt", resume=resume)


def test_resume_from_a_truncated_checkpoint_stops_with_the_file_and_the_fix(tiny_adapter, tiny_cfg, train_dev, tmp_path):
    _fit(tiny_adapter, tiny_cfg, train_dev, tmp_path)
    path = tmp_path / "ckpt" / CHECKPOINT_NAME
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(SpeechftError, match=rf"cannot read checkpoint {re.escape(str(path))}: it is truncated.*"
                                            r"Fix: start fresh .*or pick another run"):
        _fit(tiny_adapter, tiny_cfg, train_dev, tmp_path, resume=True)


def test_resume_with_another_freeze_policy_is_refused(tiny_adapter, tiny_cfg, train_dev, tmp_path):
    _fit(tiny_adapter, tiny_cfg, train_dev, tmp_path, "freeze.policy=lower:1")
    with pytest.raises(SpeechftError, match=r"does not fit this run: its trainable parameters differ.*freeze policy.*Fix: start fresh"):
        _fit(tiny_adapter, tiny_cfg, train_dev, tmp_path, "freeze.policy=encoder", resume=True)
