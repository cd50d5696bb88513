"""LoRA adapters (peft): attach them to a Whisper model, save them alone, merge them into it.

`freeze.policy: lora` trains low-rank adapters (peft's LoRA) on the linear modules that the
`lora` section names, in the decoder blocks and/or the encoder blocks from `lora.encoder_from`
up; every pretrained weight stays frozen (freeze.py trains the lora_A/lora_B tensors only).

peft injects the adapters into the model in place, so the family adapter runs it unchanged.
Parameter names change only inside adapted modules (`.base_layer.`, `.lora_A.default.`), so
the encoder units below the lowest adapted block keep their names, their cache fingerprint and
their cached activations.

A LoRA run folder holds both forms: `adapter/` (peft's save_pretrained: the adapters alone, a
few MB, with a model card) and `model/` (the adapters merged into the weights, a plain
transformers folder like any run's, which export, serving and the parity check read).
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import warnings
from fnmatch import fnmatchcase
from pathlib import Path

import torch

from .config import LoraConfig, RecipeConfig
from .errors import SpeechftError
from .io_utils import atomic_write_text, replace_dir
from .models.whisper import WhisperAdapter

log = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"  # in the run folder, beside model/
# Whisper's training loss computes cross-attention from these two projections' weights directly
# (models/whisper.py, the reassociated cross-attention, used for targets up to 48 tokens): an
# adapter on them would be bypassed in training and still act in decoding.
NOT_ADAPTABLE = ("encoder_attn.k_proj", "encoder_attn.v_proj")
_BLOCK = re.compile(r"^(?P<stack>(?:.*\.)?(?:encoder|decoder))\.layers\.(?P<index>\d+)\.(?P<inner>.+)$")


def lora_targets(linear_names: list[str], cfg: LoraConfig) -> list[str]:
    """Pure: the linear modules that get adapters.

    Args:
        linear_names: the names of the model's nn.Linear modules (`model.decoder.layers.0.fc1`).
        cfg: the lora section: target_modules (matched against a module's name inside its block,
            `self_attn.q_proj`, or that name's last part, `q_proj`; shell wildcards allowed),
            encoder_from and decoder.

    Returns:
        The full module names, in the order given.

    Raises:
        SpeechftError: lora.encoder_from beyond the encoder's last block, or a target pattern
            that names no linear module of the adapted blocks (listing those it could name).
    """
    blocks = [(m["stack"].endswith("encoder"), int(m["index"]), m["inner"], n) for n in linear_names if (m := _BLOCK.match(n))]
    n_encoder = 1 + max((i for enc, i, _, _ in blocks if enc), default=-1)
    if cfg.encoder_from >= n_encoder:
        raise SpeechftError(f"lora.encoder_from={cfg.encoder_from}: the encoder has {n_encoder} blocks (0-{n_encoder - 1}). "
                            "Fix: a block index below that, or -1 for no encoder adapters")
    adapted = [(inner, n) for enc, i, inner, n in blocks
               if (cfg.encoder_from >= 0 and i >= cfg.encoder_from if enc else cfg.decoder)]
    chosen: set[str] = set()
    for pattern in cfg.target_modules:
        hits = {n for inner, n in adapted if inner not in NOT_ADAPTABLE
                and (fnmatchcase(inner, pattern) or fnmatchcase(inner.rsplit(".", 1)[-1], pattern))}
        if not hits:
            known = sorted({inner for inner, _ in adapted} - set(NOT_ADAPTABLE))
            why = (f" ({' and '.join(NOT_ADAPTABLE)} cannot carry adapters: Whisper's training loss reads their weights directly)"
                   if any(fnmatchcase(x, pattern) for x in NOT_ADAPTABLE) else "")
            raise SpeechftError(f"lora.target_modules: {pattern!r} names no linear module of the adapted blocks{why}. "
                                f"Fix: use names such as {', '.join(known)}")
        chosen |= hits
    return [n for n in linear_names if n in chosen]


class LoraWhisperAdapter(WhisperAdapter):
    """A WhisperAdapter whose model carries peft LoRA adapters (see `attach_lora`).

    `save` writes the merged model, so everything that converts or exports the live model
    (the CTranslate2 beam search of evaluation, model/) sees the adapted weights as a plain
    transformers model. `peft_model` is None once `merge` has folded the adapters in.
    """

    peft_model = None

    def save(self, out_dir) -> None:
        """The model with the adapters merged in, written as WhisperAdapter.save writes any model.

        The live model keeps its adapters: a merged copy is saved (it briefly doubles the
        model's memory).
        """
        if self.peft_model is None:
            return super().save(out_dir)
        live = self.model
        self.model = copy.deepcopy(self.peft_model).merge_and_unload()
        try:
            super().save(out_dir)
        finally:
            self.model = live

    def save_adapter(self, out_dir) -> None:
        """The adapters alone, as peft's save_pretrained writes them (adapter_config.json and
        adapter_model.safetensors), loadable with PeftModel.from_pretrained on the base model."""
        self.peft_model.save_pretrained(str(out_dir))

    def merge(self) -> None:
        """Fold the adapters into the weights in place (peft's merge_and_unload): afterwards the
        model is a plain transformers model and `save` writes it as it is."""
        if self.peft_model is not None:
            self.model = self.peft_model.merge_and_unload()
            self.peft_model = None


def attach_lora(adapter, cfg: RecipeConfig):
    """With freeze.policy=lora, attach LoRA adapters to the adapter's model (in place) as the
    lora section says; any other policy returns `adapter` unchanged.

    Args:
        adapter: the family adapter (Whisper only).
        cfg: the recipe config (freeze.policy, lora, model, train.seed).

    Returns:
        A LoraWhisperAdapter over the same model object, or `adapter` itself.

    Raises:
        SpeechftError: a model that is not Whisper, or a lora section that does not fit the
            model (see `lora_targets`).
    """
    if cfg.freeze.policy != "lora":
        return adapter
    if adapter.family != "whisper":
        raise SpeechftError(f"freeze.policy=lora supports Whisper models; {cfg.model.name} is a {adapter.family} model. "
                            "Fix: freeze.policy=encoder or lower for CTC models")
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    model = adapter.model
    targets = lora_targets([n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)], cfg.lora)
    peft_cfg = PeftLoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                              target_modules=targets, bias="none")
    device = next(model.parameters()).device
    # lora_A's random initialisation from the run's seed alone, whatever ran before it.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.train.seed)
        peft_model = get_peft_model(model, peft_cfg)
    out = LoraWhisperAdapter(peft_model.base_model.model, adapter.processor, language=cfg.model.language, task=cfg.model.task,
                             numbers_as_digits=cfg.model.numbers_as_digits, feature_padding=cfg.model.feature_padding,
                             encoder_precision=adapter.encoder_precision)
    out.peft_model = peft_model
    log.info("LoRA: rank %d, alpha %g, dropout %g on %d modules (%s)", cfg.lora.rank, cfg.lora.alpha, cfg.lora.dropout,
             len(targets), ", ".join(cfg.lora.target_modules))
    return out


def adapter_card(base_model: str, results_table: str, cfg: LoraConfig) -> str:
    """The adapter folder's README.md: its base model, how to use it, and the run's table."""
    return "\n".join([
        "---",
        "library_name: peft",
        f"base_model: {base_model}",
        "tags: [speechft, automatic-speech-recognition, lora]",
        "---",
        f"# LoRA adapter for `{base_model}` (speechft)",
        "",
        f"Rank {cfg.rank}, alpha {cfg.alpha:g}, dropout {cfg.dropout:g}; target modules {', '.join(cfg.target_modules)}; "
        f"encoder blocks from {cfg.encoder_from if cfg.encoder_from >= 0 else '(none)'}, decoder {'yes' if cfg.decoder else 'no'}.",
        f"Merge it into its base model with `speechft merge --base {base_model} --adapter <this folder> --out <folder>`, "
        "or load it with `peft.PeftModel.from_pretrained(base, <this folder>)`. The run's `model/` folder holds it merged.",
        "",
        "WER and term recall on held-out data, before and after adaptation (normalised text, jiwer):",
        "",
        results_table,
        "",
    ])


def save_outputs(adapter, run_dir, base_model: str, results_table: str, cfg: LoraConfig) -> None:
    """LoRA runs: write `run_dir`/adapter/ (the adapters alone, with a model card), then merge
    them into the model, whose `save` then writes model/ like any run's. Other adapters: no-op.

    Args:
        adapter: the run's adapter (a LoraWhisperAdapter for LoRA runs).
        run_dir: the run folder.
        base_model: the model name the run started from (the recipe's model.name).
        results_table: the before/after table of the report, for the model card.
        cfg: the lora section, for the model card.
    """
    if not isinstance(adapter, LoraWhisperAdapter) or adapter.peft_model is None:
        return
    tmp = Path(run_dir) / f".{ADAPTER_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)  # a killed earlier attempt
    adapter.save_adapter(tmp)
    atomic_write_text(tmp / "README.md", adapter_card(base_model, results_table, cfg))
    replace_dir(tmp, Path(run_dir) / ADAPTER_DIR)
    adapter.merge()


def merge_adapter(base: str, adapter_dir, out_dir) -> Path:
    """Merge a peft adapter folder into its base model and save the result as a model folder.

    Args:
        base: the base model: alias, local folder or hub id.
        adapter_dir: a folder written by peft's save_pretrained (a LoRA run's adapter/, or one
            made elsewhere with get_peft_model(...).save_pretrained).
        out_dir: where to write the merged model (replaced if it exists).

    Returns:
        `out_dir`.

    Raises:
        SpeechftError: the folder is missing or not a peft adapter, or the adapter was made
            for another base model (other module names or shapes).
    """
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict, load_peft_weights

    from .models.adapters import load_adapter

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        what = "does not exist" if not adapter_dir.exists() else "has no adapter_config.json"
        raise SpeechftError(f"adapter folder {adapter_dir} {what}. Fix: pass the adapter/ folder of a LoRA run, "
                            "or a folder written by peft's save_pretrained")
    adapter = load_adapter(base)
    named = _named_base(adapter_dir)
    fix = "Fix: pass the base model the adapter was trained on as --base" + (f" (its adapter_config.json names {named})" if named else "")
    try:
        saved = load_peft_weights(str(adapter_dir), device="cpu")
        with warnings.catch_warnings():  # peft warns of missing keys; the check below says it once, with the fix
            warnings.simplefilter("ignore")
            peft_model = PeftModel.from_pretrained(adapter.model, str(adapter_dir))
    except Exception as e:  # peft and torch fail in many ways on a foreign adapter (ValueError, RuntimeError, KeyError)
        raise SpeechftError(f"cannot load adapter {adapter_dir} onto {base}: {_first_reason(e)}. {fix}") from e
    # peft loads non-strictly: a base with other blocks leaves adapters unloaded or tensors unused.
    expected = set(get_peft_model_state_dict(peft_model))
    unused, missing = sorted(set(saved) - expected), sorted(expected - set(saved))
    if unused or missing:
        why = ([f"{len(unused)} of its tensors match no module of the model (e.g. {unused[0]})"] if unused else []) + (
            [f"{len(missing)} adapted tensors of the model are not in it (e.g. {missing[0]})"] if missing else [])
        raise SpeechftError(f"adapter {adapter_dir} does not fit {base}: {'; '.join(why)}. {fix}")
    adapter.model = peft_model.merge_and_unload()
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    adapter.save(tmp)
    replace_dir(tmp, out_dir)
    return out_dir


def _first_reason(e: Exception) -> str:
    """The telling line of a peft/torch error: torch puts `size mismatch for ...` on the second line."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    reason = next((line for line in lines if "mismatch" in line or "not found" in line), lines[0] if lines else type(e).__name__)
    return reason.rstrip(".:")


def _named_base(adapter_dir: Path) -> str | None:
    try:
        return json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None
