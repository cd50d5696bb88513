"""One training epoch: gradient accumulation, the gradient sum over processes, non-finite
losses skipped, step-unit gradual unfreezing and mid-epoch checkpoints."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..config import TrainConfig
from ..distributed import Dist
from ..errors import SpeechftError
from ..freeze import FreezePlan
from ..manifest import Utterance
from .batching import length_batches
from .checkpoint import Checkpoints, LoopState
from .setup import TrainSetup
from .stages import FreezeSchedule

log = logging.getLogger(__name__)

# (batch, frozen prefix depth k) -> (mean token loss, target tokens): the trainer's batch_loss.
LossFn = Callable[[list[Utterance], int], tuple[torch.Tensor, int]]


def epoch_batches(st: LoopState, train: list[Utterance], rng: random.Random, batch_size: int, pool_batches: int) -> list[list[Utterance]]:
    """The current epoch's batches. A new epoch (st.batch_index 0) is counted and records the
    batching RNG's state before drawing; a resumed epoch redraws the same batches from it."""
    if st.batch_index == 0:
        st.epoch += 1
        st.epoch_rng_state = rng.getstate()
        st.losses = []
    rng.setstate(st.epoch_rng_state)
    return length_batches(train, batch_size, rng, pool_batches)


def local_loss(loss_fn: LossFn, batch: list[Utterance], k: int, dist: Dist) -> tuple[torch.Tensor | None, float, bool]:
    """This process's share of a global batch: (loss scaled so that summing gradients over
    processes gives the global token mean, global mean loss, finite flag)."""
    if not dist.active:
        loss, _ = loss_fn(batch, k)
        return loss, loss.item(), bool(torch.isfinite(loss))
    local = dist.shard(batch)
    loss, n = loss_fn(local, k) if local else (None, 0)
    finite = loss is None or bool(torch.isfinite(loss))
    if dist.sum_scalar(0.0 if finite else 1.0) > 0:  # every process skips the batch together
        return None, float("nan"), False
    n_global = dist.sum_scalar(n)
    mean = dist.sum_scalar(loss.item() * n if loss is not None else 0.0) / n_global
    return (loss * (n / n_global) if loss is not None else None), mean, True


def sync_gradients(params: list, dist: Dist) -> None:
    """Sum gradients over processes (each already carries its share of the token mean)."""
    if not dist.active:
        return
    for p in params:
        if p.requires_grad:
            if p.grad is None:  # an empty share still takes part in the reduction
                p.grad = torch.zeros_like(p)
            dist.all_reduce_sum(p.grad)


@dataclass
class EpochContext:
    """What every epoch of one fit shares."""

    model: torch.nn.Module
    loss_fn: LossFn
    setup: TrainSetup
    schedule: FreezeSchedule
    tc: TrainConfig
    dist: Dist
    checkpoints: Checkpoints
    bar: object  # tqdm progress bar over optimizer steps
    on_step: Callable[[int, float, float], None] | None = None  # (step, loss, lr) after each optimizer step


def run_epoch(ctx: EpochContext, st: LoopState, batches: list[list[Utterance]], plan: FreezePlan) -> FreezePlan:
    """Train on `batches` from st.batch_index on, until the epoch ends or the run's steps are done.

    Updates `st` (steps, losses, skipped batches; batch_index is 0 again at the end) and
    returns the freeze plan in force at the end (gradual unfreezing may change it).

    Raises:
        SpeechftError: train.max_nonfinite_batches batches in a row had a non-finite loss.
    """
    tc, s = ctx.tc, ctx.setup
    plan = ctx.schedule.at_epoch(ctx.model, plan, st.epoch)
    ctx.model.train()
    s.optimizer.zero_grad(set_to_none=True)
    for i in range(st.batch_index, len(batches)):
        batch = batches[i]
        plan = ctx.schedule.at_step(ctx.model, plan, st.step)
        loss, mean_loss, finite = local_loss(ctx.loss_fn, batch, plan.frozen_units, ctx.dist)
        if not finite:
            st.skipped += 1
            st.bad_in_a_row += 1
            log.warning("non-finite loss, batch skipped: %s", ", ".join(u.id for u in batch))
            if st.bad_in_a_row >= tc.max_nonfinite_batches:
                raise SpeechftError(f"{st.bad_in_a_row} batches in a row had a non-finite loss (last: {', '.join(u.id for u in batch)}). "
                                    "Fix: lower train.lr, or check those utterances with `speechft validate`")
            continue
        st.bad_in_a_row = 0
        if loss is not None:
            s.scaler.scale(loss / tc.grad_accum).backward()
        st.losses.append(mean_loss)
        if (i + 1) % tc.grad_accum == 0 or i + 1 == len(batches):
            sync_gradients(s.params, ctx.dist)
            s.scaler.unscale_(s.optimizer)
            torch.nn.utils.clip_grad_norm_(s.params, tc.max_grad_norm)
            s.scaler.step(s.optimizer)
            s.scaler.update()
            s.scheduler.step()
            s.optimizer.zero_grad(set_to_none=True)
            st.step += 1
            st.batch_index = i + 1
            ctx.bar.update(1)
            ctx.bar.set_postfix(loss=f"{st.losses[-1]:.3f}", epoch=st.epoch)
            if ctx.on_step is not None:
                ctx.on_step(st.step, st.losses[-1], s.scheduler.get_last_lr()[0])
            if ctx.checkpoints.due(st.step) and i + 1 < len(batches):  # the epoch's last step is saved after selection
                ctx.checkpoints.save(st)
            if st.step >= s.total_steps:
                break
    st.batch_index = 0
    return plan
