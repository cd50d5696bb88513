"""The two ways a model is served, behind one `transcribe(audio, request)`.

- CT2Backend: a CTranslate2 export through faster-whisper, the fast path and what voice
  assistants deploy: `transcribe_deployed`, so <= 30 s is one window without timestamps and
  longer audio, cut at pauses into clips of at most 30 s, goes through faster-whisper's
  long-form loop.
- HFBackend: a Hugging Face Whisper folder or alias through the speechft adapter: <= 30 s
  decodes as `speechft eval` does; longer audio is cut at pauses into clips of <= 30 s, as
  the CT2 path cuts it, each decoded as one window (`longform.transcribe_in_clips`; the
  transformers long-form loop used before lost words at window edges). VAD here is also a
  gate: audio in which Silero VAD finds no speech gets no words.

Both are called under the server's model lock, from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import SpeechftError
from ..models.ct2.runtime import MAX_NEW_TOKENS, WINDOW_SECONDS, has_speech, is_ct2_dir, load_ct2, transcribe_deployed
from .decoding import ServedDecoding


@dataclass(frozen=True)
class TranscriptionRequest:
    """What one request may change: language, prompt, word timestamps."""

    language: str | None = None
    prompt: str | None = None
    words: bool = False


@dataclass
class Transcription:
    """A decoded request: text, OpenAI-style segments (and words), and how it was decoded."""

    text: str
    segments: list[dict]
    words: list[dict] | None
    decoding: dict = field(default_factory=dict)


def _seconds(x) -> float:
    return round(float(x), 2)


class CT2Backend:
    """An exported CTranslate2 folder, decoded by faster-whisper the way it is deployed."""

    kind = "ct2"
    supports_words = True

    def __init__(self, model_dir: Path, served: ServedDecoding):
        self.model = load_ct2(model_dir)
        self.served = served
        self.languages = set(self.model.supported_languages)

    def transcribe(self, audio: np.ndarray, request: TranscriptionRequest) -> Transcription:
        """Decode one waveform (16 kHz mono) of any length."""
        decoding, prompt_source = self.served.for_request(request.prompt, request.language, request.words)
        text, segments = transcribe_deployed(self.model, audio, decoding)
        words = [{"word": w.word, "start": _seconds(w.start), "end": _seconds(w.end)}
                 for s in segments for w in (s.words or [])] if request.words else None
        return Transcription(text, [
            {"id": i, "seek": s.seek, "start": _seconds(s.start), "end": _seconds(s.end), "text": s.text, "tokens": s.tokens,
             "temperature": s.temperature, "avg_logprob": s.avg_logprob, "compression_ratio": s.compression_ratio,
             "no_speech_prob": s.no_speech_prob}
            for i, s in enumerate(segments)
        ], words, _decoding_info(self.kind, audio, decoding, prompt_source, vad=decoding.vad_filter))


class HFBackend:
    """A Hugging Face Whisper folder (or built-in alias), decoded by the speechft adapter."""

    kind = "hf"
    supports_words = False  # word timestamps come from faster-whisper's alignment

    def __init__(self, model_dir: str, served: ServedDecoding):
        from ..models.adapters import load_adapter

        self.adapter = load_adapter(model_dir)
        self.served = served
        if self.adapter.family != "whisper":
            raise SpeechftError(f"{model_dir} is a {self.adapter.family} model; the server takes Whisper models. "
                                "Fix: serve a Whisper run's model folder or its CT2 export")
        gen = self.adapter.model.generation_config
        codes = {tok.strip("<|>") for tok in (getattr(gen, "lang_to_id", None) or {})}
        self.languages = codes if self.adapter.multilingual and codes else {"en"}

    def transcribe(self, audio: np.ndarray, request: TranscriptionRequest) -> Transcription:
        """Decode one waveform: one window as `speechft eval` does, longer audio in clips cut at pauses."""
        from ..longform import transcribe_in_clips
        from ..models.base import DecodeOptions

        decoding, prompt_source = self.served.for_request(request.prompt, request.language, False)
        if decoding.vad_filter and not has_speech(audio, decoding):
            # Whisper answers silence and noise with words; the CT2 path's VAD drops such audio too.
            text, segments = "", []
        else:
            options = DecodeOptions(num_beams=decoding.beams, max_new_tokens=MAX_NEW_TOKENS, prompt=decoding.prompt,
                                    language=decoding.language if self.adapter.multilingual else None)
            text, clips = transcribe_in_clips(self.adapter, audio, options)
            segments = [{"id": i, "seek": 0, **clip} for i, clip in enumerate(clips)]
        return Transcription(text, segments, None, _decoding_info(self.kind, audio, decoding, prompt_source,
                                                                  vad=decoding.vad_filter))


def _decoding_info(kind: str, audio: np.ndarray, decoding, prompt_source: str, vad: bool) -> dict:
    """What verbose_json reports: which path decoded the request, with which settings."""
    return {"backend": kind, "long_form": audio.size / SAMPLE_RATE > WINDOW_SECONDS, "vad": vad,
            "beams": decoding.beams, "prompt": prompt_source, "word_timestamps": decoding.word_timestamps,
            "condition_on_previous_text": decoding.condition_on_previous_text,
            "temperature_fallback": decoding.temperature_fallback, "clip_timestamp_tokens": decoding.clip_timestamp_tokens}


def load_backend(model_dir: str | Path, served: ServedDecoding):
    """CT2Backend for a folder holding model.bin, else HFBackend (folder or built-in alias).

    Raises:
        SpeechftError: the model cannot be loaded, or is not a Whisper model.
    """
    if is_ct2_dir(model_dir):
        return CT2Backend(Path(model_dir), served)
    return HFBackend(str(model_dir), served)
