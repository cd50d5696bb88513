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
        from .whisper import WhisperAdapter

        return WhisperAdapter(loaded.model, loaded.processor, language=model_cfg.language, task=model_cfg.task,
                              numbers_as_digits=model_cfg.numbers_as_digits, feature_padding=model_cfg.feature_padding)
    from .ctc import CTCAdapter

    return CTCAdapter(loaded.model, loaded.processor)


def load_adapter(name: str | None = None, model_cfg: ModelConfig | None = None) -> ModelAdapter:
    """Load a model by alias, local folder or hub id and wrap it in its family's adapter.

    Args:
        name: the model; defaults to `model_cfg.name`.
        model_cfg: family, language, task, front end and target style. Default: ModelConfig(),
            with the front end a trained model folder records (models/shipped.py).

    Raises:
        SpeechftError: the model cannot be found or loaded, or is not of the configured family.
    """
    from .registry import load_model
    from .shipped import read_shipped

    if model_cfg is None:
        model_cfg = ModelConfig(name=name) if name else ModelConfig()
        shipped = read_shipped(name) if name and Path(name).is_dir() else None
        if shipped is not None:  # a trained model decodes with the front end its report measured
            model_cfg.feature_padding = shipped.feature_padding
    return adapter_for(load_model(name or model_cfg.name), model_cfg)
