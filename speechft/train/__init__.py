"""The plain PyTorch training loop: AdamW, warm-up + linear decay, accumulation, clipping, dev
loss or WER after each epoch, best epoch kept, early stopping, gradual unfreezing, WiSE-FT.

In parts: setup.py (parameter groups, optimizer, schedule, scaler), epoch.py (one epoch),
selection.py (end of epoch), stages.py (gradual unfreezing), interpolate.py (weight
interpolation), checkpoint.py (checkpoint I/O), batching.py; trainer.py puts them in order.
The caller (the recipe) builds the freeze plan and the prefix caches and passes them in; what
training changed comes back in the TrainResult.
"""

from .batching import SORT_POOL_BATCHES, length_batches, seed_everything
from .checkpoint import CHECKPOINT_NAME, LoopState, load_checkpoint, save_checkpoint
from .interpolate import interpolate
from .stages import FreezeSchedule
from .trainer import Trainer, TrainResult

__all__ = ["CHECKPOINT_NAME", "SORT_POOL_BATCHES", "FreezeSchedule", "LoopState", "TrainResult", "Trainer", "interpolate",
           "length_batches", "load_checkpoint", "save_checkpoint", "seed_everything"]
