"""Hugging Face Whisper folder -> CTranslate2 folder (faster-whisper's format).

The conversion is ctranslate2's own `TransformersConverter`; the tokenizer and feature
settings are copied next to `model.bin`, so `faster_whisper.WhisperModel(out_dir)` and the
Wyoming server for Home Assistant load the folder as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...config import QUANTIZATIONS
from ...errors import SpeechftError

# Beside model.bin: faster-whisper reads tokenizer.json (else it downloads one from the hub)
# and preprocessor_config.json (mel bins); normalizer.json serves English scoring tools;
# speechft_decoding.json is the decoding the model's report measured (models/shipped.py).
ASSET_FILES = ("tokenizer.json", "preprocessor_config.json", "normalizer.json", "speechft_decoding.json")
DEFAULT_MEL_BINS = 80  # faster-whisper's default when preprocessor_config.json is absent


def check_quantization(quantization: str) -> None:
    """Raises SpeechftError naming the valid types when `quantization` is not one."""
    if quantization not in QUANTIZATIONS:
        raise SpeechftError(f"quantization={quantization!r} is not supported. Fix: use one of {', '.join(QUANTIZATIONS)}")


def convert_to_ct2(src: Path, out: Path, quantization: str) -> None:
    """Convert the Whisper folder `src` into a new CTranslate2 folder `out`.

    Raises:
        SpeechftError: `src` is not a Whisper folder with a tokenizer, or the converter fails.
    """
    import ctranslate2

    check_quantization(quantization)
    config = src / "config.json"
    model_type = json.loads(config.read_text("utf-8")).get("model_type") if config.is_file() else None
    if model_type != "whisper":
        raise SpeechftError(f"{src} is not a Whisper model folder (model_type={model_type!r}). Fix: export a "
                            "Whisper run's model folder; faster-whisper serves Whisper only")
    if not (src / "tokenizer.json").is_file():
        raise SpeechftError(f"{src} has no tokenizer.json, which faster-whisper needs. Fix: save the model with "
                            "its processor (WhisperAdapter.save or processor.save_pretrained)")
    copy = [name for name in ASSET_FILES if (src / name).is_file()]
    converter = ctranslate2.converters.TransformersConverter(str(src), copy_files=copy)
    try:
        converter.convert(str(out), quantization=quantization)
    except (ValueError, NotImplementedError, RuntimeError, OSError) as e:
        raise SpeechftError(f"CTranslate2 cannot convert {src}: {e}. Fix: export a Whisper model folder") from e
    if "preprocessor_config.json" not in copy:
        _write_preprocessor_config(src, out)


def _write_preprocessor_config(src: Path, out: Path) -> None:
    """transformers 5 may keep the feature settings only in processor_config.json."""
    from transformers import WhisperFeatureExtractor

    try:
        WhisperFeatureExtractor.from_pretrained(str(src)).to_json_file(str(out / "preprocessor_config.json"))
    except (OSError, ValueError) as e:
        mels = json.loads((src / "config.json").read_text("utf-8")).get("num_mel_bins", DEFAULT_MEL_BINS)
        if mels != DEFAULT_MEL_BINS:  # faster-whisper would compute the wrong features
            raise SpeechftError(f"{src} has no feature-extractor settings and uses {mels} mel bins: {e}. "
                                "Fix: save the processor into the model folder") from e
