"""Gradual unfreezing, and the freeze plan and caches going in and out of the trainer."""

import logging

import pytest

from speechft.audio import file_sha1
from speechft.cache import PrefixCaches
from speechft.freeze import apply_freeze
from speechft.train import FreezeSchedule, Trainer


def test_gradual_schedule_frees_one_unit_per_stage(tiny_adapter, tiny_cfg, caplog):
    caplog.set_level(logging.INFO, logger="speechft")
    model = tiny_adapter().model
    cfg = tiny_cfg("freeze.policy=gradual", "freeze.gradual_unit=step", "freeze.gradual_every=2")
    schedule = FreezeSchedule(cfg.freeze, "whisper")
    plan = schedule.start(model)
    units = []
    for step in range(8):
        plan = schedule.at_step(model, plan, step)
        units.append(plan.frozen_units)
        assert {n for n, p in model.named_parameters() if not p.requires_grad} == plan.frozen
    assert units == [3, 3, 2, 2, 1, 1, 0, 0]  # stem + 2 blocks, freed top-down
    assert "gradual unfreezing: stage 1, frozen encoder units 3 -> 2" in caplog.text
    assert schedule.at_epoch(model, plan, 9) is plan  # stages count steps here


@pytest.mark.parametrize("policy", ["lower:1", "encoder"])
def test_other_policies_keep_stage_0(tiny_adapter, tiny_cfg, policy):
    model = tiny_adapter().model
    schedule = FreezeSchedule(tiny_cfg(f"freeze.policy={policy}").freeze, "whisper")
    plan = schedule.start(model)
    assert schedule.at_epoch(model, plan, 5) is plan and schedule.at_step(model, plan, 50) is plan


def test_fit_trains_on_the_callers_plan_and_caches_and_returns_the_final_plan(tiny_adapter, tiny_cfg, train_dev, tmp_path):
    cfg = tiny_cfg("freeze.policy=gradual", "train.epochs=2", "train.batch_size=4", "train.select_by=loss",
                   "train.checkpoint_every=0", "train.early_stopping_patience=10", "eval.batch_size=4")
    adapter = tiny_adapter()
    plan = apply_freeze(adapter.model, cfg.freeze, adapter.family)
    caches = PrefixCaches(tmp_path / "cache", adapter, enabled=cfg.train.cache)
    stage0 = caches.for_units(plan.frozen_units)
    result = Trainer(adapter, cfg, caches, plan=plan).fit(*train_dev)
    assert plan.frozen_units == 3  # the caller's plan object is not changed
    assert result.plan.frozen_units == 2 and result.epochs == 2  # epoch 2 ran at stage 1
    assert {n for n, p in adapter.model.named_parameters() if p.requires_grad} == result.plan.trainable
    distinct_audio = len({file_sha1(u.audio_filepath) for u in train_dev[0] + train_dev[1]})  # dev repeats some train clips
    assert caches.for_units(3) is stage0 and stage0.computed == distinct_audio  # the trainer built the caller's cache
    assert caches.for_units(2).computed == distinct_audio  # stage 1 trained and measured dev on depth 2
