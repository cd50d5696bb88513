"""The model interface every family adapter implements, and its typed decoding options.

The trainer, the evaluator, the recipe, `speechft eval/transcribe/export/serve` talk to a
model only through `ModelAdapter`; `load_adapter` (adapters.py) is the one way to get one.
Families: WhisperAdapter (models/whisper.py) and CTCAdapter (models/ctc/).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ContextManager, Protocol, runtime_checkable

from ..errors import SpeechftError

# Between the domain terms of a decoding prompt. A space, not ", ": the comma costs a token a term,
# so Whisper's 223 prompt tokens held 40 of the 70 medical terms and now hold 49. On 210
# held-out-voice dev sentences the adapted model decoded better with it (WER 6.00 -> 5.67%,
# recall 81.9 -> 83.3%; general dev 5.78 -> 5.55%; benchmarks/prompt_format.py). Training
# prompts stay comma lists (train/targets.py TRAIN_PROMPT_SEPARATOR).
PROMPT_TERM_SEPARATOR = " "


def join_terms(terms) -> str:
    """The terms as a prompt's text."""
    return PROMPT_TERM_SEPARATOR.join(terms)


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode. Each family uses the fields it knows and refuses the others when set.

    Whisper: num_beams (> 1 runs CTranslate2 beam search), max_new_tokens, prompt, language.
    CTC: num_beams, hotwords, hotword_weight, kenlm_model, lm_alpha, lm_beta.
    """

    num_beams: int = 1
    max_new_tokens: int = 128
    prompt: str | None = None  # Whisper: previous-text prompt (<|startofprev|> ...)
    language: str | None = None  # Whisper (multilingual models): decode in this language, not the model's
    hotwords: tuple[str, ...] = ()  # CTC: pyctcdecode hotwords
    hotword_weight: float = 10.0  # CTC: log-score bonus per hotword character (pyctcdecode's default)
    kenlm_model: str | None = None  # CTC: KenLM .arpa/.bin for the beam search
    lm_alpha: float = 0.5
    lm_beta: float = 1.0

    def __post_init__(self):
        if self.num_beams < 1:
            raise SpeechftError(f"num_beams={self.num_beams}: use 1 (greedy) or more (beam search)")
        if self.max_new_tokens < 1:
            raise SpeechftError(f"max_new_tokens={self.max_new_tokens}: must be >= 1")
        object.__setattr__(self, "hotwords", tuple(self.hotwords))
        object.__setattr__(self, "prompt", self.prompt or None)  # "" means no prompt
        object.__setattr__(self, "language", (self.language or "").strip().lower() or None)

    def replace(self, **changes: Any) -> "DecodeOptions":
        """A copy with `changes`; unknown option names are errors naming the valid ones."""
        return make_decode_options(self, **changes)

    def non_default(self) -> set[str]:
        """Names of the options set to something other than their default."""
        default = DecodeOptions()
        return {f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(default, f.name)}

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


DECODE_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(DecodeOptions))


@dataclass(frozen=True)
class TrainTarget:
    """What one training example must produce, and with which context.

    text: the transcript ("" for non-speech: the model must output nothing).
    prompt: Whisper: a previous-text prompt the example is given (its tokens carry no loss).
    segments: Whisper: ((start s, end s, text), ...) to learn with timestamp tokens; None:
        the plain no-timestamps target.
    """

    text: str
    prompt: str | None = None
    segments: tuple[tuple[float, float, str], ...] | None = None


def make_decode_options(base: DecodeOptions | None = None, **changes: Any) -> DecodeOptions:
    """DecodeOptions from `base` (default options when None) with `changes` applied.

    Raises:
        SpeechftError: an unknown option name (the valid ones are listed) or a bad value.
    """
    unknown = sorted(set(changes) - set(DECODE_OPTION_NAMES))
    if unknown:
        raise SpeechftError(f"unknown decoding option(s) {', '.join(unknown)}. Fix: use {', '.join(DECODE_OPTION_NAMES)}")
    return dataclasses.replace(base or DecodeOptions(), **changes)


def refuse_options(options: DecodeOptions, family: str, unsupported: set[str]) -> None:
    """Raise when `options` sets a field the family cannot use (instead of silently ignoring it)."""
    used = sorted(options.non_default() & unsupported)
    if used:
        raise SpeechftError(f"decoding option(s) {', '.join(used)} do not apply to {family} models. Fix: remove them")


@runtime_checkable
class ModelAdapter(Protocol):
    """What the trainer, evaluator and commands need from a model family.

    The encoder is a stack of units (freeze.py): `prefix_batch(audios, k)` gives the output of
    the lowest k units per utterance (what the frozen-prefix cache stores), `collate` batches
    them, and `loss` / `transcribe_hidden` run the rest.
    """

    family: str  # "whisper" | "ctc"
    model: Any  # the torch module (transformers PreTrainedModel)
    processor: Any
    length_sort_pool: int  # batches per length-sorted pool when batching for training
    encoder_precision: str  # "fp32" | "bf16": the frozen prefix's precision (precision.py), recorded when shipped

    def limits(self, data_cfg) -> Any:
        """validate.Limits for this model (window length, label length, vocabulary)."""

    def validation_limits(self, data_cfg) -> Any:
        """Limits for `speechft validate --model` (CTC: also the character vocabulary)."""

    def decode_options(self, eval_cfg) -> DecodeOptions:
        """Decoding options from a recipe's eval section."""

    def zero_training_baselines(self, terms: list[str], eval_cfg) -> dict[str, DecodeOptions]:
        """Baselines to beat without training, by report condition name."""

    def feature_settings(self) -> dict:
        """Feature-extraction settings (front end included): part of the activation cache's key."""

    def prefix_batch(self, audios: list, k: int) -> list:
        """Per-utterance outputs of the lowest k encoder units."""

    def collate(self, hiddens: list, device=None) -> Any:
        """Batch per-utterance prefix outputs."""

    def loss(self, hidden, k: int, targets: list[TrainTarget]) -> tuple[Any, int]:
        """(mean token loss, number of target tokens) from the lowest k units' output."""

    def transcribe_hidden(self, hidden, k: int, options: DecodeOptions) -> list[str]:
        """Decode a batch from the lowest k units' output."""

    def weights_held(self) -> ContextManager:
        """A block in which the caller promises not to change the weights, so decoding need not
        check them batch by batch (Whisper's beam search checks once per block)."""

    def transcribe_audio(self, audios: list, options: DecodeOptions) -> list[str]:
        """Decode 16 kHz mono waveforms."""

    def prepare_for_training(self, train_texts: list[str]) -> dict | None:
        """Adjust the output layer to the training text where the family needs it (CTC)."""

    def save(self, out_dir) -> None:
        """Write a folder that `load_adapter` (and transformers) can load."""
