"""Pick the family adapter (Whisper or CTC) for a loaded model."""

from __future__ import annotations

from ..config import ModelConfig
from ..errors import SpeechftError


def adapter_for(loaded, model_cfg: ModelConfig):
    """Wrap a LoadedModel in the adapter of its family (config `model.family` may force one)."""
    family = loaded.family if model_cfg.family == "auto" else ("ctc" if model_cfg.family == "wav2vec2" else model_cfg.family)
    if family != loaded.family:
        raise SpeechftError(f"model.family={model_cfg.family} but {loaded.source} is a {loaded.family} model. Fix: set model.family=auto")
    if family == "whisper":
        from .whisper import WhisperAdapter

        return WhisperAdapter(loaded.model, loaded.processor, language=model_cfg.language, task=model_cfg.task,
                              numbers_as_digits=model_cfg.numbers_as_digits)
    from .ctc import CTCAdapter

    return CTCAdapter(loaded.model, loaded.processor)
