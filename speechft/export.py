"""Export a Whisper model to CTranslate2 (faster-whisper's format) and check WER parity.

The conversion is ctranslate2's own `TransformersConverter`; the tokenizer and feature
settings are copied next to `model.bin`, so `faster_whisper.WhisperModel(out_dir)` and the
Wyoming server for Home Assistant load the folder as it is.

The parity check decodes a manifest twice: the Hugging Face model exactly as `speechft eval`
does (greedy `generate` on features of the waveform padded to 30 s) and the exported model
through faster-whisper (greedy, one temperature, no timestamps, no VAD; faster-whisper pads
the log-mel instead of the waveform). A third pass feeds the HF features to the CT2 model,
which splits a gap into its padding part and its engine/quantization part.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from .errors import SpeechftError
from .io_utils import atomic_write_json, replace_dir

log = logging.getLogger(__name__)

QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")
# Beside model.bin: faster-whisper reads tokenizer.json (else it downloads one from the hub)
# and preprocessor_config.json (mel bins); normalizer.json serves English scoring tools.
ASSET_FILES = ("tokenizer.json", "preprocessor_config.json", "normalizer.json")
CT2_WEIGHTS_FILE = "model.bin"
PARITY_FILE = "parity.json"
FAILED_SUFFIX = ".failed"
DEFAULT_MEL_BINS = 80  # faster-whisper's default when preprocessor_config.json is absent
MAX_NEW_TOKENS = 128  # the HF adapter's default, so both decoders stop at the same length
PARITY_BATCH_SIZE = 8  # HF and CT2-on-HF-features batches (memory stays small on CPU)
# Deterministic decoding that matches HF greedy generate: one temperature (no sampling
# fallback), no previous-text conditioning, no VAD and no silence skipping, which HF lacks.
CT2_DECODE_OPTIONS = {
    "beam_size": 1,
    "temperature": 0.0,
    "without_timestamps": True,
    "condition_on_previous_text": False,
    "vad_filter": False,
    "no_speech_threshold": None,
    "log_prob_threshold": None,
    "compression_ratio_threshold": None,
    "max_new_tokens": MAX_NEW_TOKENS,
}


def cpu_threads() -> int:
    """Cores this process may use (CTranslate2 defaults to 4 threads, too many on 2 cores)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def is_ct2_dir(path: str | Path) -> bool:
    """True for a CTranslate2 model folder (faster-whisper format)."""
    return (Path(path) / CT2_WEIGHTS_FILE).is_file() and (Path(path) / "config.json").is_file()


def load_ct2(model_dir: str | Path, compute_type: str = "default"):
    """Load an exported folder with faster-whisper on the CPU.

    "default" keeps the quantization chosen at export (int8 stays int8; float16, which a
    CPU cannot run, becomes float32).
    """
    from faster_whisper import WhisperModel

    # faster-whisper logs one INFO line per clip, which drowns the parity and server output.
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    try:
        return WhisperModel(str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads())
    except (RuntimeError, ValueError, OSError) as e:
        raise SpeechftError(f"cannot load CTranslate2 model {model_dir}: {e}. Fix: re-export it with speechft export") from e


def ct2_language(model, language: str | None) -> str:
    """The language to force: the requested one for multilingual models, else English."""
    return (language or "en") if model.model.is_multilingual else "en"


def ct2_transcribe(model, audio: np.ndarray, language: str | None = "en", prompt: str | None = None,
                   beams: int = 1) -> tuple[str, list]:
    """Transcribe one 16 kHz mono waveform with the parity decoding options (greedy unless `beams` > 1).

    Returns (text, segments) where segments are faster-whisper Segment objects.
    """
    segments, _ = model.transcribe(audio, language=ct2_language(model, language), initial_prompt=prompt or None,
                                   **{**CT2_DECODE_OPTIONS, "beam_size": beams})
    segments = list(segments)  # the generator decodes lazily
    return " ".join(s.text.strip() for s in segments).strip(), segments


def ct2_generate_features(model, features: np.ndarray, language: str | None = "en") -> list[str]:
    """Greedy CT2 decoding of given log-mel features [B, n_mels, 3000] (no re-padding)."""
    import ctranslate2
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    multilingual = model.model.is_multilingual
    tok = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe", language=ct2_language(model, language))
    prompt = list(tok.sot_sequence) + [tok.no_timestamps]
    storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32))
    results = model.model.generate(
        storage, [prompt] * len(features), beam_size=1, max_length=len(prompt) + MAX_NEW_TOKENS,
        suppress_blank=True, suppress_tokens=list(get_suppressed_tokens(tok, [-1])),
    )
    return [tok.decode(r.sequences_ids[0]).strip() for r in results]


def export_ct2(model_dir: str | Path, out_dir: str | Path, quantization: str = "int8", manifest: str | Path | None = None,
               max_wer_gap: float = 0.01, terms: list[str] | None = None, language: str | None = "en") -> dict:
    """Convert a Whisper model folder to CTranslate2 and check WER parity on a manifest.

    The folder is written under a temporary name and renamed to `out_dir` only when the
    check passes (or no manifest is given, in which case parity is not checked).

    Args:
        model_dir: a Hugging Face Whisper folder (or a built-in alias such as whisper-tiny.en).
        out_dir: the exported folder; it holds `parity.json` when a manifest was given.
        quantization: CTranslate2 weight type (int8, int8_float32, float16, float32, ...).
        manifest: utterances for the parity check (None: export only).
        max_wer_gap: largest allowed `ct2_wer - hf_wer` (WER as a fraction).
        terms: domain terms, to report term recall of both models.
        language: decoding language of multilingual models.

    Returns:
        A JSON-able summary: out_dir, quantization, parity_checked and the parity scores.

    Raises:
        SpeechftError: bad quantization or model folder, conversion failure, or a gap above
            `max_wer_gap` (the folder is then kept as `<out_dir>.failed`).
    """
    from .models.registry import resolve_model

    if quantization not in QUANTIZATIONS:
        raise SpeechftError(f"quantization={quantization!r} is not supported. Fix: use one of {', '.join(QUANTIZATIONS)}")
    src = Path(resolve_model(str(model_dir)))
    if not src.is_dir():
        raise SpeechftError(f"model folder not found: {src}. Fix: give the run's model folder, e.g. runs/<name>/latest/model")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    summary = {"format": "ct2", "out_dir": str(out_dir), "source": str(src), "quantization": quantization}
    try:
        start = time.perf_counter()
        log.info("converting %s to CTranslate2 %s", src, quantization)
        _convert(src, tmp, quantization)
        convert_s = time.perf_counter() - start
        if manifest is None:
            replace_dir(tmp, out_dir)
            print(f"exported {src} -> {out_dir} ({quantization}); parity NOT checked (no manifest given)")
            return {**summary, "parity_checked": False, "timings": {"convert_s": round(convert_s, 2)}}
        parity = _parity(src, tmp, Path(manifest), quantization, terms, language)
        parity["max_wer_gap"] = max_wer_gap
        parity["passed"] = parity["gap"] <= max_wer_gap
        parity["timings"]["convert_s"] = round(convert_s, 2)
        atomic_write_json(tmp / PARITY_FILE, parity)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    line = (f"parity on {parity['n']} utterances: HF WER {parity['hf_wer']:.4f}, CT2 {quantization} WER "
            f"{parity['ct2_wer']:.4f}, gap {parity['gap']:+.4f} (max {max_wer_gap:+.4f}) = engine/quantization "
            f"{parity['gap_engine']:+.4f} + feature padding {parity['gap_padding']:+.4f}")
    print(line)
    summary.update(parity_checked=True, parity_file=str(out_dir / PARITY_FILE),
                   parity={k: v for k, v in parity.items() if k != "utterances"})
    if not parity["passed"]:
        failed = out_dir.with_name(out_dir.name + FAILED_SUFFIX)
        replace_dir(tmp, failed)
        raise SpeechftError(
            f"export of {src} failed the parity check: {line}. The folder is kept for inspection at {failed} "
            f"(per-utterance hypotheses of both models in {failed / PARITY_FILE}). Fix: export with a wider type "
            f"(--quantization int8_float32 or float32), or raise --max-wer-gap if the gap is acceptable"
        )
    replace_dir(tmp, out_dir)
    print(f"exported {src} -> {out_dir}")
    return summary


def _convert(src: Path, out: Path, quantization: str) -> None:
    import ctranslate2

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


def _parity(src: Path, ct2_dir: Path, manifest: Path, quantization: str, terms: list[str] | None, language: str | None) -> dict:
    from .audio import load_audio
    from .evaluate import score
    from .manifest import read_manifest

    utts = read_manifest(manifest)
    if not utts:
        raise SpeechftError(f"parity manifest {manifest} has no utterance. Fix: give the run's test manifest")
    refs, ids = [u.text for u in utts], [u.id for u in utts]
    timings = {}
    start = time.perf_counter()
    adapter = _hf_adapter(src, language)
    timings["hf_load_s"] = time.perf_counter() - start
    start = time.perf_counter()
    hf_hyps = _hf_hyps(adapter, utts)
    timings["hf_decode_s"] = time.perf_counter() - start

    start = time.perf_counter()
    model = load_ct2(ct2_dir)
    timings["ct2_load_s"] = time.perf_counter() - start
    start = time.perf_counter()
    ct2_hyps = [ct2_transcribe(model, load_audio(u.audio_filepath), language)[0] for u in utts]
    timings["ct2_decode_s"] = time.perf_counter() - start

    start = time.perf_counter()
    cross_hyps = []
    for i in range(0, len(utts), PARITY_BATCH_SIZE):
        audios = [load_audio(u.audio_filepath) for u in utts[i : i + PARITY_BATCH_SIZE]]
        cross_hyps += ct2_generate_features(model, adapter.features(audios).numpy(), language)
    timings["ct2_hf_features_s"] = time.perf_counter() - start

    hf, ct2, cross = (score(refs, h, ids, terms) for h in (hf_hyps, ct2_hyps, cross_hyps))
    same = sum(a.hyp_norm == b.hyp_norm for a, b in zip(hf.utterances, ct2.utterances))
    return {
        "n": len(utts),
        "manifest": str(manifest),
        "quantization": quantization,
        "language": ct2_language(model, language),
        "hf_wer": hf.wer,
        "ct2_wer": ct2.wer,
        "gap": ct2.wer - hf.wer,
        "ct2_hf_features_wer": cross.wer,
        # gap = engine/quantization part (same features) + padding part (same engine)
        "gap_engine": cross.wer - hf.wer,
        "gap_padding": ct2.wer - cross.wer,
        "hf_cer": hf.cer,
        "ct2_cer": ct2.cer,
        "hf_term_recall": hf.term_recall,
        "ct2_term_recall": ct2.term_recall,
        "identical_fraction": same / len(utts),
        "decode": {"hf": {"num_beams": 1, "max_new_tokens": MAX_NEW_TOKENS}, "ct2": CT2_DECODE_OPTIONS},
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "utterances": [
            {"id": a.id, "ref": a.ref, "hf": a.hyp, "ct2": b.hyp, "ct2_hf_features": c.hyp, "hf_errors": a.errors, "ct2_errors": b.errors}
            for a, b, c in zip(hf.utterances, ct2.utterances, cross.utterances)
        ],
    }


def _hf_adapter(src: Path, language: str | None):
    from .config import ModelConfig
    from .models import load_model
    from .models.adapters import adapter_for

    return adapter_for(load_model(str(src)), ModelConfig(name=str(src), language=language))


def _hf_hyps(adapter, utts) -> list[str]:
    """Decode as `speechft eval` does: greedy generate over an uncached full encoder pass."""
    import torch

    from .cache import PrefixCache
    from .evaluate import transcribe
    from .freeze import encoder_units

    k = len(encoder_units([n for n, _ in adapter.model.named_parameters()], adapter.family))
    with torch.inference_mode():
        return transcribe(adapter, utts, PrefixCache("", adapter, k, enabled=False), batch_size=PARITY_BATCH_SIZE,
                          desc="parity: HF", num_beams=1, max_new_tokens=MAX_NEW_TOKENS)
