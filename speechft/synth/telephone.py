"""The telephone channel: 8 kHz, 300-3400 Hz, and a narrowband codec (G.711 mu-law/A-law, GSM).

G.711 is a table lookup in numpy (bit-exact with ffmpeg's encoders, so no process per
utterance); GSM 06.10 goes through ffmpeg's libgsm.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

import numpy as np

from ..audio import SAMPLE_RATE, resample
from ..errors import SpeechftError

PHONE_RATE = 8000  # Hz, narrowband telephony
BAND = (300.0, 3400.0)  # Hz, the classic telephone passband
BAND_ORDER = 8  # Butterworth order per edge; applied forward and backward (zero phase)
CODECS = ("mulaw", "alaw", "gsm")
FFMPEG_CODECS = {"gsm": ("libgsm", "gsm")}  # codec -> (ffmpeg encoder, container format)
CODEC_TIMEOUT = 60  # s per utterance
TARGET_PEAK = 0.9  # level fed to the codec, like a phone's automatic gain control


def mulaw_decode(code: np.ndarray) -> np.ndarray:
    """G.711 mu-law codes (0..255) -> linear values on the 16-bit scale."""
    code = ~np.asarray(code, dtype=np.int64) & 0xFF
    magnitude = ((((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 7)) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude)


def alaw_decode(code: np.ndarray) -> np.ndarray:
    """G.711 A-law codes (0..255) -> linear values on the 16-bit scale."""
    code = np.asarray(code, dtype=np.int64) ^ 0x55
    segment, mantissa = (code & 0x70) >> 4, code & 0x0F
    magnitude = np.where(segment == 0, (2 * mantissa + 1) << 3, (2 * mantissa + 33) << (segment + 2))
    return np.where(code & 0x80, magnitude, -magnitude)


@functools.lru_cache(maxsize=None)
def g711_table(codec: str) -> np.ndarray:
    """What each 14-bit input value (int16 >> 2, offset by 8192) decodes to after a G.711 round trip.

    Built as ffmpeg's pcm_tablegen.h builds its encoder table (each magnitude goes to the code
    whose decision interval holds it), so the result is bit-exact with ffmpeg's pcm_mulaw/pcm_alaw.
    """
    decode, mask = (mulaw_decode, 0xFF) if codec == "mulaw" else (alaw_decode, 0xD5)
    i = np.arange(127)
    edges = (decode(i ^ mask) + decode((i + 1) ^ mask) + 4) >> 3  # decision thresholds, 14-bit scale
    j = np.arange(8192)
    level = np.minimum(np.searchsorted(edges, j, side="right"), 127)
    codes = np.empty(16384, dtype=np.int64)
    codes[8192:] = level ^ mask  # non-negative inputs
    codes[1:8192] = level[:0:-1] ^ (mask ^ 0x80)  # index 8192 - j holds -j
    codes[0] = codes[1]
    return decode(codes).astype(np.int16)


@functools.lru_cache(maxsize=None)
def ffmpeg_encoders() -> frozenset[str]:
    """The audio encoders of the ffmpeg on PATH (empty when there is none)."""
    if not shutil.which("ffmpeg"):
        return frozenset()
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=CODEC_TIMEOUT).stdout
    return frozenset(line.split()[1] for line in out.splitlines() if line.strip().startswith("A") and len(line.split()) > 1)


def available_codecs() -> list[str]:
    """The codecs that can run here (G.711 always; GSM needs ffmpeg with libgsm)."""
    return [c for c in CODECS if c not in FFMPEG_CODECS or FFMPEG_CODECS[c][0] in ffmpeg_encoders()]


def ffmpeg_roundtrip(pcm: np.ndarray, codec: str) -> np.ndarray:
    """Encode 8 kHz int16 samples with ffmpeg's `codec` encoder and decode them again."""
    encoder, fmt = FFMPEG_CODECS[codec]
    raw = ["-f", "s16le", "-ar", str(PHONE_RATE), "-ac", "1"]
    base = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-bitexact"]
    try:
        coded = subprocess.run([*base, *raw, "-i", "pipe:0", "-c:a", encoder, "-f", fmt, "pipe:1"], input=pcm.tobytes(),
                               capture_output=True, check=True, timeout=CODEC_TIMEOUT).stdout
        decoded = subprocess.run([*base, "-f", fmt, "-i", "pipe:0", *raw, "pipe:1"], input=coded,
                                 capture_output=True, check=True, timeout=CODEC_TIMEOUT).stdout
    except (OSError, subprocess.SubprocessError) as e:
        detail = (getattr(e, "stderr", b"") or b"").decode(errors="replace")[-300:]
        raise SpeechftError(f"ffmpeg {encoder} round trip failed: {e} {detail}. Fix: apt-get install ffmpeg "
                            f"(built with {encoder}), or drop {codec} from telephone_codecs") from e
    out = np.frombuffer(decoded, dtype=np.int16)[: pcm.size]  # GSM pads to whole 20 ms frames
    return np.pad(out, (0, pcm.size - out.size))


def codec_roundtrip(pcm: np.ndarray, codec: str) -> np.ndarray:
    """8 kHz int16 samples after encoding and decoding with `codec`.

    Raises:
        SpeechftError: an unknown codec, or ffmpeg failed.
    """
    if codec in ("mulaw", "alaw"):
        return g711_table(codec)[(pcm.astype(np.int32) + 32768) >> 2]
    if codec in FFMPEG_CODECS:
        return ffmpeg_roundtrip(pcm, codec)
    raise SpeechftError(f"unknown telephone codec {codec!r}. Fix: one of {', '.join(CODECS)}")


def band_limit(audio: np.ndarray, rate: int = PHONE_RATE) -> np.ndarray:
    """Zero-phase band-pass to the telephone band BAND."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(BAND_ORDER, BAND, btype="bandpass", fs=rate, output="sos")
    return sosfiltfilt(sos, audio)


def telephone(audio: np.ndarray, codec: str) -> np.ndarray:
    """16 kHz audio as heard through a phone line: 8 kHz, telephone band, `codec`, back at 16 kHz."""
    narrow = band_limit(resample(audio.astype(np.float32), SAMPLE_RATE, PHONE_RATE))
    narrow *= TARGET_PEAK / max(float(np.max(np.abs(narrow))), 1e-9)
    pcm = np.round(np.clip(narrow, -1.0, 1.0) * 32767).astype(np.int16)
    # The receiving end filters again: codec noise outside the band is removed as on a real line.
    heard = band_limit(codec_roundtrip(pcm, codec).astype(np.float64) / 32768)
    wide = resample(heard.astype(np.float32), PHONE_RATE, SAMPLE_RATE)[: audio.size]
    # Once more at 16 kHz: the resampler's images just above 4 kHz are only ~35 dB down.
    return band_limit(np.pad(wide, (0, audio.size - wide.size)), SAMPLE_RATE).astype(np.float32)
