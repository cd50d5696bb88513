"""Word timestamps from a pretrained Whisper through faster-whisper (CTranslate2).

The aligner is a CTranslate2 folder: given as one, the folder a built-in alias ships
(whisper-tiny.en's package holds one), or a Hugging Face Whisper folder converted once into
`$SPEECHFT_HOME/ct2/`. Transcripts are cached by audio content and model, so aligning a
recording again costs no decoding.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpeechftError
from ..io_utils import atomic_write_json, replace_dir
from ..models.ct2.convert import convert_to_ct2
from ..models.ct2.runtime import CT2_WEIGHTS_FILE, DeployedDecoding, is_ct2_dir, load_ct2, transcribe_deployed
from ..models.registry import BUILTIN_MODELS, resolve_model, speechft_home

DEFAULT_ALIGNER = "whisper-tiny.en"
CONVERTED_QUANTIZATION = "float32"  # what a shipped fp16 folder runs as on a CPU
# Greedy and without the previous window's text as prompt: a long recording is decoded window
# by window, and conditioning on earlier text is what lets Whisper loop on a phrase. No VAD:
# the timestamps must be those of the whole recording.
ALIGN_DECODING = DeployedDecoding(beams=1, vad_filter=False, condition_on_previous_text=False, word_timestamps=True,
                                  silence_no_speech_prob=None)
CACHE_VERSION = 1  # part of the transcript cache key


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # s
    end: float


def _model_key(folder: Path) -> str:
    st = (folder / CT2_WEIGHTS_FILE).stat()
    raw = f"{folder.resolve()}:{st.st_size}:{st.st_mtime_ns}:{(folder / 'config.json').read_text('utf-8')}"
    return hashlib.sha1(raw.encode()).hexdigest()[:12]


def aligner_dir(name: str = DEFAULT_ALIGNER) -> Path:
    """The CTranslate2 folder of aligner `name` (a CT2 folder, a built-in alias or an HF Whisper folder).

    Raises:
        SpeechftError: a hub id (not supported here: give a local folder), or as resolve_model.
    """
    path = Path(name).expanduser()
    if is_ct2_dir(path):
        return path
    builtin = BUILTIN_MODELS.get(name)
    if builtin is not None and builtin.installed():
        parts, assets = builtin.locate()
        if len(parts) == 1 and parts[0] == assets / CT2_WEIGHTS_FILE and is_ct2_dir(assets):
            return assets  # shipped ready to run: no conversion
    hf_dir = Path(resolve_model(name))
    if not hf_dir.is_dir():
        raise SpeechftError(f"aligner {name!r} is not a local model. Fix: use {DEFAULT_ALIGNER}, a CTranslate2 folder "
                            "or a Hugging Face Whisper folder")
    stamp = hashlib.sha1("".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(hf_dir.iterdir())
                                 if p.is_file()).encode()).hexdigest()[:10]
    out = speechft_home() / "ct2" / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', hf_dir.name)}-{stamp}"
    if not is_ct2_dir(out):
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")  # per process: two runs converting at once do not collide
        shutil.rmtree(tmp, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        convert_to_ct2(hf_dir, tmp, CONVERTED_QUANTIZATION)
        replace_dir(tmp, out)
    return out


class Transcriber:
    """Word timestamps of 16 kHz audio; the model loads on first use, results are cached in `cache_dir`."""

    def __init__(self, model_dir: Path, cache_dir: Path):
        self.model_dir, self.cache_dir = Path(model_dir), Path(cache_dir)
        self.key = _model_key(self.model_dir)
        self._model = None

    def words(self, audio: np.ndarray, audio_key: str) -> list[Word]:
        """Words of `audio` (whose content hash is `audio_key`) with start/end times in seconds."""
        cache = self.cache_dir / f"{audio_key[:16]}-{self.key}-v{CACHE_VERSION}.json"
        if cache.is_file():
            return [Word(*w) for w in json.loads(cache.read_text("utf-8"))]
        if self._model is None:
            self._model = load_ct2(self.model_dir)
        _, segments = transcribe_deployed(self._model, audio, ALIGN_DECODING)
        words = [Word(w.word.strip(), round(float(w.start), 3), round(float(w.end), 3))
                 for s in segments for w in (s.words or []) if w.word.strip()]
        atomic_write_json(cache, [[w.text, w.start, w.end] for w in words])
        return words
