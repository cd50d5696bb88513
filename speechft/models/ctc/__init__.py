"""wav2vec2 family (AutoModelForCTC): the adapter (adapter.py) and CTC decoding (decoding.py)."""

from .adapter import CTCAdapter, CTCBatch
from .decoding import ctc_beam_decode, ctc_greedy_decode

__all__ = ["CTCAdapter", "CTCBatch", "ctc_beam_decode", "ctc_greedy_decode"]
