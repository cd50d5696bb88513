"""Freeze policies: one pure function from (parameter names, policy) to the trainable set.

The encoder is seen as a stack of *units*, bottom-up: the feature encoder (Whisper: conv stem
and positional embeddings; wav2vec2 family: the CNN), [CTC: the feature projection], then one
unit per transformer block (the top block carries the encoder's final layer norm). A policy
freezes a prefix of that stack, which is what makes the frozen-prefix activation cache valid.

`lora` trains only the LoRA adapters that lora.py attached (peft's `lora_A`/`lora_B` tensors):
every pretrained weight stays frozen, and the encoder units below the lowest adapted one form
the cached prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import FreezeConfig
from .errors import SpeechftError

_LAYER = re.compile(r"encoder\.layers\.(\d+)\.")
_LORA = re.compile(r"\.lora_[AB]\.")  # peft names adapter tensors <module>.lora_A.<adapter>.weight


def is_lora_param(name: str) -> bool:
    """Whether `name` is a LoRA adapter tensor (peft's lora_A / lora_B) rather than a model weight."""
    return bool(_LORA.search(name))


def _base_prefix(names: list[str]) -> str:
    """`model.` for Whisper, `wav2vec2.` / `hubert.` / `wavlm.` / `data2vec_audio.` for CTC."""
    for n in names:
        if ".encoder.layers." in n:
            return n.split("encoder.layers.")[0]
    raise ValueError("no encoder blocks found: is this a Whisper or wav2vec2-family model?")


def encoder_units(names: list[str], family: str) -> list[list[str]]:
    """Parameter names grouped into encoder units, bottom-up (see module docstring)."""
    base = _base_prefix(names)
    n_layers = 1 + max(int(m.group(1)) for n in names if n.startswith(base) and (m := _LAYER.search(n)))
    layers = [[] for _ in range(n_layers)]
    stem, projection = [], []
    for n in names:
        if not n.startswith(base + "encoder.") and not (family == "ctc" and n.startswith(base)):
            continue
        m = _LAYER.search(n)
        if m and n.startswith(base + "encoder.layers."):
            layers[int(m.group(1))].append(n)
        elif family == "whisper":
            if n.startswith(base + "encoder.layer_norm."):
                layers[-1].append(n)
            else:  # conv1, conv2, embed_positions
                stem.append(n)
        elif n.startswith(base + "feature_extractor."):
            stem.append(n)
        else:  # feature_projection, masked_spec_embed, pos_conv_embed, encoder.layer_norm, adapter
            projection.append(n)
    units = [stem] + ([projection] if family == "ctc" else []) + layers
    return [u for u in units if u]


def frozen_unit_count(cfg: FreezeConfig, n_units: int, family: str, stage: int = 0) -> int:
    """How many encoder units (bottom-up) the policy freezes at a gradual-unfreezing `stage`."""
    n_below_blocks = 2 if family == "ctc" else 1  # stem (+ projection for CTC)

    def count(policy: str) -> int:
        if policy == "full":
            return 0
        if policy == "feature_encoder":
            return 1
        if policy == "lower":
            return min(n_units, n_below_blocks + cfg.layers)
        return n_units  # encoder

    if cfg.policy == "gradual":
        return max(0, count(cfg.gradual_start) - stage)
    return count(cfg.policy)


@dataclass
class FreezePlan:
    frozen: set[str]
    trainable: set[str]
    frozen_units: int  # encoder prefix length: what the activation cache may store
    n_units: int

    @property
    def encoder_fully_frozen(self) -> bool:
        return self.frozen_units == self.n_units


def plan_freeze(names: list[str], cfg: FreezeConfig, family: str, stage: int = 0) -> FreezePlan:
    """Pure: decide which parameter names are frozen. `family` is 'whisper' or 'ctc'."""
    units = encoder_units(names, family)
    if cfg.policy == "lora":
        return _lora_plan(names, units)
    k = frozen_unit_count(cfg, len(units), family, stage)
    frozen = {n for unit in units[:k] for n in unit}
    if family == "whisper" and cfg.policy == "lower" and cfg.decoder_layers:
        base = _base_prefix(names)
        frozen |= {n for n in names if (m := re.match(re.escape(base) + r"decoder\.layers\.(\d+)\.", n)) and int(m.group(1)) < cfg.decoder_layers}
    if cfg.token_embeddings and family == "whisper":
        # Tied to the output layer: frozen, the decoder can only recombine the pretrained
        # vocabulary's directions, which limits drift on general speech.
        frozen |= {n for n in names if n.endswith("decoder.embed_tokens.weight")}
    if family == "ctc" and k == len(units):  # `encoder` on CTC: everything but the output head
        base = _base_prefix(names)
        frozen |= {n for n in names if n.startswith(base)}
    return FreezePlan(frozen, set(names) - frozen, k, len(units))


def _lora_plan(names: list[str], units: list[list[str]]) -> FreezePlan:
    trainable = {n for n in names if is_lora_param(n)}
    if not trainable:
        raise SpeechftError("freeze.policy=lora but the model has no LoRA adapters. "
                            "Fix: attach them first with speechft.lora.attach_lora, as the recipe does")
    # Units below the lowest adapted one never change: they are the prefix the cache may store.
    k = next((i for i, unit in enumerate(units) if any(is_lora_param(n) for n in unit)), len(units))
    return FreezePlan(set(names) - trainable, trainable, k, len(units))


def apply_freeze(model, cfg: FreezeConfig, family: str, stage: int = 0) -> FreezePlan:
    """Set requires_grad on every parameter of `model` according to the policy."""
    params = dict(model.named_parameters())
    plan = plan_freeze(list(params), cfg, family, stage)
    for name, p in params.items():
        p.requires_grad_(name not in plan.frozen)
    return plan


def trainable_summary(model, plan: FreezePlan) -> str:
    """Trainable/total parameter counts and the trainable blocks, for the log."""
    params = dict(model.named_parameters())
    n_train = sum(params[n].numel() for n in plan.trainable)
    n_total = sum(p.numel() for p in params.values())
    blocks = sorted({_block_name(n) for n in plan.trainable})
    label = "LoRA adapter modules" if any(is_lora_param(n) for n in plan.trainable) else "trainable blocks"
    return (
        f"trainable parameters: {n_train:,} / {n_total:,} ({100 * n_train / max(n_total, 1):.1f}%); "
        f"frozen encoder units: {plan.frozen_units}/{plan.n_units}\n{label}: {', '.join(blocks)}"
    )


def _block_name(param_name: str) -> str:
    """`model.decoder.layers.3.fc1.weight` -> `model.decoder.layers.3`; a LoRA tensor -> its adapted
    module (`model.decoder.layers.3.fc1`); else drop the tensor name."""
    if is_lora_param(param_name):
        return _LORA.split(param_name)[0]
    m = re.match(r"(.*\blayers\.\d+)\.", param_name)
    return m.group(1) if m else param_name.rsplit(".", 1)[0]


def count_params(model, plan: FreezePlan) -> tuple[int, int]:
    params = dict(model.named_parameters())
    return sum(params[n].numel() for n in plan.trainable), sum(p.numel() for p in params.values())
