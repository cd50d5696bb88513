"""End of an epoch: its record (train and dev loss, dev WER), the best epoch's weights, early stopping."""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..config import TrainConfig
from ..evaluate import EvalResult
from .checkpoint import LoopState

log = logging.getLogger(__name__)


def end_of_epoch(st: LoopState, dev_loss: float, dev_eval: EvalResult | None, trainable: dict, tc: TrainConfig) -> dict:
    """Record the epoch in st.history (and the log), keep the weights of the best epoch so far,
    and stop early after train.early_stopping_patience epochs without improvement.

    Args:
        st: the loop state (history, best metric, epoch and weights, stale count).
        dev_loss: token-weighted dev loss.
        dev_eval: dev decoding scores; required when train.select_by is wer.
        trainable: the trainable parameters by name (copied when the epoch is the best).
        tc: the train section (select_by, early_stopping_patience).

    Returns:
        The epoch's record.
    """
    record = {"epoch": st.epoch, "step": st.step, "train_loss": float(np.mean(st.losses)) if st.losses else None,
              "dev_loss": dev_loss}
    metric = dev_loss
    if tc.select_by == "wer":
        record["dev_wer"], record["dev_term_recall"] = dev_eval.wer, dev_eval.term_recall
        metric = dev_eval.wer
    st.history.append(record)
    log.info("epoch %d: %s", st.epoch, ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
    if metric < st.best_metric:
        st.best_metric, st.best_epoch, st.stale = metric, st.epoch, 0
        st.best_state = {n: p.detach().clone() for n, p in trainable.items()}
    else:
        st.stale += 1
        if st.stale >= tc.early_stopping_patience:
            log.info("early stopping: dev %s did not improve for %d epochs", tc.select_by, st.stale)
            st.stopped_early = True
    return record


def restore_best(st: LoopState, trainable: dict) -> None:
    """Copy the best epoch's weights back into the trainable parameters (none kept: no-op)."""
    if st.best_state is None:
        return
    with torch.no_grad():
        for n, v in st.best_state.items():
            trainable[n].copy_(v)
