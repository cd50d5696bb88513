"""The plain PyTorch training loop: AdamW, warm-up + linear decay, accumulation, clipping,
dev WER after each epoch, best checkpoint kept, early stopping, gradual unfreezing."""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from .cache import PrefixCache
from .config import RecipeConfig
from .errors import SpeechftError
from .evaluate import evaluate
from .freeze import FreezePlan, apply_freeze, plan_freeze
from .manifest import Utterance

log = logging.getLogger(__name__)
MAX_NONFINITE_IN_A_ROW = 5  # batches with NaN/Inf loss tolerated in a row before stopping


@dataclass
class TrainResult:
    steps: int
    epochs: int
    seconds: float
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    skipped_batches: int = 0
    stopped_early: bool = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_batches(utts: list[Utterance], batch_size: int, rng: random.Random) -> list[list[Utterance]]:
    """Batches of similar target length (keeps the decoder's padding small), in random order.

    Sorting by transcript length, then by duration, groups utterances whose token and frame
    counts are close; shuffling within equal keys and shuffling the batches keeps SGD random.
    """
    keyed = [(len(u.text), u.duration or 0.0, rng.random(), u) for u in utts]
    keyed.sort(key=lambda t: t[:3])
    batches = [[t[3] for t in keyed[i : i + batch_size]] for i in range(0, len(keyed), batch_size)]
    rng.shuffle(batches)
    return batches


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return f


class Trainer:
    """Trains the unfrozen part of a model on cached frozen-prefix outputs.

    Args:
        adapter: family adapter holding the model.
        cfg: the recipe config (train, freeze, eval sections are used).
        cache_root: folder of the frozen-prefix activation cache.
        terms: domain terms, for the dev term recall in the log.
    """

    def __init__(self, adapter, cfg: RecipeConfig, cache_root, terms: list[str] | None = None):
        self.adapter = adapter
        self.cfg = cfg
        self.cache_root = cache_root
        self.terms = terms
        self.device = next(adapter.model.parameters()).device
        self._caches: dict[int, PrefixCache] = {}
        self.plan: FreezePlan = apply_freeze(adapter.model, cfg.freeze, adapter.family, stage=0)

    def cache_for(self, k: int) -> PrefixCache:
        if k not in self._caches:
            self._caches[k] = PrefixCache(self.cache_root, self.adapter, k, batch_size=self.cfg.eval.batch_size, enabled=self.cfg.train.cache)
        return self._caches[k]

    def _set_stage(self, stage: int) -> None:
        if self.cfg.freeze.policy != "gradual":
            return
        new = apply_freeze(self.adapter.model, self.cfg.freeze, self.adapter.family, stage)
        if new.frozen_units != self.plan.frozen_units:
            log.info("gradual unfreezing: stage %d, frozen encoder units %d -> %d", stage, self.plan.frozen_units, new.frozen_units)
        self.plan = new

    def _autocast(self):
        prec = self.cfg.train.precision
        if self.device.type != "cuda" or prec in ("fp32", "auto") and not torch.cuda.is_bf16_supported():
            return torch.autocast("cpu", enabled=False)
        dtype = torch.float16 if prec == "fp16" else torch.bfloat16
        return torch.autocast("cuda", dtype=dtype)

    def batch_loss(self, batch: list[Utterance]) -> tuple[torch.Tensor, int]:
        k = self.plan.frozen_units
        hidden = self.adapter.collate(self.cache_for(k).get(batch), self.device)
        with self._autocast():
            return self.adapter.loss(hidden, k, [u.text for u in batch])

    @torch.no_grad()
    def dev_loss(self, dev: list[Utterance]) -> float:
        self.adapter.model.eval()
        total, tokens = 0.0, 0
        bs = self.cfg.eval.batch_size
        for i in range(0, len(dev), bs):
            loss, n = self.batch_loss(dev[i : i + bs])
            total += float(loss) * n
            tokens += n
        return total / max(tokens, 1)

    def fit(self, train: list[Utterance], dev: list[Utterance]) -> TrainResult:
        """Train, evaluating on dev after every epoch; the best epoch's weights are restored."""
        tc = self.cfg.train
        seed_everything(tc.seed)
        rng = random.Random(tc.seed)
        model = self.adapter.model
        # Re-applied here: prepare_for_training may have replaced the output layer since __init__.
        self.plan = apply_freeze(model, self.cfg.freeze, self.adapter.family, stage=0)
        final_plan = plan_freeze([n for n, _ in model.named_parameters()], self.cfg.freeze, self.adapter.family, stage=10**6)
        # Every parameter that may ever train is in the optimizer; frozen ones have no grad and are skipped.
        params = [p for n, p in model.named_parameters() if n in final_plan.trainable]
        optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
        steps_per_epoch = math.ceil(math.ceil(len(train) / tc.batch_size) / tc.grad_accum)
        total_steps = steps_per_epoch * tc.epochs if tc.max_steps < 0 else min(tc.max_steps, steps_per_epoch * tc.epochs)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(int(tc.warmup_ratio * total_steps), total_steps))

        log.info("training: %d utterances, %d steps/epoch, %d steps in all", len(train), steps_per_epoch, total_steps)
        self.cache_for(self.plan.frozen_units).build(train + dev, desc="frozen prefix")
        start = time.perf_counter()
        step, epoch, bad_in_a_row, skipped = 0, 0, 0, 0
        best = (math.inf, -1, None)  # (dev metric, epoch, trainable state)
        history, stale = [], 0
        bar = tqdm(total=total_steps, desc="train", unit="step")
        while step < total_steps and epoch < tc.epochs:
            epoch += 1
            if self.cfg.freeze.gradual_unit == "epoch":
                self._set_stage((epoch - 1) // self.cfg.freeze.gradual_every)
            model.train()
            losses = []
            batches = length_batches(train, tc.batch_size, rng)
            optimizer.zero_grad(set_to_none=True)
            for i, batch in enumerate(batches):
                if self.cfg.freeze.gradual_unit == "step":
                    self._set_stage(step // self.cfg.freeze.gradual_every)
                loss, _ = self.batch_loss(batch)
                if not torch.isfinite(loss):
                    skipped += 1
                    bad_in_a_row += 1
                    log.warning("non-finite loss, batch skipped: %s", ", ".join(u.id for u in batch))
                    if bad_in_a_row >= MAX_NONFINITE_IN_A_ROW:
                        raise SpeechftError(f"{bad_in_a_row} batches in a row had a non-finite loss. Fix: lower train.lr, check the listed utterances")
                    continue
                bad_in_a_row = 0
                (loss / tc.grad_accum).backward()
                losses.append(loss.item())
                if (i + 1) % tc.grad_accum == 0 or i + 1 == len(batches):
                    torch.nn.utils.clip_grad_norm_(params, tc.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.3f}", epoch=epoch)
                    if step >= total_steps:
                        break
            record = {"epoch": epoch, "step": step, "train_loss": float(np.mean(losses)) if losses else None}
            record["dev_loss"] = self.dev_loss(dev)
            metric = record["dev_loss"]
            if tc.select_by == "wer":
                res = evaluate(self.adapter, dev, self.cache_for(self.plan.frozen_units), self.terms, batch_size=self.cfg.eval.batch_size,
                               desc="dev", **self.adapter.decode_options(self.cfg.eval))
                record["dev_wer"], record["dev_term_recall"] = res.wer, res.term_recall
                metric = res.wer
            history.append(record)
            log.info("epoch %d: %s", epoch, ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
            if metric < best[0]:
                state = {n: p.detach().clone() for n, p in model.named_parameters() if n in final_plan.trainable}
                best, stale = (metric, epoch, state), 0
            else:
                stale += 1
                if stale >= tc.early_stopping_patience:
                    log.info("early stopping: dev %s did not improve for %d epochs", tc.select_by, stale)
                    break
        bar.close()
        if best[2] is not None:
            params_by_name = dict(model.named_parameters())
            with torch.no_grad():
                for n, v in best[2].items():
                    params_by_name[n].copy_(v)
        model.eval()
        return TrainResult(step, epoch, time.perf_counter() - start, best[1], history, skipped, stale >= tc.early_stopping_patience)
