"""Uploaded audio -> float32 mono 16 kHz, or a 400 naming what is wrong with it."""

from __future__ import annotations

import logging
from typing import BinaryIO

import numpy as np

from ..audio import SAMPLE_RATE, resample
from .errors import APIError

log = logging.getLogger(__name__)


def decode_upload(file: BinaryIO) -> np.ndarray:
    """Decode an uploaded file: WAV/FLAC/OGG through soundfile (as `load_audio` does), any
    other container (MP3, M4A, WebM, ...) through FFmpeg (PyAV, bundled with faster-whisper).

    A file whose header claims more samples than it holds is decoded as far as it goes, as
    every player does. Runs in a worker thread: it is CPU work.

    Raises:
        APIError: 400 when neither decoder recognises it, or it holds no or non-finite samples.
    """
    import soundfile as sf

    if file.seek(0, 2) == 0:  # seek returns the new position: the file's size
        raise APIError(400, "the uploaded file is empty (0 bytes). Fix: send a recording", "empty_audio")
    try:
        file.seek(0)
        samples, sr = sf.read(file, dtype="float32", always_2d=True)
        audio = resample(np.ascontiguousarray(samples.mean(axis=1)), int(sr), SAMPLE_RATE)
    except Exception as sf_error:  # noqa: BLE001 - any soundfile failure means "try FFmpeg"
        from faster_whisper.audio import decode_audio

        try:
            file.seek(0)
            audio = decode_audio(file, sampling_rate=SAMPLE_RATE)
        except Exception as av_error:
            log.debug("soundfile: %s; PyAV: %s", sf_error, av_error)
            raise APIError(400, "cannot decode the uploaded audio: neither soundfile nor FFmpeg (PyAV) recognises it "
                           f"({type(av_error).__name__}). Fix: send WAV, FLAC, MP3, OGG, M4A or WebM audio",
                           "invalid_audio") from av_error
    if audio.size == 0:
        raise APIError(400, "the uploaded audio has no samples. Fix: send a non-empty recording", "empty_audio")
    if not np.isfinite(audio).all():
        # NaN or infinity would reach the model as garbage features: refuse, do not guess.
        raise APIError(400, "the uploaded audio holds NaN or infinite samples. Fix: re-encode the recording",
                       "invalid_audio")
    return np.ascontiguousarray(audio, dtype=np.float32)
