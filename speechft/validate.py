"""Manifest validation: collect every problem at once, each naming line, id, field, value and fix.

Severity:
- error:   the utterance cannot be used; `speechft run` stops unless data.skip_invalid is set.
- drop:    the utterance is left out with a report line, the run goes on (audio longer than
           the model's window, as Whisper cannot see past 30 s; implausible data: a clip too
           short to hold speech, a transcript spoken implausibly slowly or fast).
- split:   audio longer than the window that data.long_audio: split will cut at its segment
           boundaries (segment.py); usable, the runner replaces it by its pieces.
- warning: the utterance is usable after automatic conversion (resampling, down-mixing), or
           the pretrained model heard something else (`speechft validate --model M --max-wer X`).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .audio import SAMPLE_RATE, audio_info
from .errors import SpeechftError
from .manifest import ManifestLineError, Utterance, parse_line
from .manifest import short_repr as _short
from .segment import SEGMENTS_FORMAT, CannotSplit, Piece, plan_utterance
from .text import normalize, spoken_form

DURATION_TOLERANCE = 0.1  # s, allowed gap between the manifest's duration and the audio
SILENCE_PEAK = 1e-4  # peak amplitude below which a file counts as silent
BLOCKING = ("error", "drop")  # severities that leave the utterance out
SEGMENTS_HOWTO = f"add {SEGMENTS_FORMAT} (from forced alignment or subtitles)"


@dataclass
class Problem:
    manifest: str
    line: int
    id: str
    field: str
    value: str
    problem: str
    fix: str
    severity: str = "error"  # error | drop | split | warning

    @property
    def message(self) -> str:
        return (
            f"{self.severity.upper()} {self.manifest}:{self.line} id={self.id or '?'} "
            f"{self.field}={self.value}: {self.problem}. Fix: {self.fix}"
        )


@dataclass
class Limits:
    """What the target model can take; the runner fills it from the model."""

    max_seconds: float = 30.0
    min_seconds: float = 0.0  # CTC: the CNN's receptive field
    max_label_tokens: int | None = None
    count_tokens: Callable[[str], int] | None = None
    vocab: set[str] | None = None  # CTC character vocabulary (after normalisation)
    root: Path | None = None  # audio must stay inside it when set
    long_audio: str = "drop"  # drop | split (see segment.py)
    allow_empty_text: bool = False  # a non-speech set: text "" means "the model should output nothing"
    # Plausibility (data.min_seconds, data.min/max_chars_per_second; 0 = off): implausible lines are dropped.
    min_clip_seconds: float = 0.0
    min_chars_per_second: float = 0.0  # of the normalised text
    max_chars_per_second: float = 0.0

    def with_data_checks(self, data) -> "Limits":
        """These limits with the plausibility checks of a DataConfig."""
        return replace(self, min_clip_seconds=data.min_seconds, min_chars_per_second=data.min_chars_per_second,
                       max_chars_per_second=data.max_chars_per_second)


def _long_audio(utt: Utterance, samples: np.ndarray, sr: int, limits: Limits, p) -> tuple[Problem, list[Piece] | None]:
    """The problem for audio longer than the window, and its pieces when it will be split."""
    seconds = samples.size / sr
    window = f"longer than the model's {limits.max_seconds:g} s window"
    if limits.long_audio != "split":
        fix = ("set data.long_audio: split to cut it at its segment boundaries (check: speechft validate --long-audio split)"
               if utt.segments is not None
               else f"{SEGMENTS_HOWTO} and set data.long_audio: split, or split the recording into shorter utterances")
        return p("duration", round(seconds, 2), f"{window}; dropped", fix, "drop"), None
    if utt.segments is None:
        return p("duration", round(seconds, 2), f"{window}; dropped (data.long_audio: split needs the line's segments)",
                 f"{SEGMENTS_HOWTO}, or split the recording into shorter utterances", "drop"), None
    try:
        pieces = plan_utterance(utt, samples, sr, limits.max_seconds)
    except CannotSplit as e:
        return p("segments", e.value, f"{window} and cannot be split: {e.problem}; dropped", e.fix, "drop"), None
    return p("duration", round(seconds, 2), f"{window}; split into {len(pieces)} pieces at segment boundaries",
             "none needed (data.long_audio: split)", "split"), pieces


def _check_audio(utt: Utterance, line: int, manifest: str, limits: Limits) -> tuple[list[Problem], list[Piece] | None]:
    """Problems of the audio, and the pieces when it is over-long and will be split."""
    def p(field, value, problem, fix, severity="error"):
        return Problem(manifest, line, utt.id, field, _short(value), problem, fix, severity)

    path = utt.audio_filepath
    if limits.root is not None:
        root = limits.root.resolve()
        if not Path(os.path.realpath(path)).is_relative_to(root):
            return [p("audio_filepath", path, f"path escapes the data root {root}", "keep audio inside the data root")], None
    if not os.path.isfile(path):
        return [p("audio_filepath", path, "file not found", "fix the path (relative paths resolve against the manifest's folder)")], None
    try:
        samples, sr, channels = audio_info(path)
    except SpeechftError as e:
        return [p("audio_filepath", path, f"cannot decode: {str(e).split(': ', 1)[-1].split('. Fix')[0]}", "re-encode as 16-bit WAV/FLAC or remove the line")], None
    problems = []
    seconds = samples.size / sr if sr else 0.0
    if samples.size == 0:
        return [p("audio_filepath", path, "audio has zero samples", "re-record or remove the line")], None
    if not np.isfinite(samples).all():
        return [p("audio_filepath", path, "audio contains NaN or Inf samples", "re-export the audio or remove the line")], None
    # Silence is a fine non-speech clip (empty transcript allowed); with words it is a wrong pair.
    if float(np.abs(samples).max()) < SILENCE_PEAK and not (limits.allow_empty_text and not utt.text.strip()):
        problems.append(p("audio_filepath", path, "audio is silent", "check the recording or remove the line"))
    if sr != SAMPLE_RATE:
        problems.append(p("sample_rate", sr, f"resampled to {SAMPLE_RATE} Hz on load" + (" (narrow-band: no content above 4 kHz)" if sr < SAMPLE_RATE else ""), "none needed; resample offline to save time", "warning"))
    if channels > 1:
        problems.append(p("channels", channels, "down-mixed to mono on load", "none needed; store mono to save space", "warning"))
    if utt.duration is not None and abs(utt.duration - seconds) > DURATION_TOLERANCE:
        problems.append(p("duration", utt.duration, f"audio lasts {seconds:.2f} s", f"set duration to {seconds:.2f} (or regenerate the manifest)"))
    pieces = None
    if seconds > limits.max_seconds:
        problem, pieces = _long_audio(utt, samples, sr, limits, p)
        problems.append(problem)
    if seconds < limits.min_seconds:
        problems.append(p("duration", round(seconds, 3), f"shorter than the model's receptive field ({limits.min_seconds:.3f} s)", "remove the line or pad the audio"))
    if not any(q.severity in BLOCKING for q in problems):  # one reason per left-out line
        problems += _implausible(utt, seconds, limits, p)
    return problems, pieces


def _implausible(utt: Utterance, seconds: float, limits: Limits, p) -> list[Problem]:
    """Drops for data that cannot be what it claims: a clip too short to hold speech, or a
    transcript spoken implausibly slowly or fast (it belongs to another clip, or was cut off)."""
    if seconds < limits.min_clip_seconds:
        return [p("duration", round(seconds, 3), f"too short to hold speech ({seconds:.3f} s < data.min_seconds={limits.min_clip_seconds:g} s); dropped",
                  "check the recording and its transcript, or remove the line", "drop")]
    chars = len(normalize(utt.text))
    if not chars:  # no transcript to measure (an error already, or an allowed non-speech clip)
        return []
    rate = chars / seconds
    said = f"{_short(utt.text, 40)} ({chars} characters) in {seconds:.2f} s is {rate:.2f} characters/s"
    fix = "check that the transcript belongs to this audio and is complete, or remove the line"
    if limits.min_chars_per_second and rate < limits.min_chars_per_second:
        return [p("speaking_rate", round(rate, 2), f"speaking rate implausibly slow ({said}, below data.min_chars_per_second={limits.min_chars_per_second:g}); dropped",
                  f"{fix} (long silence: trim it)", "drop")]
    if limits.max_chars_per_second and rate > limits.max_chars_per_second:
        return [p("speaking_rate", round(rate, 2), f"speaking rate implausibly fast ({said}, above data.max_chars_per_second={limits.max_chars_per_second:g}); dropped",
                  fix, "drop")]
    return []


def _check_text(utt: Utterance, line: int, manifest: str, limits: Limits) -> list[Problem]:
    def p(problem, fix, value=utt.text):
        return Problem(manifest, line, utt.id, "text", _short(value), problem, fix)

    norm = normalize(utt.text)
    if not norm:
        if limits.allow_empty_text and not utt.text.strip():
            return []  # a non-speech clip: "should output nothing" is the label
        return [p("text is empty after normalisation (nothing to learn)", "write the transcript, or remove the line")]
    problems = []
    if limits.vocab is not None:  # character models learn the spoken form (text.spoken_form)
        spoken = spoken_form(utt.text)
        oov = sorted({c for c in spoken if c != " " and c not in limits.vocab})
        if oov:
            problems.append(p(f"symbols outside the model vocabulary: {''.join(oov)!r}", "spell them out, or let the recipe extend the CTC vocabulary"))
            if len(oov) == len(set(spoken.replace(" ", ""))):
                problems[-1].problem = "text has only symbols outside the model vocabulary"
    if limits.count_tokens is not None and limits.max_label_tokens is not None:
        n = limits.count_tokens(utt.text)
        if n > limits.max_label_tokens:
            problems.append(p(f"{n} tokens, more than the decoder's {limits.max_label_tokens}", "split the utterance"))
    return problems


def validate_manifest(path: str | Path, limits: Limits | None = None, jobs: int = 4,
                      heard: Callable[[list[Utterance]], Any] | None = None, max_wer: float = 0.5) -> tuple[list[Utterance], list[Problem]]:
    """Check every line of one manifest.

    Args:
        heard: transcribes and scores utterances (evaluate.evaluate with a pretrained model);
            usable lines it hears with a WER above `max_wer` are listed as suspect transcripts
            (warnings: they stay usable, a person decides).

    Returns:
        (usable utterances, all problems). Usable = no problem of severity error or drop; an
        utterance with a "split" problem is usable once segment.split_long has cut it.
    """
    limits = limits or Limits()
    path = Path(path)
    name = str(path)
    if not path.is_file():
        return [], [Problem(name, 0, "", "manifest", _short(name), "manifest file not found", "check the path, or run `speechft prepare <domain>`")]
    entries: list[tuple[int, Utterance]] = []
    problems: list[Problem] = []
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                d = parse_line(raw, line_no, path)
            except ManifestLineError as e:
                problems.append(Problem(name, line_no, e.id, e.field, e.value, e.problem, e.fix))
                continue
            entries.append((line_no, Utterance.from_dict(d, path.parent.resolve(), line_no)))

    seen: dict[str, int] = {}
    for line_no, utt in entries:
        if utt.id in seen:
            problems.append(Problem(name, line_no, utt.id, "id", _short(utt.id), f"duplicate id (first on line {seen[utt.id]})", "give every utterance a unique id"))
        else:
            seen[utt.id] = line_no

    def check(entry: tuple[int, Utterance]) -> list[Problem]:
        line_no, utt = entry
        probs, pieces = _check_audio(utt, line_no, name, limits)
        if pieces is None:
            return probs + _check_text(utt, line_no, name, limits)
        for k, piece in enumerate(pieces, start=1):  # each piece's text is a label of its own
            for q in _check_text(replace(utt, text=piece.text), line_no, name, limits):
                q.problem = f"piece {k} ({piece.start:.2f}-{piece.end:.2f} s): {q.problem}"
                probs.append(q)
        return probs

    # Decoding dominates; soundfile releases the GIL, so threads overlap file I/O and decoding.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        per_utt = list(pool.map(check, entries))
    bad_lines = {p.line for p in problems if p.severity in BLOCKING}
    usable, whole = [], {}
    for (line_no, utt), probs in zip(entries, per_utt):
        problems.extend(probs)
        if line_no not in bad_lines and not any(p.severity in BLOCKING for p in probs):
            usable.append(utt)
            if not any(p.severity == "split" for p in probs):  # over-long audio: the model hears only its first window
                whole[utt.id] = line_no
    if heard is not None and whole:
        problems += suspect_transcripts(name, heard([u for u in usable if u.id in whole]), whole, max_wer)
    problems.sort(key=lambda p: p.line)
    return usable, problems


def suspect_transcripts(manifest: str, result, lines: dict[str, int], max_wer: float) -> list[Problem]:
    """Warnings for utterances the model heard differently from their transcript.

    Args:
        result: per-utterance scores (evaluate.EvalResult: .utterances with id, ref, hyp, errors, words).
        lines: the manifest line of each utterance id.
    """
    problems = []
    for r in result.utterances:
        wer = r.errors / r.words if r.words else (math.inf if r.errors else 0.0)
        if wer > max_wer:
            how = f"WER {wer:.2f} > {max_wer:g}" if r.words else "the line is labelled as non-speech"
            problems.append(Problem(manifest, lines[r.id], r.id, "text", _short(r.ref), f"suspect transcript: model heard {_short(r.hyp.strip())} ({how})",
                                    "listen to the clip: correct the text if it is wrong, remove the line if the audio is", "warning"))
    return problems


def validate_manifests(paths, limits: Limits | None = None, heard: Callable[[list[Utterance]], Any] | None = None,
                       max_wer: float = 0.5) -> list[Problem]:
    """All problems of several manifests (ids must be unique within each manifest); see validate_manifest."""
    problems = []
    for path in paths:
        problems.extend(validate_manifest(path, limits, heard=heard, max_wer=max_wer)[1])
    return problems


def summarize(problems: list[Problem]) -> str:
    """One line per problem, then counts per severity."""
    lines = [p.message for p in problems]
    counts = {s: sum(p.severity == s for p in problems) for s in ("error", "drop", "split", "warning")}
    split = f", {counts['split']} to split" if counts["split"] else ""
    lines.append(f"{counts['error']} error(s), {counts['drop']} dropped{split}, {counts['warning']} warning(s)")
    return "\n".join(lines)
