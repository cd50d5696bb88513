"""Manifest validation: collect every problem at once, each naming line, id, field, value and fix.

Severity:
- error:   the utterance cannot be used; `speechft run` stops unless data.skip_invalid is set.
- drop:    the utterance is left out with a report line, the run goes on (audio longer than
           the model's window; Whisper cannot see past 30 s).
- warning: the utterance is usable after automatic conversion (resampling, down-mixing).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .audio import SAMPLE_RATE, audio_info
from .errors import SpeechftError
from .manifest import Utterance, parse_line
from .text import normalize, spoken_form

DURATION_TOLERANCE = 0.1  # s, allowed gap between the manifest's duration and the audio
SILENCE_PEAK = 1e-4  # peak amplitude below which a file counts as silent


@dataclass
class Problem:
    manifest: str
    line: int
    id: str
    field: str
    value: str
    problem: str
    fix: str
    severity: str = "error"  # error | drop | warning

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


def _short(value, n: int = 60) -> str:
    """repr() cut to n characters; paths keep their end, where the file name is."""
    s = repr(value)
    if len(s) <= n:
        return s
    return "..." + s[-(n - 3):] if isinstance(value, (str, Path)) and os.sep in str(value) else s[: n - 3] + "..."


def _check_audio(utt: Utterance, line: int, manifest: str, limits: Limits) -> list[Problem]:
    def p(field, value, problem, fix, severity="error"):
        return Problem(manifest, line, utt.id, field, _short(value), problem, fix, severity)

    path = utt.audio_filepath
    if limits.root is not None:
        root = limits.root.resolve()
        if not Path(os.path.realpath(path)).is_relative_to(root):
            return [p("audio_filepath", path, f"path escapes the data root {root}", "keep audio inside the data root")]
    if not os.path.isfile(path):
        return [p("audio_filepath", path, "file not found", "fix the path (relative paths resolve against the manifest's folder)")]
    try:
        samples, sr, channels = audio_info(path)
    except SpeechftError as e:
        return [p("audio_filepath", path, f"cannot decode: {str(e).split(': ', 1)[-1].split('. Fix')[0]}", "re-encode as 16-bit WAV/FLAC or remove the line")]
    problems = []
    seconds = samples.size / sr if sr else 0.0
    if samples.size == 0:
        return [p("audio_filepath", path, "audio has zero samples", "re-record or remove the line")]
    if not np.isfinite(samples).all():
        return [p("audio_filepath", path, "audio contains NaN or Inf samples", "re-export the audio or remove the line")]
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        problems.append(p("audio_filepath", path, "audio is silent", "check the recording or remove the line"))
    if sr != SAMPLE_RATE:
        problems.append(p("sample_rate", sr, f"resampled to {SAMPLE_RATE} Hz on load" + (" (narrow-band: no content above 4 kHz)" if sr < SAMPLE_RATE else ""), "none needed; resample offline to save time", "warning"))
    if channels > 1:
        problems.append(p("channels", channels, "down-mixed to mono on load", "none needed; store mono to save space", "warning"))
    if utt.duration is not None and abs(utt.duration - seconds) > DURATION_TOLERANCE:
        problems.append(p("duration", utt.duration, f"audio lasts {seconds:.2f} s", f"set duration to {seconds:.2f} (or regenerate the manifest)"))
    if seconds > limits.max_seconds:
        problems.append(p("duration", round(seconds, 2), f"longer than the model's {limits.max_seconds:g} s window; dropped", "split the recording into shorter utterances", "drop"))
    if seconds < limits.min_seconds:
        problems.append(p("duration", round(seconds, 3), f"shorter than the model's receptive field ({limits.min_seconds:.3f} s)", "remove the line or pad the audio"))
    return problems


def _check_text(utt: Utterance, line: int, manifest: str, limits: Limits) -> list[Problem]:
    def p(problem, fix, value=utt.text):
        return Problem(manifest, line, utt.id, "text", _short(value), problem, fix)

    norm = normalize(utt.text)
    if not norm:
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


def validate_manifest(path: str | Path, limits: Limits | None = None, jobs: int = 4) -> tuple[list[Utterance], list[Problem]]:
    """Check every line of one manifest.

    Returns:
        (usable utterances, all problems). Usable = no problem of severity error or drop.
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
                entries.append((line_no, Utterance.from_dict(d, path.parent.resolve(), line_no)))
            except SpeechftError as e:
                msg = str(e).split(": ", 1)[-1]
                problem, _, fix = msg.partition(". Fix: ")
                problems.append(Problem(name, line_no, "", "line", _short(raw[:60].decode("utf-8", "replace")), problem, fix or "correct the line"))
            except (TypeError, ValueError) as e:
                problems.append(Problem(name, line_no, "", "line", _short(raw[:60].decode("utf-8", "replace")), f"bad value: {e}", "duration must be a number, audio_filepath and text strings"))

    seen: dict[str, int] = {}
    for line_no, utt in entries:
        if utt.id in seen:
            problems.append(Problem(name, line_no, utt.id, "id", _short(utt.id), f"duplicate id (first on line {seen[utt.id]})", "give every utterance a unique id"))
        else:
            seen[utt.id] = line_no

    # Decoding dominates; soundfile releases the GIL, so threads overlap file I/O and decoding.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        per_utt = list(pool.map(lambda e: _check_audio(e[1], e[0], name, limits) + _check_text(e[1], e[0], name, limits), entries))
    bad_lines = {p.line for p in problems if p.severity != "warning"}
    usable = []
    for (line_no, utt), probs in zip(entries, per_utt):
        problems.extend(probs)
        if line_no not in bad_lines and not any(p.severity != "warning" for p in probs):
            usable.append(utt)
    problems.sort(key=lambda p: p.line)
    return usable, problems


def validate_manifests(paths, limits: Limits | None = None) -> list[Problem]:
    """All problems of several manifests (ids must be unique within each manifest)."""
    problems = []
    for path in paths:
        problems.extend(validate_manifest(path, limits)[1])
    return problems


def summarize(problems: list[Problem]) -> str:
    """One line per problem, then counts per severity."""
    lines = [p.message for p in problems]
    counts = {s: sum(p.severity == s for p in problems) for s in ("error", "drop", "warning")}
    lines.append(f"{counts['error']} error(s), {counts['drop']} dropped, {counts['warning']} warning(s)")
    return "\n".join(lines)
