"""Forced alignment of long recordings to their transcripts with a pretrained Whisper.

Modules: `words` (word timestamps through faster-whisper, cached), `match` (hypothesis words
aligned to the transcript's words), `plan` (where to cut, which pieces to keep), `run`
(manifests in, pieces and a manifest out).
"""

from .plan import TranscriptMismatch
from .run import AlignReport, Dropped, align_long_lines, align_utterance
from .words import DEFAULT_ALIGNER, Transcriber, aligner_dir

__all__ = ["AlignReport", "DEFAULT_ALIGNER", "Dropped", "Transcriber", "TranscriptMismatch", "aligner_dir",
           "align_long_lines", "align_utterance"]
