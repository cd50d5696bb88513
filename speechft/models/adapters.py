"""The one way to get a model adapter: `load_adapter(name, model_cfg)`."""

from __future__ import annotations

from pathlib import Path

from ..config import ModelConfig
from ..errors import SpeechftError
from .base import ModelAdapter


def adapter_for(loaded, model_cfg: ModelConfig) -> ModelAdapter:
    """Wrap a LoadedModel in the adapter of its family (config `model.family` may force one)."""
    family = loaded.family if model_cfg.family == "auto" else ("ctc" if model_cfg.family == "wav2vec2" else model_cfg.family)
    if family != loaded.family:
        raise SpeechftError(f"model.family={model_cfg.family} but {loaded.source} is a {loaded.family} model. Fix: set model.family=auto")
    if family == "whisper":
        from ..precision import resolve_precision
        from .whisper import WhisperAdapter

        return WhisperAdapter(loaded.model, loaded.processor, language=model_cfg.language, task=model_cfg.task,
                              numbers_as_digits=model_cfg.numbers_as_digits, feature_padding=model_cfg.feature_padding,
                              encoder_precision=resolve_precision(model_cfg.encoder_precision))
    from .ctc import CTCAdapter

    return CTCAdapter(loaded.model, loaded.processor)


def folder_model_config(name: str | None = None, language: str | None = None) -> ModelConfig:
    """ModelConfig for decoding `name` as it ships: a trained model folder decodes with the
    front end and encoder precision its report measured (models/shipped.py); anything else gets the defaults."""
    from .shipped import read_shipped

    model_cfg = ModelConfig(name=name, language=language) if name else ModelConfig(language=language)
    shipped = read_shipped(name) if name and Path(name).is_dir() else None
    if shipped is not None:
        model_cfg.feature_padding = shipped.feature_padding
        model_cfg.encoder_precision = shipped.encoder_precision
    return model_cfg


def load_adapter(name: str | None = None, model_cfg: ModelConfig | None = None) -> ModelAdapter:
    """Load a model by alias, local folder or hub id and wrap it in its family's adapter.

    Args:
        name: the model; defaults to `model_cfg.name`.
        model_cfg: family, language, task, front end and target style. Default:
            folder_model_config(name).

    Raises:
        SpeechftError: the model cannot be found or loaded, or is not of the configured family.
    """
    from .registry import load_model

    if model_cfg is None:
        model_cfg = folder_model_config(name)
    return adapter_for(load_model(name or model_cfg.name), model_cfg)
