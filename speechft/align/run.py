"""`speechft align` and `data.long_audio: align`: long recordings with a transcript and no
timings -> pieces of at most the model's window, each with exactly its span of the transcript.

The pieces are cut and written by segment.py (the `split` path), from segments that the
alignment gives the line, so they are reused by content in `pieces/` as split pieces are;
word timestamps are cached in `words/`. A second run transcribes and writes nothing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..audio import audio_info, file_sha1, resample
from ..errors import SpeechftError
from ..io_utils import write_text_if_changed
from ..manifest import Utterance, read_manifest
from ..segment import split_utterance
from .plan import MAX_PIECE_WER, plan_recording
from .words import DEFAULT_ALIGNER, Transcriber, aligner_dir

log = logging.getLogger("speechft")
PIECES_DIR = "pieces"
WORDS_DIR = "words"


@dataclass
class Dropped:
    id: str  # the recording's
    part: int  # 1-based piece number
    start: float  # s
    end: float
    wer: float
    text: str

    def __str__(self) -> str:
        return f"{self.id} piece {self.part} ({self.start:.2f}-{self.end:.2f} s): WER {self.wer:.2f}: {self.text[:60]!r}"


@dataclass
class AlignReport:
    manifest: Path  # the manifest with long lines replaced by their pieces (the input when none was long)
    recordings: int = 0  # lines aligned and cut
    pieces: int = 0  # pieces kept
    dropped: list[Dropped] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)

    def summary(self) -> str:
        lines = [f"aligned {self.recordings} recording(s) into {self.pieces} piece(s) -> {self.manifest}"]
        if self.dropped:
            lines.append(f"{len(self.dropped)} piece(s) dropped (their hypothesis disagrees with their text):")
            lines += [f"  {d}" for d in self.dropped]
        if self.refused:
            lines.append(f"{len(self.refused)} recording(s) refused:")
            lines += [f"  {uid}: {reason}" for uid, reason in self.refused]
        return "\n".join(lines)


def align_utterance(utt: Utterance, transcriber: Transcriber, max_seconds: float, pieces_dir: Path,
                    max_wer: float = MAX_PIECE_WER) -> tuple[list[Utterance], list[Dropped]]:
    """Cut one long recording into pieces of at most `max_seconds`, each with its span of `utt.text`.

    Returns:
        (the kept pieces as utterances, the dropped pieces)

    Raises:
        TranscriptMismatch: the transcript does not belong to the recording, or it cannot be cut.
        SpeechftError: the audio cannot be decoded.
    """
    samples, sr, _ = audio_info(utt.audio_filepath)
    words = transcriber.words(resample(samples, sr), file_sha1(utt.audio_filepath))
    segs, planned, _ = plan_recording(utt.text, words, samples, sr, max_seconds, max_wer)
    with_segments = replace(utt, segments=[{"start": s.start, "end": s.end, "text": s.text} for s in segs])
    # split_utterance plans the same pieces again and writes them all: a dropped piece's file stays
    # in pieces/ unused, so that a rerun finds every file and writes nothing.
    parts = split_utterance(with_segments, max_seconds, pieces_dir)
    if len(parts) != len(planned):
        raise SpeechftError(f"{utt.id}: the split gave {len(parts)} pieces, the alignment {len(planned)} (a bug; please report it)")
    dropped = [Dropped(utt.id, k, p.piece.start, p.piece.end, p.wer, p.piece.text)
               for k, p in enumerate(planned, start=1) if not p.kept]
    return [u for u, p in zip(parts, planned) if p.kept], dropped


def _seconds(path: str) -> float | None:
    import soundfile as sf

    if not os.path.isfile(path):
        return None  # validation reports it
    try:
        info = sf.info(path)
        return info.frames / info.samplerate
    except Exception:  # soundfile cannot read the header (some MP3s): decode it
        try:
            samples, sr, _ = audio_info(path)
        except SpeechftError:
            return None
        return samples.size / sr


def _line(u: Utterance, folder: Path) -> str:
    d = u.to_dict()
    d["audio_filepath"] = os.path.relpath(u.audio_filepath, folder.resolve())
    return json.dumps(d, ensure_ascii=False) + "\n"


def align_long_lines(manifest: str | Path, out_dir: str | Path, model: str = DEFAULT_ALIGNER, max_seconds: float = 30.0,
                     max_wer: float = MAX_PIECE_WER, strict: bool = True) -> AlignReport:
    """Replace every line longer than `max_seconds` that has no `segments` by its aligned pieces.

    Other lines are copied as they are (lines with segments are left to data.long_audio's
    split). Writes `out_dir/<manifest name>` (untouched when unchanged), `out_dir/pieces/`
    and `out_dir/words/`; a manifest with no line to align is not copied.

    Args:
        model: the aligner: a built-in alias, a CTranslate2 folder or an HF Whisper folder.
        max_wer: pieces whose hypothesis disagrees with their text more than this are dropped.
        strict: raise when a recording is refused; else leave it out and report it.

    Returns:
        AlignReport (the new manifest, counts, dropped pieces, refused recordings).

    Raises:
        SpeechftError: a refused recording when strict (its transcript belongs to another
            recording, say), the manifest cannot be read, or the aligner cannot be loaded.
    """
    manifest, out_dir = Path(manifest), Path(out_dir)
    utts = read_manifest(manifest)
    report = AlignReport(out_dir / manifest.name)
    transcriber = None
    out: list[Utterance] = []
    for u in utts:
        seconds = _seconds(u.audio_filepath)
        if u.segments is not None or seconds is None or seconds <= max_seconds:
            out.append(u)
            continue
        if transcriber is None:  # loaded only when a line needs it
            transcriber = Transcriber(aligner_dir(model), out_dir / WORDS_DIR)
        try:
            pieces, dropped = align_utterance(u, transcriber, max_seconds, out_dir / PIECES_DIR, max_wer)
        except SpeechftError as e:  # TranscriptMismatch, or audio or segments that cannot be cut
            report.refused.append((u.id, f"{u.audio_filepath} ({seconds:.1f} s): {e}"))
            continue
        out += pieces
        report.recordings += 1
        report.pieces += len(pieces)
        report.dropped += dropped
    if report.refused and strict:
        raise SpeechftError(f"{manifest}: {report.summary()}\nNothing was written. Fix: give each recording its own "
                            "transcript, or leave the refused lines out (data.skip_invalid: true does that in a recipe)")
    if not report.recordings and not report.refused:
        report.manifest = manifest  # nothing to cut: the manifest serves as it is
        return report
    write_text_if_changed(report.manifest, "".join(_line(u, out_dir) for u in out))
    if report.dropped or report.refused:
        log.warning("%s", report.summary())
    return report

