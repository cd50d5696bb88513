"""Where to cut a long recording, from its aligned transcript.

The transcript is grouped into runs: sentences that end in a pause; where a sentence does not
fit the window, stretches between pauses (a gap of at least MIN_PAUSE between two words'
timestamps); where none fits either, single words. Cuts fall only between words that the
model's words were aligned to (heard right or misheard, not missed). The runs become segments, and
segment.plan_pieces packs whole segments into pieces of at most `max_seconds`, cutting at the
quietest point of each chosen gap.
Each piece's text is exactly its span of the transcript, so the pieces' texts joined are the
transcript; a piece whose hypothesis disagrees with its text beyond `max_wer` is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpeechftError
from ..segment import CannotSplit, Piece, Segment, plan_pieces
from .match import Alignment, Token, align_words, piece_wer
from .words import Word

MIN_PAUSE = 0.2  # s between two words' timestamps: Whisper's word times touch within a phrase
MAX_PIECE_WER = 0.4  # a piece whose hypothesis disagrees more is dropped
MAX_RECORDING_WER = 0.6  # above this the transcript is not this recording's (unrelated English text scores ~0.9)
MIN_SEGMENT = 0.01  # s; a word Whisper timed with start == end still gets a positive length
RUN_MARGIN = 1.0  # s; a run this much shorter than the window still fits once the pauses around it are added
SENTENCE_ENDS = (".", "?", "!", "\u2026")


class TranscriptMismatch(SpeechftError):
    """The transcript does not belong to the recording (or the recording cannot be cut)."""


@dataclass
class PlannedPiece:
    piece: Piece
    wer: float
    kept: bool


def _gap(a: Token, b: Token) -> float:
    return b.start - a.end


def _ends_sentence(token: Token) -> bool:
    return token.text.rstrip("\"')]}\u201d\u2019\u00bb").endswith(SENTENCE_ENDS)


# Where a run may be cut, best first: a sentence end with a pause, any pause, any word boundary.
CUT_RULES = (
    lambda a, b: _ends_sentence(a) and _gap(a, b) >= MIN_PAUSE,
    lambda a, b: _gap(a, b) >= MIN_PAUSE,
    lambda a, b: True,
)


def _span(tokens: list[Token]) -> float:
    starts = [t.start for t in tokens if t.start is not None]
    ends = [t.end for t in tokens if t.end is not None]
    return max(ends) - min(starts)


def _ranges(tokens: list[Token], a: int, b: int, rule: int, longest: float) -> list[tuple[int, int]]:
    """Token ranges [start, end) covering tokens[a:b], cut by CUT_RULES[rule] (then by the next
    rules inside any range still longer than `longest` s). Cuts only between two tokens that
    hypothesis words were aligned to: a word the model missed has no time to cut at."""
    cuts = [i for i in range(a + 1, b) if tokens[i - 1].end is not None and tokens[i].start is not None
            and CUT_RULES[rule](tokens[i - 1], tokens[i])]
    out = []
    for lo, hi in zip([a, *cuts], [*cuts, b]):
        if rule + 1 < len(CUT_RULES) and _span(tokens[lo:hi]) > longest:
            out += _ranges(tokens, lo, hi, rule + 1, longest)
        else:
            out.append((lo, hi))
    return out


def segments_from(alignment: Alignment, seconds: float, max_seconds: float) -> list[Segment]:
    """Segments (start, end, text) of the transcript: its sentences, or shorter runs where a
    sentence does not fit the window (see CUT_RULES). segment.plan_pieces packs them into pieces."""
    tokens = alignment.tokens
    segs: list[Segment] = []
    for a, b in _ranges(tokens, 0, len(tokens), 0, max_seconds - RUN_MARGIN):
        starts = [t.start for t in tokens[a:b] if t.start is not None]
        ends = [t.end for t in tokens[a:b] if t.end is not None]
        lo = max(min(starts), segs[-1].end if segs else 0.0)  # Whisper's times may overlap by a few ms across windows
        hi = min(max(max(ends), lo + MIN_SEGMENT), seconds)
        segs.append(Segment(lo, max(hi, lo), " ".join(t.text for t in tokens[a:b])))
    return segs


def plan_recording(transcript: str, words: list[Word], samples: np.ndarray, sr: int, max_seconds: float,
                   max_wer: float = MAX_PIECE_WER, max_recording_wer: float = MAX_RECORDING_WER,
                   ) -> tuple[list[Segment], list[PlannedPiece], Alignment]:
    """The segments and pieces of one recording, each piece marked kept or dropped.

    Returns:
        (segments for the manifest line, pieces in order, the word alignment)

    Raises:
        TranscriptMismatch: the hypothesis disagrees with the whole transcript beyond
            max_recording_wer, or no pause and no word boundary lets it be cut into pieces.
    """
    alignment = align_words(transcript, words)
    if not alignment.ref_words:
        raise TranscriptMismatch("the transcript has no words")
    if alignment.wer > max_recording_wer or not any(t.correct for t in alignment.tokens):
        heard = sum(t.correct for t in alignment.tokens)
        raise TranscriptMismatch(f"the transcript does not match the recording: the pretrained model heard {heard} of its "
                                 f"{len(alignment.tokens)} words where the text puts them (WER {alignment.wer:.2f}, more than "
                                 f"{max_recording_wer:g}); is it another recording's transcript?")
    segs = segments_from(alignment, samples.size / sr, max_seconds)
    try:
        pieces = plan_pieces(samples, sr, segs, max_seconds)
    except CannotSplit as e:
        raise TranscriptMismatch(f"the recording cannot be cut into pieces of at most {max_seconds:g} s: {e.problem}") from None
    planned = []
    for p in pieces:
        wer = piece_wer(p.text, words, p.start, p.end)
        planned.append(PlannedPiece(p, round(wer, 4), wer <= max_wer))
    return segs, planned, alignment
