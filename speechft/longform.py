"""Long recordings for the report's `long` condition, and the timing of decoded segments.

Users send dictations and calls of minutes, not 5 s clips. The report joins held-out test
utterances into 1-3 minute recordings with natural pauses, decodes them the way the deployed
model does (faster-whisper's long-form loop), and reports their WER beside the short-clip
WER, plus how well the model's timestamps find the sentences: the share of decoded segments
that carry real timestamps and the mean distance between each sentence's true start/end and
the nearest segment boundary.

Recordings are deterministic (seeded order and pauses) and written once, named by content.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, load_audio, speech_edges, write_wav
from .manifest import Utterance

MIN_SECONDS = 60.0  # a recording is at least this long ...
MAX_SECONDS = 180.0  # ... and at most this long
TARGET_SECONDS = 90.0  # recordings are closed once they pass this length
PAUSE_SECONDS = (0.6, 1.8)  # s, uniform: the silence a speaker leaves between sentences
NOISE_FLOOR = 3e-4  # amplitude of the pause's room noise (digital silence is not natural)


@dataclass(frozen=True)
class TimedText:
    start: float  # s
    end: float
    text: str


def plan_recordings(utts: list[Utterance], seed: int = 0) -> list[list[Utterance]]:
    """Groups of utterances, in a seeded order, each lasting MIN_SECONDS..MAX_SECONDS with pauses.

    The last group is merged into the one before when it would be shorter than MIN_SECONDS;
    a set too short for one recording gives a single shorter one.
    """
    order = sorted(utts, key=lambda u: u.id)
    random.Random(seed).shuffle(order)
    groups: list[list[Utterance]] = [[]]
    seconds = 0.0
    for u in order:
        length = (u.duration or 0.0) + PAUSE_SECONDS[1]
        if groups[-1] and (seconds >= TARGET_SECONDS or seconds + length > MAX_SECONDS):
            groups.append([])
            seconds = 0.0
        groups[-1].append(u)
        seconds += length
    if len(groups) > 1 and sum((u.duration or 0.0) + PAUSE_SECONDS[0] for u in groups[-1]) < MIN_SECONDS:
        last = groups.pop()
        groups[-1] += last
    return [g for g in groups if g]


def build_recordings(utts: list[Utterance], out_dir: Path, seed: int = 0) -> list[Utterance]:
    """Write the long recordings of `utts` (reused when already there).

    Returns one Utterance per recording: its text is the sentences' texts joined, and
    `segments` holds each sentence's speech start/end in the recording (for boundary errors).
    """
    out = []
    for k, group in enumerate(plan_recordings(utts, seed)):
        rng = np.random.default_rng([seed, k])
        pauses = rng.uniform(*PAUSE_SECONDS, size=len(group))
        parts, segments, t = [], [], 0.0
        for u, pause in zip(group, pauses):
            audio = load_audio(u.audio_filepath)
            first, last = speech_edges(audio)
            segments.append({"start": round(t + first, 3), "end": round(t + last, 3), "text": u.text, "id": u.id})
            gap = (NOISE_FLOOR * rng.standard_normal(int(pause * SAMPLE_RATE))).astype(np.float32)
            parts += [audio, gap]
            t += (audio.size + gap.size) / SAMPLE_RATE
        key = hashlib.sha1(json.dumps([seed, [u.id for u in group], [s["start"] for s in segments]]).encode()).hexdigest()[:12]
        path = Path(out_dir) / f"long-{k:02d}-{key}.wav"
        if not path.is_file():  # the name fixes the content
            write_wav(path, np.concatenate(parts))
        out.append(Utterance(str(path.resolve()), " ".join(u.text.strip() for u in group), round(t, 3), f"long-{k:02d}",
                             "+".join(sorted({u.speaker for u in group if u.speaker})) or None, segments))
    return out


def has_timestamps(segment, timestamp_begin: int) -> bool:
    """True when faster-whisper cut the segment at the model's own timestamp tokens; a window
    the model decoded without any becomes one segment spanning the whole window."""
    return any(t >= timestamp_begin for t in segment.tokens)


def boundary_errors(reference: list[dict], segments: list) -> list[float]:
    """For each reference sentence, |true start - nearest segment start| and |true end - nearest
    segment end| (seconds); empty when nothing was decoded."""
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    if starts.size == 0:
        return []
    out = []
    for ref in reference:
        out.append(float(np.min(np.abs(starts - ref["start"]))))
        out.append(float(np.min(np.abs(ends - ref["end"]))))
    return out


def timing_summary(recordings: list[Utterance], segments_per_recording: list[list], timestamp_begin: int) -> dict:
    """Share of decoded segments with real timestamps and the mean boundary error (s)."""
    segments = [s for segs in segments_per_recording for s in segs]
    errors = [e for rec, segs in zip(recordings, segments_per_recording) for e in boundary_errors(rec.segments or [], segs)]
    return {
        "segments": len(segments),
        "timestamped_share": (sum(has_timestamps(s, timestamp_begin) for s in segments) / len(segments)) if segments else None,
        "boundary_error_s": float(np.mean(errors)) if errors else None,
    }


def nonspeech_summary(hyps: list[str], durations: list[float]) -> dict:
    """How much a model says on clips with no speech: share of clips with any word, words per minute."""
    words = [len(h.split()) for h in hyps]
    minutes = sum(durations) / 60
    return {
        "clips": len(hyps),
        "clips_with_words": sum(w > 0 for w in words),
        "share_with_words": (sum(w > 0 for w in words) / len(hyps)) if hyps else None,
        "words_per_minute": (sum(words) / minutes) if minutes else None,
    }


CLIPS_PER_BATCH = 8  # clips of one recording decoded together (each is one 30-s window)


def transcribe_in_clips(adapter, audio: np.ndarray, options) -> tuple[str, list[dict]]:
    """Audio of any length through a Hugging Face adapter, as the deployed model hears it.

    Up to Whisper's 30-s window: one window, exactly as `speechft eval` decodes. Longer audio is
    cut at pauses by Silero VAD into clips of at most 30 s (`speech_clips`, the cut the CT2 path
    hands faster-whisper), each decoded as one window; a recording without speech gets no words.
    A blind 30-s cut, or transformers' long-form seeking, can split a word at a window edge.

    Returns:
        (the text, [{"start", "end", "text"}] per clip, in seconds).
    """
    from .models.ct2.runtime import WINDOW_SECONDS, speech_clips

    duration = audio.size / SAMPLE_RATE
    if duration <= WINDOW_SECONDS:
        text = adapter.transcribe_audio([audio], options)[0]
        return text, [{"start": 0.0, "end": round(duration, 2), "text": text}]
    bounds = speech_clips(audio)
    spans = list(zip(bounds[0::2], bounds[1::2]))
    texts: list[str] = []
    for i in range(0, len(spans), CLIPS_PER_BATCH):
        batch = spans[i : i + CLIPS_PER_BATCH]
        texts += adapter.transcribe_audio([audio[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)] for s, e in batch], options)
    segments = [{"start": round(s, 2), "end": round(e, 2), "text": t.strip()} for (s, e), t in zip(spans, texts)]
    return " ".join(seg["text"] for seg in segments if seg["text"]), segments
