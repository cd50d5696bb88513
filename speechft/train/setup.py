"""Training set-up: which parameters train at which learning rate, the optimizer, the learning
rate schedule, the fp16 loss scaler and the number of steps."""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass

import torch

from ..config import TrainConfig


@dataclass
class ParamGroup:
    """Parameters that train at one learning rate."""

    names: list[str]
    params: list[torch.nn.Parameter]
    lr: float


_ENCODER_BLOCK = re.compile(r"encoder\.layers\.(\d+)\.")


def encoder_depth(name: str, n_blocks: int) -> int:
    """How far below the output a parameter sits, counted in encoder blocks: 0 for the decoder
    and output head, 1 for the top encoder block (and the encoder's final norm), n_blocks for the
    lowest block, n_blocks + 1 below it (the feature encoder / conv stem and projection)."""
    m = _ENCODER_BLOCK.search(name)
    if m:
        return n_blocks - int(m.group(1))
    if ".encoder.layer_norm." in name or name.startswith("encoder.layer_norm."):
        return 1
    if "encoder." in name or "feature_extractor." in name or "feature_projection." in name:
        return n_blocks + 1
    return 0


def param_groups(model, trainable: set[str], tc: TrainConfig) -> list[ParamGroup]:
    """Which parameters train, and at which learning rate: the one place that decides it.

    Discriminative learning rates (train.lr_decay < 1, ULMFiT, Howard & Ruder 2018): the decoder
    and output head train at train.lr, each encoder block below them at lr x decay per block, so
    the upper encoder adapts gently and the lower one barely moves.

    Args:
        model: the torch module.
        trainable: names of every parameter that trains at some stage of the freeze schedule;
            one frozen at the moment gets no gradient, and the optimizer skips it.
        tc: the train section (train.lr, train.lr_decay).

    Returns:
        The groups, parameters in the model's order within each; one group at train.lr when
        train.lr_decay is 1.
    """
    named = [(n, p) for n, p in model.named_parameters() if n in trainable]
    if tc.lr_decay == 1.0:
        return [ParamGroup([n for n, _ in named], [p for _, p in named], tc.lr)]
    n_blocks = 1 + max((int(m.group(1)) for n, _ in model.named_parameters() if (m := _ENCODER_BLOCK.search(n))), default=-1)
    by_depth: dict[int, list] = {}
    for n, p in named:
        by_depth.setdefault(encoder_depth(n, n_blocks), []).append((n, p))
    return [ParamGroup([n for n, _ in group], [p for _, p in group], tc.lr * tc.lr_decay ** depth)
            for depth, group in sorted(by_depth.items())]


def warmup_linear_decay(warmup: int, total: int):
    """LambdaLR factor: linear warm-up over `warmup` steps, then linear decay to 0 at `total`."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return f


def step_counts(n_examples: int, tc: TrainConfig) -> tuple[int, int]:
    """(optimizer steps per epoch, steps in all) for `n_examples` training examples."""
    per_epoch = math.ceil(math.ceil(n_examples / tc.batch_size) / tc.grad_accum)
    total = per_epoch * tc.epochs if tc.max_steps < 0 else min(tc.max_steps, per_epoch * tc.epochs)
    return per_epoch, total


def amp_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype of training, None for fp32. GPU: bf16 where supported (auto), fp16 if
    asked. CPU: bf16 only if asked. On 2 EPYC cores with native bf16 a medical step ran 1.3x
    faster, but the run's peak memory rose from 2.7 to 3.9 GB and its dev WER (held-out voices,
    with the prompt) from 7.4% to 8.6%, so `auto` trains in fp32 there."""
    if precision == "fp32":
        return None
    if device.type != "cuda":
        return torch.bfloat16 if precision == "bf16" else None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def precision_name(dtype: torch.dtype | None) -> str:
    """"fp32", "bf16" or "fp16" for an `amp_dtype` result (what report.json records)."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


@contextlib.contextmanager
def deterministic_kernels(device: torch.device):
    """On the CPU, torch's deterministic kernels while training, so a recipe trains to the same
    bits every time. Otherwise the gradient of an indexed lookup (the decoder's position
    embeddings) is summed in a thread-dependent order: two medical runs' weights differed by up to
    1e-4, which left the HF rows alone but moved the int8 export's (test 6.35% vs 6.02% in runs
    090206 and 103717; non-speech clips with words 1 vs 0 in runs 125028 and 120502). The
    deterministic sum sorts the indices first; for a batch's position embeddings it took 0.7 ms
    against 3 ms (a step takes about 1 s). GPUs keep their fast kernels (several have no
    deterministic form there)."""
    if device.type != "cpu":
        yield
        return
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


@dataclass
class TrainSetup:
    """What the loop steps: the parameters, the optimizer, its schedule and the loss scaler."""

    trainable: dict[str, torch.nn.Parameter]  # by name: checkpoints, the best state, interpolation
    params: list[torch.nn.Parameter]  # all groups' parameters: clipping, the gradient sum over processes
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    steps_per_epoch: int
    total_steps: int


def build_setup(groups: list[ParamGroup], tc: TrainConfig, n_examples: int, device: torch.device,
                dtype: torch.dtype | None) -> TrainSetup:
    """AdamW over `groups`, warm-up + linear decay over the run's steps, and the loss scaler.

    Args:
        groups: from `param_groups`.
        tc: the train section (weight decay, warm-up, epochs, steps, batch size, accumulation).
        n_examples: training utterances (or packed clips).
        device: where the model is.
        dtype: the autocast dtype (`amp_dtype`); fp16 turns the loss scaler on.
    """
    trainable = {n: p for g in groups for n, p in zip(g.names, g.params)}
    params = [p for g in groups for p in g.params]
    # fused: one kernel for the whole update (measured 4x faster step on CPU than the loop).
    optimizer = torch.optim.AdamW([{"params": g.params, "lr": g.lr} for g in groups], lr=tc.lr,
                                  weight_decay=tc.weight_decay, fused=True)
    per_epoch, total = step_counts(n_examples, tc)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_linear_decay(int(tc.warmup_ratio * total), total))
    # fp16 needs loss scaling against underflow; for bf16/fp32 the scaler is a pass-through.
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    return TrainSetup(trainable, params, optimizer, scheduler, scaler, per_epoch, total)
