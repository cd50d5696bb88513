"""Checkpoint I/O: the loop's state, the trainable weights, the optimizer, the schedule and
every random generator, written atomically and read back with checks."""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import SpeechftError
from ..io_utils import atomic_path

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
PAYLOAD_KEYS = ("loop", "params", "optimizer", "scheduler", "rng")
FIX = "Fix: start fresh (run it again without --resume), or pick another run to resume (output_dir=<its folder>)"


@dataclass
class LoopState:
    """Everything the loop needs to continue exactly where a checkpoint left it."""

    step: int = 0
    epoch: int = 0
    batch_index: int = 0  # next batch of the current epoch; 0 = the epoch is done
    epoch_rng_state: tuple | None = None  # batching RNG at the start of the current epoch
    losses: list = field(default_factory=list)
    history: list = field(default_factory=list)
    best_metric: float = math.inf
    best_epoch: int = -1
    best_state: dict | None = None
    stale: int = 0
    stopped_early: bool = False
    skipped: int = 0
    bad_in_a_row: int = 0


def save_checkpoint(folder, st: LoopState, trainable: dict, optimizer, scheduler, rng: random.Random) -> None:
    """Write model/optimizer/scheduler/RNG/loop state to `folder`/last.pt through
    `io_utils.atomic_path`: a reader (or a resumed run) only ever sees a complete checkpoint.

    Raises:
        SpeechftError: the disk is full or the folder is not writable.
    """
    payload = {
        "loop": st.__dict__,
        "params": {n: p.detach().clone() for n, p in trainable.items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                "batching": rng.getstate()},
    }
    with atomic_path(Path(folder) / CHECKPOINT_NAME) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(folder, trainable: dict, optimizer, scheduler, rng: random.Random) -> LoopState | None:
    """Restore the state saved by save_checkpoint; None when `folder` holds no checkpoint.

    Raises:
        SpeechftError: the file is truncated or unreadable, or was written for other weights
            or another freeze policy (naming the file and the fix); nothing is restored then.
    """
    path = Path(folder) / CHECKPOINT_NAME
    if not path.exists():
        log.warning("no checkpoint in %s: training starts from the beginning", folder)
        return None
    try:
        payload = torch.load(path, weights_only=False)
    except Exception as e:  # torch.load fails in many ways on a bad file (zip, pickle, EOF errors): all mean the same here
        first = str(e).split(". ")[0].splitlines()[0] if str(e) else ""  # torch's messages run on for lines
        raise SpeechftError(f"cannot read checkpoint {path}: it is truncated or not a speechft checkpoint "
                            f"({type(e).__name__}: {first}). {FIX}") from e
    problem = _mismatch(payload, trainable)
    if problem:
        raise SpeechftError(f"checkpoint {path} does not fit this run: {problem}. {FIX}")
    try:
        with torch.no_grad():
            for n, v in payload["params"].items():
                trainable[n].copy_(v)
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        torch.set_rng_state(payload["rng"]["torch"])
        np.random.set_state(payload["rng"]["numpy"])
        random.setstate(payload["rng"]["python"])
        # The batching RNG as it was after drawing the current epoch's batches: a resumed epoch
        # redraws them from epoch_rng_state, a new epoch continues from here.
        rng.setstate(payload["rng"]["batching"])
        st = LoopState(**payload["loop"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise SpeechftError(f"checkpoint {path} does not fit this run ({type(e).__name__}: {e}). {FIX}") from e
    log.info("resumed from %s at step %d (epoch %d, batch %d)", path, st.step, st.epoch, st.batch_index)
    return st


def _mismatch(payload, trainable: dict) -> str | None:
    """What makes `payload` unusable for these trainable weights, or None."""
    if not isinstance(payload, dict):
        return "it holds no speechft checkpoint"
    missing = [k for k in PAYLOAD_KEYS if k not in payload]
    if missing:
        return f"it lacks {', '.join(missing)}"
    params = payload["params"]
    if not isinstance(params, dict) or set(params) != set(trainable):
        names = set(params) if isinstance(params, dict) else set()
        missing, extra = sorted(set(trainable) - names), sorted(names - set(trainable))
        return (f"its trainable parameters differ (missing {len(missing)}, e.g. {missing[:2]}; unknown {len(extra)}, "
                f"e.g. {extra[:2]}): another model or freeze policy")
    for n, p in trainable.items():
        shape = tuple(getattr(params[n], "shape", ()))
        if shape != tuple(p.shape):
            return f"{n} has shape {shape}, the model {tuple(p.shape)}"
    fields = {f.name for f in dataclasses.fields(LoopState)}
    if not isinstance(payload["loop"], dict) or set(payload["loop"]) - fields:
        return "its loop state is not this version's"
    return None


class Checkpoints:
    """The run's checkpoint: its folder, how often it is written, and whose state it holds.

    Disabled (saving is a no-op) without a folder, with train.checkpoint_every=0, or on every
    process but the first; any process can load.
    """

    def __init__(self, folder, every: int, writer: bool, trainable: dict, optimizer, scheduler, rng: random.Random):
        self.folder = folder
        self.every = every
        self.enabled = folder is not None and every > 0 and writer
        self._state = (trainable, optimizer, scheduler, rng)

    def due(self, step: int) -> bool:
        """Whether a checkpoint is due after optimizer step `step` (inside an epoch)."""
        return self.enabled and step % self.every == 0

    def save(self, st: LoopState) -> None:
        """Write the checkpoint now (a no-op when disabled)."""
        if self.enabled:
            save_checkpoint(self.folder, st, *self._state)

    def load(self) -> LoopState | None:
        """Restore the last checkpoint; None without a folder or a checkpoint in it."""
        return None if self.folder is None else load_checkpoint(self.folder, *self._state)
