"""Experiment trackers (`train.report_to`): TensorBoard, Weights & Biases or MLflow, through
Accelerate's tracker classes (the API transformers' `report_to` and `accelerate.init_trackers` use).

What is logged: the training loss and learning rate per optimizer step, the dev metrics per
epoch, and the report's table at the end (eval/<set>/<condition>/<metric>). Tracking never stops
a run: a missing package or an unreachable service is a warning, W&B falls back to its offline
mode, MLflow to a file store in the run folder, and a tracker that fails later is switched off.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0  # s: an unreachable service must cost seconds, not a stalled run
WANDB_HOST = ("api.wandb.ai", 443)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


class Tracker:
    """One run's tracker; every method is a no-op when tracking is off or has failed."""

    def __init__(self, inner=None, kind: str = "none"):
        self._inner, self.kind = inner, kind

    @property
    def active(self) -> bool:
        return self._inner is not None

    def _call(self, what: str, *args, **kwargs) -> None:
        if self._inner is None:
            return
        try:
            getattr(self._inner, what)(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - a tracker must never stop training
            log.warning("train.report_to=%s: %s failed (%s: %s); tracking is off for the rest of the run",
                        self.kind, what, type(e).__name__, e)
            self._inner = None

    def log(self, values: dict[str, float], step: int | None = None) -> None:
        """Scalars at a step (None values are left out)."""
        self._call("log", {k: float(v) for k, v in values.items() if isinstance(v, (int, float))}, step=step)

    def log_config(self, config: dict) -> None:
        self._call("store_init_configuration", _flat(config))

    def log_report(self, eval_results: dict, step: int | None = None) -> None:
        """The report's numbers as eval/<set>/<condition>/<metric> scalars."""
        values = {f"eval/{s}/{c}/{m}": v for s, by_cond in eval_results.items() for c, r in by_cond.items()
                  for m, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.log(values, step)

    def finish(self) -> None:
        self._call("finish")
        self._inner = None


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out


def open_tracker(report_to: str, run_dir: Path, run_name: str) -> Tracker:
    """The tracker `train.report_to` asks for, started, or a no-op one (with a warning) when it
    cannot be used here. Only the main process should call it."""
    if report_to == "none":
        return Tracker()
    try:
        inner = _start(report_to, Path(run_dir), run_name)
    except Exception as e:  # noqa: BLE001 - missing package, bad credentials...: train anyway
        log.warning("train.report_to=%s cannot be used (%s: %s); training goes on without it. Fix: %s",
                    report_to, type(e).__name__, e, f"pip install {report_to}" if isinstance(e, ImportError) else "see the message")
        return Tracker()
    log.info("train.report_to=%s: logging to %s", report_to, getattr(inner, "logging_dir", None) or run_dir)
    return Tracker(inner, report_to)


def _start(report_to: str, run_dir: Path, run_name: str):
    from accelerate import PartialState
    from accelerate.tracking import MLflowTracker, TensorBoardTracker, WandBTracker

    # Accelerate's trackers log through its logger, which refuses to work before its state exists;
    # a single-process run never made one (distributed.get_dist makes it for launched runs only),
    # so `train.report_to=wandb` fell back to no tracker. A single process's state is cheap.
    PartialState()

    if report_to == "tensorboard":
        tracker = TensorBoardTracker(run_name, run_dir / "tensorboard")
    elif report_to == "wandb":
        import wandb  # noqa: F401 - fail here, clearly, when it is not installed

        if os.environ.get("WANDB_MODE") not in ("offline", "disabled") and not _reachable(*WANDB_HOST):
            log.warning("train.report_to=wandb: %s is unreachable; logging offline into %s (sync later with "
                        "`wandb sync`)", WANDB_HOST[0], run_dir / "wandb")
            os.environ["WANDB_MODE"] = "offline"
        tracker = WandBTracker(run_name, dir=str(run_dir))
    elif report_to == "mlflow":
        import mlflow  # noqa: F401

        uri = os.environ.get("MLFLOW_TRACKING_URI", "")
        parts = urlsplit(uri)
        if not uri or (parts.scheme in ("http", "https") and not _reachable(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))):
            if uri:
                log.warning("train.report_to=mlflow: %s is unreachable; logging to a file store in the run folder", uri)
            os.environ["MLFLOW_TRACKING_URI"] = (run_dir / "mlruns").resolve().as_uri()
            # MLflow 3 deprecates the file store but keeps it behind this switch; it needs no server or database.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        tracker = MLflowTracker(experiment_name=run_name, logging_dir=str(run_dir / "mlruns"), run_name=run_dir.name)
    else:
        raise ValueError(f"unknown tracker {report_to!r}")
    tracker.start()
    return tracker
