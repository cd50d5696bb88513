"""Precision of the frozen encoder's forward pass (`model.encoder_precision`): fp32 by default.

On a CPU with bf16 instructions (AVX512-BF16 or AMX), the frozen Whisper encoder runs 1.6x
faster under bf16 autocast (tiny.en on 2 EPYC cores: 0.30 -> 0.19 s a 30-s window; a cold
medical run computes ~625 windows: 11 min 24 s instead of 12 min 09 s). It is not the default:
the medical decoder trained on bf16 encoder outputs decoded dev sentences one by one as well
(7.4% vs 8.0%), but placed its timestamp tokens worse in long recordings of dev sentences through
the int8 export (faster-whisper's loop over a whole recording: 36 segments of 78 and a mean
boundary error of 5.7 s, against 79 and 0.10 s; benchmarks/long_audio_modes.py). `auto` is bf16
where the CPU has it natively and fp32 elsewhere (emulated bf16 is slower than fp32; on GPUs the
frozen encoder costs little). Training's own autocast is `train.precision` (train/setup.py amp_dtype).
"""

from __future__ import annotations

import contextlib

# torch is imported where used: config.py reads PRECISIONS, and loading a recipe should not load torch.
PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products in hardware (oneDNN's own test)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def resolve_precision(setting: str) -> str:
    """"fp32" or "bf16" for a setting of PRECISIONS: `auto` is bf16 on a CPU-only machine with
    native bf16, fp32 otherwise."""
    import torch

    if setting != "auto":
        return setting
    return "bf16" if not torch.cuda.is_available() and cpu_has_native_bf16() else "fp32"


def autocast_to(precision: str, device):
    """A block computing in `precision` ("fp32": as is) on `device` (a torch.device or its name)."""
    import torch

    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
