"""Recipe configuration: one flat YAML per domain loaded into typed dataclasses.

`load_config(path, overrides)` rejects unknown keys and wrong types, naming the key,
so a typo in a recipe fails in a second instead of silently training the wrong thing.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import SpeechftError

FREEZE_POLICIES = ("full", "feature_encoder", "encoder", "lower", "gradual", "lora")
# lora.target_modules default: attention projections and the feed-forward of every adapted block (lora.py)
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")  # CTranslate2
REPORT_TO = ("none", "tensorboard", "wandb", "mlflow")  # train.report_to: experiment trackers (trackers.py)
LONG_AUDIO = ("drop", "split", "align")  # data.long_audio: what to do with audio longer than the model's window


@dataclass
class DataConfig:
    train: str = ""
    dev: str = ""
    test: str = ""
    general: str | None = None  # real-speech regression set: forgetting is measured on it
    terms: str | None = None
    prepare: list[str] = field(default_factory=list)  # `speechft prepare` targets run before the recipe
    skip_invalid: bool = False  # train on the valid rest instead of stopping on bad data
    max_seconds: float = 30.0  # longer audio is dropped or split (Whisper's window)
    long_audio: str = "drop"  # drop | split: cut lines that carry `segments` at their boundaries (segment.py)
    # | align: also cut lines without segments, at pauses found by aligning a pretrained model's
    # word timestamps to the transcript (align/)
    align_model: str = "whisper-tiny.en"  # the aligner of data.long_audio: align (alias, CT2 or HF Whisper folder)
    root: str | None = None  # when set, audio paths must stay inside it
    # Replay against forgetting: everyday speech mixed into every training epoch so the decoder
    # keeps its ordinary-language prior while it learns the jargon (`speechft prepare everyday`).
    replay: str | None = None
    replay_size: int = 0  # utterances taken from `replay`, spread over the file; 0 = all
    # Join short training utterances into clips of up to this many seconds (0 = off): Whisper pads
    # every input to 30 s, so one packed clip costs one encoder pass instead of several (pack.py).
    pack_seconds: float = 0.0
    # Non-speech clips (`speechft prepare nonspeech`): `nonspeech` is evaluated (what does the
    # model say to silence and noise?), `nonspeech_train` is trained on with empty transcripts.
    nonspeech: str | None = None
    nonspeech_train: str | None = None
    nonspeech_train_size: int = 0  # clips taken from nonspeech_train, spread over the file; 0 = all
    # Plausibility: lines whose audio cannot be what the transcript says are dropped, each with
    # its own reason in the report (a cut-off clip, a transcript that belongs to another clip).
    min_seconds: float = 0.1  # shorter clips hold no speech; 0 = off
    # Characters of the normalised transcript per second of audio; 0 = off. Measured on
    # data/general/all.jsonl (548 real recorded prompts): min 1.10, 1st percentile 1.18, median 9.57,
    # 99th 17.88, max 19.77 (the slowest are single letters and digits with their lead-in silence);
    # the TTS sets (medical, everyday) span 7.9-23.6. Margins: 0.5 is under half the slowest real line,
    # 35 is 1.8x the fastest real line (1.5x the fastest TTS line).
    min_chars_per_second: float = 0.5
    max_chars_per_second: float = 35.0

    def __post_init__(self):
        for name in ("train", "dev", "test"):
            if not getattr(self, name):
                raise SpeechftError(f"data.{name} is required: the path of the {name} manifest (JSON Lines)")
        if self.nonspeech_train_size < 0:
            raise SpeechftError(f"data.nonspeech_train_size={self.nonspeech_train_size}: use 0 (all) or a positive count")
        if self.replay_size < 0:
            raise SpeechftError(f"data.replay_size={self.replay_size}: use 0 (all of data.replay) or a positive count")
        if not (self.pack_seconds == 0 or 0 < self.pack_seconds <= self.max_seconds):
            raise SpeechftError(f"data.pack_seconds={self.pack_seconds}: use 0 (off) or a length up to "
                                f"data.max_seconds ({self.max_seconds:g} s), e.g. 28 for Whisper")
        if self.long_audio not in LONG_AUDIO:
            raise SpeechftError(f"data.long_audio={self.long_audio!r}: use drop or split (split needs the lines' segments), or align")
        if not 0 <= self.min_seconds < self.max_seconds:
            raise SpeechftError(f"data.min_seconds={self.min_seconds}: use 0 (off) or a length below data.max_seconds ({self.max_seconds:g} s), e.g. 0.1")
        if self.min_chars_per_second < 0 or self.max_chars_per_second < 0 or (
                self.max_chars_per_second and self.min_chars_per_second >= self.max_chars_per_second):
            raise SpeechftError(f"data.min_chars_per_second={self.min_chars_per_second}, data.max_chars_per_second={self.max_chars_per_second}: "
                                "use 0 (off) or a range with min < max, e.g. 0.5 and 35")


@dataclass
class ModelConfig:
    name: str = "whisper-tiny.en"  # alias, local folder or hub id
    family: str = "auto"  # auto | whisper | ctc
    language: str | None = "en"  # Whisper: forced language (None for .en models is fine)
    task: str = "transcribe"
    numbers_as_digits: bool = True  # Whisper: train on targets with spoken numbers written as digits
    # Whisper's front end for training, evaluation and the HF serving path: "logmel" pads the
    # log-mel as faster-whisper (the deployed engine) does, "waveform" pads the waveform to 30 s
    # as transformers does. One choice throughout, so the report measures what is deployed.
    feature_padding: str = "waveform"
    # Precision of the frozen encoder's forward pass (the cached part): fp32, bf16, or auto (bf16
    # on a CPU with native bf16, 1.6x faster; fp32 elsewhere). fp32 by default: a decoder trained
    # on bf16 encoder outputs placed its timestamp tokens worse (precision.py). Recorded in the model folder.
    encoder_precision: str = "fp32"

    def __post_init__(self):
        from .precision import PRECISIONS

        if self.encoder_precision not in PRECISIONS:
            raise SpeechftError(f"model.encoder_precision={self.encoder_precision!r}: use {', '.join(PRECISIONS)}")
        if self.family not in ("auto", "whisper", "ctc", "wav2vec2"):
            raise SpeechftError(f"model.family={self.family!r}: use auto, whisper or ctc")
        if self.feature_padding not in ("logmel", "waveform"):
            raise SpeechftError(f"model.feature_padding={self.feature_padding!r}: use logmel (faster-whisper's, "
                                "what a deployed model sees) or waveform (transformers')")


@dataclass
class FreezeConfig:
    policy: str = "encoder"
    layers: int = 0  # `lower`: lowest N encoder blocks frozen
    decoder_layers: int = 0  # `lower` (Whisper): lowest M decoder blocks frozen too
    token_embeddings: bool = False  # Whisper: keep the token embeddings (= tied output layer) fixed
    gradual_start: str = "encoder"  # `gradual`: the frozen set to start from
    gradual_every: int = 1  # unfreeze one more block top-down every K units
    gradual_unit: str = "epoch"  # epoch | step

    def __post_init__(self):
        if ":" in self.policy:  # shorthand "lower:2"
            self.policy, n = self.policy.split(":", 1)
            self.layers = _parse_int("freeze.policy", n)
        if self.policy not in FREEZE_POLICIES:
            raise SpeechftError(f"freeze.policy={self.policy!r}: use one of {', '.join(FREEZE_POLICIES)}")
        if self.layers < 0 or self.decoder_layers < 0 or self.gradual_every < 1:
            raise SpeechftError("freeze.layers/decoder_layers must be >= 0 and freeze.gradual_every >= 1")
        if self.gradual_unit not in ("epoch", "step"):
            raise SpeechftError(f"freeze.gradual_unit={self.gradual_unit!r}: use epoch or step")
        if self.gradual_start == "lora":
            raise SpeechftError("freeze.gradual_start=lora: gradual unfreezing of LoRA adapters is not supported. Fix: "
                                "freeze.policy=lora with lora.encoder_from=N (adapters in encoder blocks N and up), or "
                                "freeze.policy=gradual without LoRA")
        if self.gradual_start not in ("feature_encoder", "encoder", "lower"):
            raise SpeechftError(f"freeze.gradual_start={self.gradual_start!r}: use feature_encoder, encoder or lower")


@dataclass
class LoraConfig:
    """`freeze.policy: lora`: low-rank adapters (peft) in place of fine-tuning the weights themselves."""

    rank: int = 32
    alpha: float = 64.0  # the delta is scaled by alpha / rank
    dropout: float = 0.05  # on the adapters' input, training only
    # Linear modules of an adapted block, by name inside the block (`self_attn.q_proj`, `fc1`) or
    # its last part (`q_proj`), shell-style wildcards allowed (`self_attn.*`).
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    # Encoder blocks N and up get adapters; -1 or null: none. The encoder below the lowest
    # adapted block stays frozen and cached (the whole encoder output with -1).
    encoder_from: int | None = -1
    decoder: bool = True  # adapters in every decoder block

    def __post_init__(self):
        if self.encoder_from is None:
            self.encoder_from = -1
        if self.rank < 1 or self.alpha <= 0:
            raise SpeechftError(f"lora.rank={self.rank}, lora.alpha={self.alpha}: use a rank >= 1 and alpha > 0, e.g. 32 and 64")
        if not 0.0 <= self.dropout < 1.0:
            raise SpeechftError(f"lora.dropout={self.dropout}: use a number in [0, 1), e.g. 0.05")
        if not self.target_modules:
            raise SpeechftError(f"lora.target_modules is empty. Fix: name linear modules, e.g. {', '.join(LORA_TARGETS)}")
        if self.encoder_from < -1:
            raise SpeechftError(f"lora.encoder_from={self.encoder_from}: use a block index >= 0, or -1 (no encoder adapters)")
        if self.encoder_from == -1 and not self.decoder:
            raise SpeechftError("lora.encoder_from=-1 and lora.decoder=false leave nothing to adapt. "
                                "Fix: lora.decoder=true, or lora.encoder_from=N")


@dataclass
class TrainConfig:
    epochs: int = 3
    max_steps: int = -1  # optimizer steps; -1 = run all epochs
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 1234
    early_stopping_patience: int = 2  # epochs without dev improvement
    select_by: str = "wer"  # dev metric that picks the best checkpoint: wer | loss
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (autocast; auto: bf16 on GPUs that have it, fp32 on the CPU)
    gradient_checkpointing: bool = False  # GPU only: trade compute for memory on large models
    cache: bool = True  # frozen-prefix activation cache
    threads: int = 0  # torch threads; 0 = all cores
    checkpoint_every: int = 50  # optimizer steps between checkpoints (also one per epoch); 0 = none
    max_nonfinite_batches: int = 5  # batches with NaN/Inf loss in a row before the run stops
    # WiSE-FT (Wortsman et al., 2022): the final weights are a * trained + (1 - a) * pretrained.
    # Below 1 it gives back part of the domain gain for less forgetting of general speech; 1 = off.
    weight_interpolation: float = 1.0
    report_to: str = "none"  # none | tensorboard | wandb | mlflow: an experiment tracker (trackers.py)
    # Discriminative learning rates: each encoder block below the decoder trains at lr x lr_decay per block (1 = off).
    lr_decay: float = 1.0
    # Prompt-aware training: this share of examples carries a prompt of domain terms (train/targets.py).
    prompt_rate: float = 0.0
    # This share of packed clips learns Whisper's timestamp tokens, so long-form decoding keeps working.
    timestamp_rate: float = 0.0

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise SpeechftError("train.epochs, train.batch_size and train.grad_accum must be >= 1")
        if not 0 < self.lr < float("inf"):  # also refuses nan, which compares false either way
            raise SpeechftError(f"train.lr={self.lr}: must be a number > 0. Fix: e.g. train.lr=3e-4")
        if not 0.0 <= self.warmup_ratio <= 1.0:
            raise SpeechftError(f"train.warmup_ratio={self.warmup_ratio}: use a share in [0, 1], e.g. 0.1")
        if self.max_steps == 0 or self.max_steps < -1:
            raise SpeechftError(f"train.max_steps={self.max_steps}: use a step count >= 1, or -1 to run every epoch")
        if self.select_by not in ("wer", "loss"):
            raise SpeechftError(f"train.select_by={self.select_by!r}: use wer or loss")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise SpeechftError(f"train.precision={self.precision!r}: use auto, fp32, bf16 or fp16")
        if self.report_to not in REPORT_TO:
            raise SpeechftError(f"train.report_to={self.report_to!r}: use one of {', '.join(REPORT_TO)}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise SpeechftError(f"train.lr_decay={self.lr_decay}: use a factor in (0, 1]; 1 trains every block at train.lr")
        for name in ("prompt_rate", "timestamp_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SpeechftError(f"train.{name}={getattr(self, name)}: use a share in [0, 1] (0 = off)")
        if not 0.0 < self.weight_interpolation <= 1.0:
            raise SpeechftError(f"train.weight_interpolation={self.weight_interpolation}: use a number in (0, 1]; 1 keeps the trained weights")


@dataclass
class EvalConfig:
    batch_size: int = 16  # 32 is no faster on CPU and peaks ~0.5 GB higher
    num_beams: int = 1  # > 1: Whisper beam search in CTranslate2 on the cached encoder output (models/ct2/beam.py)
    max_new_tokens: int = 128
    prompted: bool = True  # also evaluate the pretrained model with the terms as a decoding prompt
    # Where the prompt-only baseline runs: the domain test set is the baseline to beat; on
    # `general` it shows what prompting costs everyday speech (decoding with a 200-term prompt
    # is about 2.5x slower, so it is opt-in).
    prompted_sets: list[str] = field(default_factory=lambda: ["test"])
    max_prompt_terms: int = 200  # Whisper's prompt holds at most ~223 tokens
    after_prompted: bool = True  # also evaluate the adapted model with the terms prompt (Whisper)
    # Whether the model ships with the terms prompt: auto = whichever decodes dev (held-out voices) better.
    ship_prompt: str = "auto"
    # Whisper: decode test, long recordings and non-speech through the CTranslate2 export with
    # faster-whisper, as `speechft serve` does (the report's deployed rows).
    deployed: bool = True
    long_utterances: int = 48  # test utterances joined into 1-3 minute recordings for the `long` set; 0 = none

    def __post_init__(self):
        unknown = sorted(set(self.prompted_sets) - {"test", "general"})
        if unknown:
            raise SpeechftError(f"eval.prompted_sets={self.prompted_sets!r}: {', '.join(unknown)} unknown; use test and/or general")
        if self.ship_prompt not in ("auto", "always", "never"):
            raise SpeechftError(f"eval.ship_prompt={self.ship_prompt!r}: use auto (chosen on dev), always or never")
        if self.long_utterances < 0:
            raise SpeechftError(f"eval.long_utterances={self.long_utterances}: use 0 (no long recordings) or a count")
        # Checked when the recipe loads: a bad value found after the prepare stage costs minutes.
        if self.batch_size < 1 or self.num_beams < 1 or self.max_new_tokens < 1:
            raise SpeechftError(f"eval.batch_size={self.batch_size}, eval.num_beams={self.num_beams}, eval.max_new_tokens="
                                f"{self.max_new_tokens}: each must be >= 1. Fix: e.g. eval.num_beams=5")


@dataclass
class ExportConfig:
    format: str = "none"  # none | ct2
    # auto: int8 when it decodes dev (held-out voices) within half of max_wer_gap of the report's
    # shipped row, else float32 (recipe/runner.py, choose_quantization); or a CTranslate2 type.
    quantization: str = "auto"
    max_wer_gap: float = 0.01

    def __post_init__(self):
        if self.format not in ("none", "ct2"):
            raise SpeechftError(f"export.format={self.format!r}: use none or ct2")
        if self.quantization != "auto" and self.quantization not in QUANTIZATIONS:
            raise SpeechftError(f"export.quantization={self.quantization!r}: use auto or one of {', '.join(QUANTIZATIONS)}")


@dataclass
class RecipeConfig:
    name: str = "recipe"
    output_dir: str | None = None  # default runs/<name>/<timestamp>
    resume: bool = False  # continue the unfinished run (output_dir, or the newest under runs/<name>)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)  # used by freeze.policy: lora
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def __post_init__(self):
        if self.freeze.policy == "gradual" and self.lora != LoraConfig():
            raise SpeechftError("freeze.policy=gradual with a lora section: gradual unfreezing of LoRA adapters is not "
                                "supported. Fix: freeze.policy=lora (lora.encoder_from picks the adapted encoder blocks), "
                                "or drop the lora section")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _parse_int(key: str, value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SpeechftError(f"{key}={value!r}: expected an integer") from None


def _check_type(key: str, value, hint):
    """Return `value` coerced to `hint`, or raise naming the key."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list):
            raise SpeechftError(f"{key}: expected a list, got {value!r}")
        return [_check_type(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. a model name "7" or a quantization written bare
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise SpeechftError(f"{key}: expected {hint.__name__}, got {value!r} ({type(value).__name__})")
    return value


def build_dataclass(cls, values: dict, prefix: str = ""):
    """Build dataclass `cls` from a mapping: unknown keys and wrong types are errors naming the key
    (`prefix.key`) and listing the valid keys; nested dataclass fields are built recursively.

    Raises:
        SpeechftError: an unknown key, a wrong type, or a value its __post_init__ rejects.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise SpeechftError(
            f"unknown config key {where}{unknown[0]}. Valid keys{' in ' + prefix if prefix else ''}: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise SpeechftError(f"{key}: expected a mapping of keys, got {value!r}")
            kwargs[name] = build_dataclass(hint, value, key)
        else:
            kwargs[name] = _check_type(key, value, hint)
    return cls(**kwargs)


def apply_override(values: dict, override: str) -> None:
    """Apply one `a.b=value` override in place; the value is parsed as YAML (so 3 is an int)."""
    if "=" not in override:
        raise SpeechftError(f"override {override!r}: expected key=value, e.g. train.max_steps=20")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    node = values
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SpeechftError(f"override {override!r}: {part} is not a section")
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""


def load_config(path: str | Path | None, overrides: list[str] = ()) -> RecipeConfig:
    """Load a recipe YAML and apply `key=value` overrides.

    Relative data paths are kept as written: they resolve against the working directory,
    as in the recipe's header command (run from the repository root).

    Raises:
        SpeechftError: missing file, invalid YAML, unknown key or wrong type (naming the key).
    """
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise SpeechftError(f"recipe not found: {path}. Fix: pass a recipe YAML, e.g. recipes/medical/recipe.yaml")
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise SpeechftError(f"recipe {path} is not valid YAML: {e}") from None
        if not isinstance(values, dict):
            raise SpeechftError(f"recipe {path}: expected a mapping of sections at the top level")
    for override in overrides:
        apply_override(values, override)
    return build_dataclass(RecipeConfig, values, "")


def save_config(cfg: RecipeConfig, path: str | Path) -> None:
    """Write the resolved config (every key, defaults included) as YAML."""
    from .io_utils import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
