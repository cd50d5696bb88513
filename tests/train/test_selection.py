"""End of epoch: the record, the best epoch's weights, early stopping."""

import logging

import torch

from speechft.config import TrainConfig
from speechft.evaluate import EvalResult
from speechft.train import LoopState
from speechft.train.selection import end_of_epoch, restore_best


def test_best_weights_are_kept_and_patience_stops_the_run(caplog):
    caplog.set_level(logging.INFO, logger="speechft")
    w = torch.nn.Parameter(torch.zeros(2))
    tc = TrainConfig(select_by="loss", early_stopping_patience=2)
    st = LoopState(epoch=1, step=2, losses=[1.0, 3.0])
    assert end_of_epoch(st, 0.5, None, {"w": w}, tc) == {"epoch": 1, "step": 2, "train_loss": 2.0, "dev_loss": 0.5}
    for epoch, dev_loss in ((2, 0.7), (3, 0.6)):
        with torch.no_grad():
            w.add_(1.0)
        st.epoch = epoch
        end_of_epoch(st, dev_loss, None, {"w": w}, tc)
    assert (st.best_epoch, st.best_metric, st.stale, st.stopped_early) == (1, 0.5, 2, True)
    assert "early stopping: dev loss did not improve for 2 epochs" in caplog.text
    assert [r["epoch"] for r in st.history] == [1, 2, 3]
    restore_best(st, {"w": w})
    assert torch.equal(w.detach(), torch.zeros(2))


def test_select_by_wer_uses_the_dev_decoding():
    w = torch.nn.Parameter(torch.zeros(2))
    st = LoopState(epoch=1, step=1)
    record = end_of_epoch(st, 9.0, EvalResult(wer=0.25, cer=0.1, term_recall=0.5, n=4), {"w": w}, TrainConfig(select_by="wer"))
    assert record == {"epoch": 1, "step": 1, "train_loss": None, "dev_loss": 9.0, "dev_wer": 0.25, "dev_term_recall": 0.5}
    assert st.best_metric == 0.25 and st.best_epoch == 1


def test_restore_without_a_best_epoch_changes_nothing():
    w = torch.nn.Parameter(torch.ones(2))
    restore_best(LoopState(), {"w": w})
    assert torch.equal(w.detach(), torch.ones(2))
