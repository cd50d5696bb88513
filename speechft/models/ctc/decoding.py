"""CTC decoding: best path, and pyctcdecode beam search with hotwords and an optional KenLM model.

Labels are one string per output id: "" for the blank, " " for the word delimiter.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...errors import SpeechftError

HOTWORD_MIN_BEAMS = 8  # hotwords only act inside a beam: never search them with fewer
DEFAULT_HOTWORD_WEIGHT = 10.0  # pyctcdecode's default: log-score bonus per hotword character


def ctc_greedy_decode(logits, labels: list[str]) -> str:
    """Best path: argmax per frame, merge repeats, drop blanks. `logits` is [frames, vocab]."""
    ids = np.asarray(logits).argmax(-1)
    keep = np.ones(len(ids), dtype=bool)
    keep[1:] = ids[1:] != ids[:-1]
    return " ".join("".join(labels[i] for i in ids[keep]).split())


@lru_cache(maxsize=8)
def _beam_decoder(labels: tuple[str, ...], kenlm_model: str | None, alpha: float, beta: float):
    try:
        from pyctcdecode import build_ctcdecoder
    except ImportError as e:
        raise SpeechftError("beam search and hotwords need pyctcdecode. Fix: pip install --no-deps pyctcdecode pygtrie "
                            "(a plain install downgrades numpy), or decode with num_beams=1") from e
    kwargs = {"kenlm_model_path": kenlm_model, "alpha": alpha, "beta": beta} if kenlm_model else {}
    try:
        return build_ctcdecoder(list(labels), **kwargs)
    except (OSError, RuntimeError, ValueError, ImportError) as e:
        raise SpeechftError(f"cannot build the CTC beam decoder{f' with language model {kenlm_model}' if kenlm_model else ''}: {e}. "
                            "Fix: check the .arpa/.bin file (a language model needs `pip install kenlm`)") from e


def ctc_beam_decode(logits, labels: list[str], beam_width: int = HOTWORD_MIN_BEAMS, hotwords: list[str] | None = None,
                    hotword_weight: float = DEFAULT_HOTWORD_WEIGHT, kenlm_model: str | None = None,
                    lm_alpha: float = 0.5, lm_beta: float = 1.0) -> str:
    """pyctcdecode beam search over [frames, vocab] logits, with hotwords and an optional KenLM model.

    Hotwords must be written in the labels' character set (e.g. upper case for wav2vec2-base-960h);
    each partial match of one scores `hotword_weight` per character, so a near-miss word in the
    acoustics turns into the hotword when the beam holds both spellings.
    """
    decoder = _beam_decoder(tuple(labels), kenlm_model, lm_alpha, lm_beta)
    text = decoder.decode(np.asarray(logits, dtype=np.float32), beam_width=beam_width, hotwords=hotwords or None,
                          hotword_weight=hotword_weight)
    return " ".join(text.split())
