"""Gradual unfreezing: which freeze stage is in force at an epoch or step, applied to the model."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..config import FreezeConfig
from ..freeze import FreezePlan, apply_freeze, plan_freeze

log = logging.getLogger(__name__)

LAST_STAGE = 10**6  # beyond any model's unit count: the stage at which gradual unfreezing has freed all it will


@dataclass(frozen=True)
class FreezeSchedule:
    """The freeze policy over the course of training.

    Stage 0 is the policy's own plan. With `freeze.policy: gradual`, stage s frees s more
    encoder units top-down, one stage every `freeze.gradual_every` epochs or optimizer steps
    (`freeze.gradual_unit`); any other policy stays at stage 0.
    """

    cfg: FreezeConfig
    family: str

    def ever_trainable(self, names: list[str]) -> set[str]:
        """The parameter names that train at some stage (the optimizer holds all of them)."""
        return plan_freeze(names, self.cfg, self.family, stage=LAST_STAGE).trainable

    def start(self, model) -> FreezePlan:
        """Apply stage 0 to `model` (requires_grad per parameter) and return its plan."""
        return apply_freeze(model, self.cfg, self.family, stage=0)

    def at_epoch(self, model, plan: FreezePlan, epoch: int) -> FreezePlan:
        """The plan in force for 1-based `epoch` when stages count epochs; `plan` otherwise."""
        if self.cfg.gradual_unit != "epoch":
            return plan
        return self._advance(model, plan, (epoch - 1) // self.cfg.gradual_every)

    def at_step(self, model, plan: FreezePlan, step: int) -> FreezePlan:
        """The plan in force after `step` optimizer steps when stages count steps; `plan` otherwise."""
        if self.cfg.gradual_unit != "step":
            return plan
        return self._advance(model, plan, step // self.cfg.gradual_every)

    def _advance(self, model, plan: FreezePlan, stage: int) -> FreezePlan:
        if self.cfg.policy != "gradual":
            return plan
        new = apply_freeze(model, self.cfg, self.family, stage)
        if new.frozen_units != plan.frozen_units:
            log.info("gradual unfreezing: stage %d, frozen encoder units %d -> %d", stage, plan.frozen_units, new.frozen_units)
        return new
