"""Running an exported CTranslate2 Whisper folder through faster-whisper (what users deploy).

`speechft export`'s parity check, `speechft serve` and the report's deployed-path rows all
decode through these functions, so they measure the same thing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio import SAMPLE_RATE
from ...errors import SpeechftError

CT2_WEIGHTS_FILE = "model.bin"
MAX_NEW_TOKENS = 128  # the HF adapter's default, so both decoders stop at the same length
# Deterministic decoding that matches HF greedy generate: one temperature (no sampling
# fallback), no previous-text conditioning, no VAD and no silence skipping, which HF lacks.
PARITY_DECODE_OPTIONS = {
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


WINDOW_SECONDS = 30.0  # Whisper's input window: longer audio goes through faster-whisper's long-form loop
# Long audio with VAD on is cut at pauses of at least this length, and each stretch of speech
# between two pauses is decoded as a clip of its own (faster-whisper's `clip_timestamps`), so no
# window boundary falls inside a word and every clip starts at speech. Chosen on the medical dev
# recordings (5 of 80-93 s, held-out voices; benchmarks/long_audio_modes.py): one clip per pause
# 7.94% WER against 8.05% for the same sentences sent one by one; the same pieces merged into
# clips of up to one window 8.80%, faster-whisper's loop over the whole recording 8.69%. The
# mean sentence boundary error is 0.21 s (merged 0.04 s, whole 0.11 s); decoding takes about as
# long as one by one (62 s vs 34 s merged on 2 cores).
CLIP_MIN_SILENCE_MS = 500
# faster-whisper skips a window as silence only when its no-speech probability is > 0.6 AND its
# average log-probability < -1.0. Babble (speech-like noise without words) passes Silero VAD and
# gets confident-sounding words from tiny.en, before and after adapting: on the medical model's
# non-speech train clips every output with words had no-speech probability 0.57-0.92 and
# log-probability -0.58 to -0.95. So a segment above P no-speech and below -0.5 log-probability
# is dropped as well. P = 0.3, chosen on the 240 non-speech dev clips (benchmarks/README.md):
# with P 0.5 words stayed on 5 (aviation model) and 2 (medical model) of them, with 0.3 on none,
# and the speech of aviation, medical and general dev scored the same (its one unsure-sounding
# answer, a spoken letter at 0.55 no-speech, has log-probability -0.22: kept). Measured on the
# non-speech test set in every report.
SILENCE_NO_SPEECH_PROB, SILENCE_LOG_PROB = 0.3, -0.5
SAMPLING_SEED = 0  # temperature fallback samples: seeded per call, so the same audio gives the same text


@dataclass(frozen=True)
class DeployedDecoding:
    """How a deployed model decodes: `speechft serve`, the report's deployed-path rows and the
    documented wyoming-faster-whisper options all use these settings.

    Short audio (<= 30 s, one window) is decoded without timestamps, as training and the
    report's HF rows do. Longer audio with VAD on is cut at pauses (speech_clips) into clips of
    at most one window, each decoded the same way, without timestamp tokens, its segment times
    the clip's (`clip_timestamp_tokens=True`, and word timestamps, let the model place them
    inside the clip instead: on medical dev that cost 0.5 points of WER). With VAD off,
    faster-whisper's long-form loop seeks from window to window on the model's timestamps.
    The hallucination guards are faster-whisper's own defaults plus a stricter silence test
    on the decoded segments (is_unsure_silence); Silero VAD (bundled with faster-whisper) drops
    non-speech before decoding.
    """

    beams: int = 5  # faster-whisper's and wyoming-faster-whisper's default
    prompt: str | None = None  # the model folder's shipped prompt by default; given to every window (hotwords)
    language: str | None = None
    vad_filter: bool = True
    vad_min_silence_ms: int = 2000  # faster-whisper's VadOptions default
    vad_speech_pad_ms: int = 400
    no_speech_threshold: float | None = 0.6  # faster-whisper defaults from here down
    log_prob_threshold: float | None = -1.0
    compression_ratio_threshold: float | None = 2.4
    # A stricter silence test on the decoded segments (see `is_unsure_silence`); None: off.
    silence_no_speech_prob: float | None = SILENCE_NO_SPEECH_PROB
    silence_log_prob: float = SILENCE_LOG_PROB
    temperature_fallback: bool = True  # retry at 0.2, 0.4, ... when a guard rejects the output
    condition_on_previous_text: bool = True  # long audio: the previous window's text as prompt
    clip_timestamp_tokens: bool = False  # long audio cut at pauses: the model's timestamps inside each clip
    word_timestamps: bool = False

    def replace(self, **changes) -> "DeployedDecoding":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def vad_parameters(self) -> dict:
        """faster-whisper's VadOptions fields this decoding sets."""
        return {"min_silence_duration_ms": self.vad_min_silence_ms, "speech_pad_ms": self.vad_speech_pad_ms}

    def transcribe_kwargs(self, seconds: float) -> dict:
        """faster-whisper `transcribe` arguments for audio of this length.

        A prompt goes in as faster-whisper's `hotwords`, which precede every window: for one
        window that is exactly the `initial_prompt` token sequence (<|startofprev|> prompt,
        start tokens), and long audio keeps the domain terms in view instead of losing them to
        the previous windows' text. The previous text is then not added: the terms prompt (up
        to 223 tokens) and the previous text would not both fit Whisper's 448-token context.
        """
        long = seconds > WINDOW_SECONDS
        kwargs = {
            "beam_size": self.beams,
            "hotwords": self.prompt or None,
            "without_timestamps": not long,
            "condition_on_previous_text": self.condition_on_previous_text and not self.prompt,
            "vad_filter": self.vad_filter,
            "no_speech_threshold": self.no_speech_threshold,
            "log_prob_threshold": self.log_prob_threshold,
            "compression_ratio_threshold": self.compression_ratio_threshold,
            "word_timestamps": self.word_timestamps,
        }
        if self.vad_filter:
            kwargs["vad_parameters"] = self.vad_parameters()
        if not self.temperature_fallback:
            kwargs["temperature"] = 0.0
        return kwargs


def transcribe_deployed(model, audio: np.ndarray, decoding: DeployedDecoding = DeployedDecoding(),
                        clips: list[float] | None = None) -> tuple[str, list]:
    """Transcribe a 16 kHz mono waveform of any length the way the deployed model does.

    `clips` ([start, end, ...] s) replaces the cut at pauses that long audio gets with VAD on
    (benchmarks/long_audio_modes.py compares cuts). Returns (text, faster-whisper Segment
    list). Deterministic: the temperature fallback's sampling is seeded on every call.
    """
    import ctranslate2

    ctranslate2.set_random_seed(SAMPLING_SEED)
    seconds = audio.size / SAMPLE_RATE
    kwargs = decoding.transcribe_kwargs(seconds)
    if clips is None and seconds > WINDOW_SECONDS and decoding.vad_filter:
        clips = speech_clips(audio, decoding.vad_speech_pad_ms)
        if not clips:  # no speech anywhere: nothing to decode, as VAD would leave it
            return "", []
    if clips:
        kwargs.pop("vad_parameters", None)
        # With word timestamps, faster-whisper seeks to the last word's end after a window that has
        # no closing timestamp token, decoding each clip's tail once more: keep the tokens then.
        tokens = decoding.clip_timestamp_tokens or decoding.word_timestamps
        kwargs.update(vad_filter=False, clip_timestamps=clips, without_timestamps=not tokens)
    segments, _ = model.transcribe(audio, language=ct2_language(model, decoding.language), **kwargs)
    segments = [s for s in segments if not is_unsure_silence(s, decoding)]  # runs the lazy generator
    return " ".join(s.text.strip() for s in segments if s.text.strip()).strip(), segments


def is_unsure_silence(segment, decoding: DeployedDecoding) -> bool:
    """A decoded segment the model itself thinks is probably not speech and is unsure of."""
    return (decoding.silence_no_speech_prob is not None and segment.no_speech_prob > decoding.silence_no_speech_prob
            and segment.avg_logprob < decoding.silence_log_prob)


def has_speech(audio: np.ndarray, decoding: DeployedDecoding) -> bool:
    """Whether Silero VAD (faster-whisper's, with the decoding's VAD settings) finds any speech."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return bool(get_speech_timestamps(audio, VadOptions(**decoding.vad_parameters())))


def speech_clips(audio: np.ndarray, pad_ms: int = 400, max_seconds: float = WINDOW_SECONDS,
                 merge: bool = False) -> list[float]:
    """Silero VAD's speech (faster-whisper's) cut at pauses of CLIP_MIN_SILENCE_MS, one clip per
    stretch of speech, as faster-whisper's `clip_timestamps`: [start, end, ...] s.

    A stretch longer than `max_seconds` is cut by the VAD at its longest inner pause.
    `merge=True` joins neighbouring stretches into clips of up to `max_seconds` instead (kept for
    benchmarks/long_audio_modes.py, which compares the two).
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(min_silence_duration_ms=CLIP_MIN_SILENCE_MS, speech_pad_ms=pad_ms,
                         max_speech_duration_s=max_seconds - 2 * pad_ms / 1000)
    clips: list[list[float]] = []
    for span in get_speech_timestamps(audio, options):
        start, end = span["start"] / SAMPLE_RATE, span["end"] / SAMPLE_RATE
        if merge and clips and end - clips[-1][0] <= max_seconds:
            clips[-1][1] = end
        else:
            clips.append([start, end])
    return [t for clip in clips for t in clip]


def cpu_threads() -> int:
    """Cores this process may use (CTranslate2 defaults to 4 threads, too many on 2 cores)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads_kept():
    """Loading a CTranslate2 model sets the loading thread's OpenMP thread count to the model's
    threads per decoding, and torch reads the same setting: after a one-thread replica was loaded
    for beam search, the recipe's encoder passes and training steps ran on one core (cold medical
    run: general encoding 65 -> 111 s, training 229 -> 439 s). Within: torch's count is restored."""
    torch = sys.modules.get("torch")  # a process without torch (the CT2 server) has nothing to keep
    threads = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        if torch is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def is_ct2_dir(path: str | Path) -> bool:
    """True for a CTranslate2 model folder (faster-whisper format)."""
    return (Path(path) / CT2_WEIGHTS_FILE).is_file() and (Path(path) / "config.json").is_file()


def load_ct2(model_dir: str | Path, compute_type: str = "default", threads: int | None = None, workers: int = 1):
    """Load an exported folder with faster-whisper on the CPU.

    "default" keeps the quantization chosen at export (int8 stays int8; float16, which a
    CPU cannot run, becomes float32). `threads` per decoding (default: every core the process
    may use) and `workers`, how many decodings may run at once from different Python threads.

    Raises:
        SpeechftError: the folder cannot be loaded (naming it and the fix).
    """
    from faster_whisper import WhisperModel

    # faster-whisper logs one INFO line per clip, which drowns the parity and server output.
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    try:
        with torch_threads_kept():
            return WhisperModel(str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=threads or cpu_threads(),
                                num_workers=workers)
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
                                   **{**PARITY_DECODE_OPTIONS, "beam_size": beams})
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
