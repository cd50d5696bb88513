"""`speechft export`: a Whisper model to CTranslate2 (faster-whisper's format), with a WER parity check.

The conversion itself is models/ct2/convert.py (ctranslate2's own converter); decoding the
export goes through models/ct2/runtime.py, as `speechft serve` does.

The parity check decodes a manifest twice: the Hugging Face model exactly as `speechft eval`
does (greedy `generate` on features of the waveform padded to 30 s) and the exported model
through faster-whisper (greedy, one temperature, no timestamps, no VAD; faster-whisper pads
the log-mel instead of the waveform). A third pass feeds the HF features to the CT2 model,
which splits a gap into its padding part and its engine/quantization part.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from .distributed import Dist
from .errors import SpeechftError
from .io_utils import atomic_write_json, replace_dir
from .models.base import DecodeOptions
from .models.ct2.convert import check_quantization, convert_to_ct2
from .models.ct2.runtime import MAX_NEW_TOKENS, PARITY_DECODE_OPTIONS, ct2_generate_features, ct2_language, ct2_transcribe, load_ct2

log = logging.getLogger(__name__)

PARITY_FILE = "parity.json"
FAILED_SUFFIX = ".failed"
PARITY_BATCH_SIZE = 8  # HF and CT2-on-HF-features batches (memory stays small on CPU)


def _check_out_dir(src: Path, out_dir: Path) -> None:
    """The export replaces `out_dir` whole: refuse where that would lose a user's files."""
    from .models.ct2.runtime import is_ct2_dir

    source, out = src.resolve(), out_dir.resolve()
    if out == source or source.is_relative_to(out) or out.is_relative_to(source):
        raise SpeechftError(f"--out {out_dir} is the model folder {src} or holds it or lies inside it: the export would "
                            "replace the model. Fix: choose a folder of its own, e.g. runs/<name>/latest/model-ct2")
    if out_dir.exists() and not out_dir.is_dir():
        raise SpeechftError(f"--out {out_dir} is a file. Fix: choose a folder for the export")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_ct2_dir(out_dir):
        raise SpeechftError(f"--out {out_dir} is a folder with other files in it, which the export would delete. Fix: "
                            "choose a new folder, or an earlier export to replace")


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

    check_quantization(quantization)
    src = Path(resolve_model(str(model_dir)))
    if not src.is_dir():
        raise SpeechftError(f"model folder not found: {src}. Fix: give the run's model folder, e.g. runs/<name>/latest/model")
    out_dir = Path(out_dir)
    _check_out_dir(src, out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpeechftError(f"cannot make {out_dir.parent} ({e.strerror}). Fix: choose another --out") from None
    tmp = out_dir.with_name(f".{out_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    summary = {"format": "ct2", "out_dir": str(out_dir), "source": str(src), "quantization": quantization}
    try:
        start = time.perf_counter()
        log.info("converting %s to CTranslate2 %s", src, quantization)
        convert_to_ct2(src, tmp, quantization)
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
        "decode": {"hf": {"num_beams": 1, "max_new_tokens": MAX_NEW_TOKENS}, "ct2": PARITY_DECODE_OPTIONS},
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "utterances": [
            {"id": a.id, "ref": a.ref, "hf": a.hyp, "ct2": b.hyp, "ct2_hf_features": c.hyp, "hf_errors": a.errors, "ct2_errors": b.errors}
            for a, b, c in zip(hf.utterances, ct2.utterances, cross.utterances)
        ],
    }


def _hf_adapter(src: Path, language: str | None):
    """The HF side of the parity check, with the front end the folder's report measured
    (a recipe's model records `feature_padding` in speechft_decoding.json)."""
    from .models.adapters import folder_model_config, load_adapter

    return load_adapter(str(src), folder_model_config(str(src), language))


def _hf_hyps(adapter, utts) -> list[str]:
    """Decode as `speechft eval` does: greedy generate over an uncached full encoder pass."""
    import torch

    from .cache import uncached
    from .evaluate import transcribe

    with torch.inference_mode():
        # Dist(): this check runs on one process (rank 0 of a recipe), so it must not wait for others.
        return transcribe(adapter, utts, uncached(adapter), batch_size=PARITY_BATCH_SIZE,
                          desc="parity: HF", options=DecodeOptions(max_new_tokens=MAX_NEW_TOKENS), dist=Dist())
