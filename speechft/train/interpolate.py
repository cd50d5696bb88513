"""WiSE-FT weight interpolation (Wortsman et al., 2022), as a pure function over state dicts."""

from __future__ import annotations

import re

import torch

_LORA_DOWN = re.compile(r"\.lora_A\.")  # peft's LoRA down-projection: <module>.lora_A.<adapter>.weight


def interpolated_names(names: list[str]) -> list[str]:
    """The trainable tensors that weight interpolation mixes, in the given order.

    All of them, except LoRA down-projections: a LoRA delta is B @ A * scale and B starts at
    zero, so mixing B alone scales the delta by alpha, which is what interpolating the merged
    weights towards the pretrained ones means; mixing A as well, towards its random
    initialisation, would bend the delta towards a random direction instead.

    Args:
        names: the trainable parameter names.

    Returns:
        The names to interpolate; without LoRA tensors, all of `names`.
    """
    return [n for n in names if not _LORA_DOWN.search(n)]


def interpolate(trained: dict[str, torch.Tensor], start: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """alpha * trained + (1 - alpha) * start, tensor by tensor; the inputs are left unchanged.

    Args:
        trained: the fine-tuned tensors, by parameter name.
        start: the tensors before fine-tuning, under the same names.
        alpha: weight of the trained tensors, in [0, 1] (1 returns copies of `trained`).

    Returns:
        New tensors under the same names.

    Raises:
        ValueError: the two dicts hold different names or shapes, or alpha is outside [0, 1].
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha}: use a number in [0, 1]")
    if trained.keys() != start.keys():
        raise ValueError(f"trained and start weights differ in names: {sorted(set(trained) ^ set(start))[:5]}")
    for name, t in trained.items():
        if t.shape != start[name].shape:
            raise ValueError(f"{name}: trained shape {tuple(t.shape)}, start shape {tuple(start[name].shape)}")
    # Scale, then add the scaled start weights in one kernel (add's alpha=): the trainer's final
    # weights depend on this exact rounding order, which resumed and repeated runs must share.
    return {name: t.mul(alpha).add(start[name], alpha=1 - alpha) for name, t in trained.items()}
