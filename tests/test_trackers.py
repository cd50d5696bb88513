"""train.report_to: TensorBoard event files with the logged scalars; W&B and MLflow fall back to
their offline modes when the service is unreachable; a failing tracker never stops a run."""

import json
import logging

import pytest
from support import write_tiny_recipe

from speechft import trackers
from speechft.cli import main


def test_tensorboard_event_files_hold_the_logged_scalars(tiny_dataset, tiny_whisper_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    out = tmp_path / "out"
    assert main(["run", str(recipe), f"output_dir={out}", "train.report_to=tensorboard", "train.epochs=2",
                 "eval.deployed=false"]) == 0
    (folder,) = (out / "tensorboard").iterdir()
    events = EventAccumulator(str(folder))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "epoch/train_loss", "epoch/dev_loss", "eval/test/after/wer", "eval/test/before/wer"} <= tags
    report = json.loads((out / "report.json").read_text())
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, report["train"]["steps"] + 1))
    assert events.Scalars("eval/test/after/wer")[0].value == pytest.approx(report["eval"]["test"]["after"]["wer"])


def test_unreachable_wandb_logs_offline_with_a_warning(tmp_path, monkeypatch, caplog):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setattr(trackers, "_reachable", lambda host, port: False)
    with caplog.at_level(logging.WARNING):
        tracker = trackers.open_tracker("wandb", tmp_path, "tiny")
    assert tracker.active and "unreachable; logging offline" in caplog.text
    tracker.log({"train/loss": 1.5}, step=1)
    tracker.finish()
    assert any((tmp_path / "wandb").glob("offline-run-*"))


def test_unreachable_mlflow_logs_to_a_file_store_in_the_run_folder(tmp_path, monkeypatch, caplog):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setattr(trackers, "_reachable", lambda host, port: False)
    with caplog.at_level(logging.WARNING):
        tracker = trackers.open_tracker("mlflow", tmp_path, "tiny")
    assert tracker.active and "unreachable" in caplog.text
    tracker.log({"train/loss": 1.5}, step=1)
    tracker.finish()
    assert list((tmp_path / "mlruns").rglob("train/loss")) or list((tmp_path / "mlruns").rglob("*.db"))


def test_a_tracker_that_fails_is_switched_off_and_training_goes_on(caplog):
    class Broken:
        def log(self, values, step=None):
            raise ConnectionError("service went away")

    tracker = trackers.Tracker(Broken(), "wandb")
    with caplog.at_level(logging.WARNING):
        tracker.log({"train/loss": 1.0}, step=1)
        tracker.log({"train/loss": 0.9}, step=2)  # no second warning: it is off
    assert not tracker.active and caplog.text.count("tracking is off") == 1
    assert trackers.open_tracker("none", None, "x").active is False
