"""Split over-long utterances (data.long_audio: split) at their segment boundaries.

A transcript cannot be cut by time without knowing when each word is said, so splitting needs
the manifest line's `segments` ([{"start": s, "end": s, "text": ...}], from forced alignment or
subtitles). Pieces are runs of whole segments, so every piece's text is exactly what is said in
it. Each cut lies between two segments, at the quietest point near their gap (10 ms frame
energy), so a boundary that the aligner placed slightly early or late still falls in a pause.

Pieces tile the whole recording (nothing is lost) and are written as 16 kHz mono WAV, named by
the source's content hash and the cut samples: a second run finds and reuses them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, audio_info, file_sha1, resample, write_wav
from .errors import SpeechftError
from .manifest import Utterance
from .text import normalize

FRAME_SECONDS = 0.01  # energy frame for finding the quietest cut point
BOUNDARY_SLACK = 0.2  # s; aligners' boundaries are approximate, so the search reaches this far into segments
TIME_TOLERANCE = 0.1  # s; segments may overlap or pass the audio's end by this much
SEGMENTS_FORMAT = '"segments": [{"start": s, "end": s, "text": ...}, ...] in time order'


class CannotSplit(SpeechftError):
    """The line's segments do not allow a split; carries the parts of a validation problem."""

    def __init__(self, value, problem: str, fix: str):
        super().__init__(f"{problem}. Fix: {fix}")
        self.value, self.problem, self.fix = value, problem, fix


@dataclass(frozen=True)
class Segment:
    start: float  # s
    end: float
    text: str


@dataclass(frozen=True)
class Piece:
    start: float  # s, in the source recording
    end: float
    text: str  # the texts of its segments, in order


def parse_segments(raw, seconds: float, text: str) -> list[Segment]:
    """Check a manifest line's `segments` against its audio length and its text.

    Raises:
        CannotSplit: not a list of {start, end, text}, out of order, overlapping, past the
            audio's end, or their texts joined differ from the line's text.
    """
    if not isinstance(raw, list) or not raw:
        raise CannotSplit(raw, "segments is not a non-empty list", f"give {SEGMENTS_FORMAT}")
    segs: list[Segment] = []
    for k, s in enumerate(raw, start=1):
        ok = (isinstance(s, dict) and isinstance(s.get("text"), str)
              and all(isinstance(s.get(t), (int, float)) and not isinstance(s.get(t), bool) for t in ("start", "end")))
        if not ok or not 0 <= s["start"] < s["end"]:
            raise CannotSplit(s, f"segment {k} is not {{start, end, text}} with 0 <= start < end", f"give {SEGMENTS_FORMAT}")
        if s["end"] > seconds + TIME_TOLERANCE:
            raise CannotSplit(s, f"segment {k} ends at {s['end']} s, after the audio's end ({seconds:.2f} s)", "fix the segment times")
        if segs and s["start"] < segs[-1].end - TIME_TOLERANCE:
            raise CannotSplit(s, f"segment {k} starts before segment {k - 1} ends", f"give {SEGMENTS_FORMAT}, not overlapping")
        segs.append(Segment(float(s["start"]), float(min(s["end"], seconds)), s["text"]))
    # The pieces' labels come from the segments, so they must say what the line's text says.
    joined = " ".join(s.text for s in segs)
    if normalize(joined) != normalize(text):
        raise CannotSplit(joined, "the segments' texts joined differ from the line's text",
                          "make text the segments' texts in order (or correct the segments)")
    return segs


def _quietest(frame_rms: np.ndarray, lo: float, hi: float, aim: float) -> float:
    """Time in [lo, hi] of the quietest frame; among frames about as quiet, the one nearest `aim`."""
    first = max(int(lo / FRAME_SECONDS), 0)
    last = min(int(hi / FRAME_SECONDS), frame_rms.size - 1)
    if last < first:
        return aim
    rms = frame_rms[first:last + 1]
    quiet = np.flatnonzero(rms <= 2 * rms.min() + 1e-5)  # "as quiet as the quietest": a pause has many such frames
    centres = (first + quiet + 0.5) * FRAME_SECONDS
    return round(float(centres[np.argmin(np.abs(centres - aim))]), 6)


def _cut_points(samples: np.ndarray, sr: int, segs: list[Segment]) -> list[float]:
    """One cut time between each pair of neighbouring segments."""
    hop = max(int(round(FRAME_SECONDS * sr)), 1)
    n = samples.size // hop
    frame_rms = np.sqrt(np.mean(np.square(samples[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))
    cuts = []
    for a, b in zip(segs, segs[1:]):
        # Search the gap widened by the slack, but never past the middle of either segment.
        lo = max(a.end - BOUNDARY_SLACK, (a.start + a.end) / 2)
        hi = min(b.start + BOUNDARY_SLACK, (b.start + b.end) / 2)
        aim = min(max((a.end + b.start) / 2, lo), hi)
        cuts.append(_quietest(frame_rms, lo, hi, aim))
    return cuts


def plan_pieces(samples: np.ndarray, sr: int, segs: list[Segment], max_seconds: float) -> list[Piece]:
    """Group whole segments into as few pieces as fit (greedily, in order), each <= max_seconds.

    Raises:
        CannotSplit: a segment, with the pauses around it up to the neighbouring cuts, is
            longer than max_seconds on its own.
    """
    seconds = samples.size / sr
    bounds = [0.0, *_cut_points(samples, sr, segs), seconds]  # segment k lies in bounds[k]..bounds[k+1]
    pieces, i = [], 0
    while i < len(segs):
        j = i
        while j < len(segs) and bounds[j + 1] - bounds[i] <= max_seconds:
            j += 1
        if j == i:
            s = segs[i]
            raise CannotSplit({"start": s.start, "end": s.end}, f"segment {i + 1} spans {bounds[i]:.2f}-{bounds[i + 1]:.2f} s "
                              f"between its cuts, longer than the {max_seconds:g} s window", "split that segment in the manifest")
        text = " ".join(s.text.strip() for s in segs[i:j] if s.text.strip())
        pieces.append(Piece(bounds[i], bounds[j], text))
        i = j
    return pieces


def plan_utterance(utt: Utterance, samples: np.ndarray, sr: int, max_seconds: float) -> list[Piece]:
    """The pieces of one over-long utterance (validation uses it to check the split in advance)."""
    return plan_pieces(samples, sr, parse_segments(utt.segments, samples.size / sr, utt.text), max_seconds)


def _safe_name(utt_id: str) -> str:
    return re.sub(r"[^\w.-]", "_", utt_id)[:60] or "utt"


def split_utterance(utt: Utterance, max_seconds: float, out_dir: Path) -> list[Utterance]:
    """[utt] when it fits the window, else its pieces (written to out_dir unless already there)."""
    samples, sr, _ = audio_info(utt.audio_filepath)
    if samples.size / sr <= max_seconds:
        return [utt]
    pieces = plan_utterance(utt, samples, sr, max_seconds)
    audio = resample(samples, sr)
    source_key = file_sha1(utt.audio_filepath)
    max_samples = int(max_seconds * SAMPLE_RATE)
    out = []
    for k, piece in enumerate(pieces, start=1):
        a = int(round(piece.start * SAMPLE_RATE))
        b = min(int(round(piece.end * SAMPLE_RATE)), a + max_samples, audio.size)
        key = hashlib.sha1(f"{source_key}:{a}:{b}".encode()).hexdigest()[:10]
        path = Path(out_dir) / f"{_safe_name(utt.id)}-part{k}-{key}.wav"
        if not path.is_file():  # the name fixes the content: an existing file is this piece
            write_wav(path, audio[a:b])
        out.append(Utterance(str(path.resolve()), piece.text, round((b - a) / SAMPLE_RATE, 3), f"{utt.id}-part{k}", utt.speaker))
    return out


def split_long(utts: list[Utterance], max_seconds: float, out_dir: Path) -> tuple[list[Utterance], dict]:
    """Replace every over-long utterance that has segments by its pieces, in place of it.

    Only lines with segments are read again (the others cannot be split; validation dropped
    the over-long ones among them).

    Returns:
        (utterances, {"utterances": how many were split, "pieces": how many pieces they gave})
    """
    out, stats = [], {"utterances": 0, "pieces": 0}
    for u in utts:
        parts = split_utterance(u, max_seconds, out_dir) if u.segments is not None else [u]
        if parts[0] is not u:
            stats["utterances"] += 1
            stats["pieces"] += len(parts)
        out += parts
    return out, stats
