"""The Trainer: set-up, epochs, end-of-epoch selection, then the best weights and the weight
interpolation. Each part lives in its own module; this one puts them in order."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ..cache import PrefixCache, PrefixCaches
from ..config import RecipeConfig
from ..distributed import get_dist
from ..evaluate import evaluate
from ..freeze import FreezePlan
from ..manifest import Utterance
from ..trackers import Tracker
from .batching import seed_everything
from .checkpoint import Checkpoints, LoopState
from .epoch import EpochContext, epoch_batches, run_epoch
from .interpolate import interpolate, interpolated_names
from .selection import end_of_epoch, restore_best
from .setup import amp_dtype, build_setup, deterministic_kernels, param_groups, precision_name
from .stages import FreezeSchedule
from .targets import TargetPolicy

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a fit did, and the freeze plan it ended on: all the caller reads after training."""

    steps: int
    epochs: int
    seconds: float
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    skipped_batches: int = 0
    stopped_early: bool = False
    plan: FreezePlan | None = None  # the freeze plan in force at the end (gradual unfreezing changes it)
    precision: str = "fp32"  # the autocast it trained in (`precision_name`): what report.json records


class Trainer:
    """Trains the unfrozen part of a model on cached frozen-prefix outputs.

    Args:
        adapter: family adapter holding the model.
        cfg: the recipe config (train, freeze, eval sections are used).
        caches: the frozen-prefix caches, shared with the caller's evaluation (or their folder,
            for a `PrefixCaches` made here with train.cache).
        terms: domain terms, for the dev term recall in the log.
        plan: the stage-0 freeze plan the caller applied to the model after the last change to
            its layers (the recipe does, after prepare_for_training). None: applied here, and
            again when fit starts, since prepare_for_training may replace the output layer.
    """

    def __init__(self, adapter, cfg: RecipeConfig, caches: PrefixCaches | str | Path, terms: list[str] | None = None,
                 plan: FreezePlan | None = None, tracker: Tracker | None = None):
        self.adapter = adapter
        self.cfg = cfg
        self.terms = terms
        self.caches = caches if isinstance(caches, PrefixCaches) else PrefixCaches(caches, adapter, enabled=cfg.train.cache)
        self.dist = get_dist()
        self.device = next(adapter.model.parameters()).device
        self.schedule = FreezeSchedule(cfg.freeze, adapter.family)
        self.amp_dtype = amp_dtype(self.device, cfg.train.precision)
        self._given_plan = plan
        self._plan = plan if plan is not None else self.schedule.start(adapter.model)
        tc = cfg.train
        self.targets = TargetPolicy(terms, tc.prompt_rate, tc.timestamp_rate, tc.seed, cfg.eval.max_prompt_terms)
        self._epoch: int | None = None  # the training epoch being run; None: plain targets (dev loss)
        self.tracker = tracker or Tracker()

    @property
    def plan(self) -> FreezePlan:
        """The freeze plan in force: stage 0 before fit, the final one after (also in TrainResult.plan)."""
        return self._plan

    def cache_for(self, k: int) -> PrefixCache:
        """The frozen-prefix cache of depth `k` (the same objects the caller's caches hand out)."""
        return self.caches.for_units(k)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def batch_loss(self, batch: list[Utterance], k: int) -> tuple[torch.Tensor, int]:
        """(mean token loss, target tokens) of a batch on the output of the lowest k encoder units.

        The one place training and the dev loss turn a batch into a loss.
        """
        hidden = self.adapter.collate(self.caches.for_units(k).get(batch), self.device)
        with self._autocast():
            return self.adapter.loss(hidden, k, self.targets.targets(batch, self._epoch))

    @torch.no_grad()
    def dev_loss(self, dev: list[Utterance], k: int | None = None) -> float:
        """Token-weighted mean loss over the dev set (batches shared out over processes).

        `k`: frozen prefix depth; default: that of the plan in force.
        """
        k = self._plan.frozen_units if k is None else k
        self._epoch = None  # the dev loss scores plain transcripts: comparable from epoch to epoch
        self.adapter.model.eval()
        total, tokens = 0.0, 0
        bs = self.cfg.eval.batch_size
        for i in self.dist.shard(range(0, len(dev), bs)):
            loss, n = self.batch_loss(dev[i : i + bs], k)
            total += float(loss) * n
            tokens += n
        return self.dist.sum_scalar(total) / max(self.dist.sum_scalar(tokens), 1)

    def fit(self, train: list[Utterance], dev: list[Utterance], checkpoint_dir=None, resume: bool = False) -> TrainResult:
        """Train, evaluating on dev after every epoch; the best epoch's weights are restored,
        then mixed with the starting weights when train.weight_interpolation < 1.

        Args:
            checkpoint_dir: where to write checkpoints every `train.checkpoint_every` optimizer
                steps and after every epoch (atomically); None disables them.
            resume: continue from the last complete checkpoint in `checkpoint_dir`.

        Returns:
            The steps, epochs, history, best epoch and the final freeze plan.

        Raises:
            SpeechftError: too many non-finite losses in a row, or a checkpoint to resume from
                that is unreadable or belongs to another run.
        """
        tc = self.cfg.train
        seed_everything(tc.seed)
        rng = random.Random(tc.seed)
        model = self.adapter.model
        # Without the caller's plan, stage 0 again: prepare_for_training may have replaced the output layer since __init__.
        plan = self._given_plan if self._given_plan is not None else self.schedule.start(model)
        groups = param_groups(model, self.schedule.ever_trainable([n for n, _ in model.named_parameters()]), tc)
        setup = build_setup(groups, tc, len(train), self.device, self.amp_dtype)
        if tc.gradient_checkpointing and self.device.type == "cuda":
            model.gradient_checkpointing_enable()
        # The starting point, for weight interpolation at the end (before a resumed run loads its checkpoint).
        # LoRA: the up-projections alone (interpolated_names), which scales the adapters' delta.
        mixed_names = interpolated_names(list(setup.trainable))
        start_weights = {n: setup.trainable[n].detach().clone() for n in mixed_names} if tc.weight_interpolation < 1 else None
        checkpoints = Checkpoints(checkpoint_dir, tc.checkpoint_every, self.dist.is_main, setup.trainable, setup.optimizer,
                                  setup.scheduler, rng)
        st = (checkpoints.load() if resume else None) or LoopState()

        log.info("training: %d utterances or packed clips, %d steps/epoch, %d steps in all%s", len(train), setup.steps_per_epoch,
                 setup.total_steps, f" (resuming at step {st.step})" if st.step else "")
        self.caches.for_units(plan.frozen_units).build(train + dev, desc="frozen prefix")
        start = time.perf_counter()
        bar = tqdm(total=setup.total_steps, initial=st.step, desc="train", unit="step", disable=not self.dist.is_main)
        ctx = EpochContext(model, self.batch_loss, setup, self.schedule, tc, self.dist, checkpoints, bar,
                           lambda step, loss, lr: self.tracker.log({"train/loss": loss, "train/lr": lr}, step))
        with deterministic_kernels(self.device):
            while st.step < setup.total_steps and st.epoch < tc.epochs and not st.stopped_early:
                batches = epoch_batches(st, train, rng, tc.batch_size, self.adapter.length_sort_pool)
                self._epoch = st.epoch
                plan = run_epoch(ctx, st, batches, plan)
                self._end_of_epoch(st, dev, plan.frozen_units, setup.trainable)
                checkpoints.save(st)
        bar.close()
        restore_best(st, setup.trainable)
        if start_weights is not None:
            a = tc.weight_interpolation
            log.info("weight interpolation: final = %.2f * trained + %.2f * starting weights", a, 1 - a)
            mixed = interpolate({n: setup.trainable[n].detach() for n in mixed_names}, start_weights, a)
            with torch.no_grad():
                for n, t in mixed.items():
                    setup.trainable[n].copy_(t)
        model.eval()
        self._plan = plan
        return TrainResult(st.step, st.epoch, time.perf_counter() - start, st.best_epoch, st.history, st.skipped,
                           st.stopped_early, plan, precision_name(self.amp_dtype))

    def _end_of_epoch(self, st: LoopState, dev: list[Utterance], k: int, trainable: dict) -> None:
        dev_loss = self.dev_loss(dev, k)
        dev_eval = None
        if self.cfg.train.select_by == "wer":
            dev_eval = evaluate(self.adapter, dev, self.caches.for_units(k), self.terms, batch_size=self.cfg.eval.batch_size,
                                desc="dev", options=self.adapter.decode_options(self.cfg.eval))
        end_of_epoch(st, dev_loss, dev_eval, trainable, self.cfg.train)
        # Per epoch: train_loss, dev_loss (and dev_wer, dev_term_recall with train.select_by wer).
        self.tracker.log({f"epoch/{k}": v for k, v in st.history[-1].items() if k not in ("epoch", "step")}, st.step)
