"""What each training example is asked to produce: plain text, text after a prompt, or text with
timestamps (Whisper).

- Prompt-aware training (`train.prompt_rate`, after jumon/whisper-finetuning's
  --prompt-use-rate): a share of the examples carry a previous-text prompt made of a random
  subset of the domain terms in random order, the form the shipped decoding prompt has. Replay
  and non-speech examples get prompts too, so the model learns that a prompt names words that
  *may* come, not words to say: everyday speech and silence must not turn into terms.
- Timestamp training (`train.timestamp_rate`): a share of the examples that know where their
  sentences lie (packed clips) learn Whisper's timestamp tokens, so the adapted model still
  emits timestamps, which faster-whisper's long-form loop needs to seek through long audio.

Choices are drawn from a generator seeded by (train.seed, epoch, utterance id): the same on
every run, process and resume, and different from epoch to epoch.
"""

from __future__ import annotations

import random
import zlib

from ..manifest import Utterance
from ..models.base import TrainTarget

# Prompts hold between these shares of the terms (at least one): short prompts teach that a
# prompt is a hint, full ones match the shipped prompt.
MIN_PROMPT_SHARE, MAX_PROMPT_SHARE = 0.1, 1.0
# Training prompts are comma lists, although decoding prompts join the terms with spaces
# (models/base.py PROMPT_TERM_SEPARATOR): a comma list spends a token a term, so a training prompt
# holds at most ~40 medical terms and the model keeps learning the terms from the audio. Trained on
# space-joined prompts (up to ~60 terms), the medical model decoded 210 held-out-voice dev
# sentences worse (WER 6.40% vs 5.67%) and relied on the prompt more (dev without it 13.4% vs
# 11.5%); both decoded with the 49-term space-joined prompt (benchmarks/README.md).
TRAIN_PROMPT_SEPARATOR = ", "


class TargetPolicy:
    """Turns utterances into TrainTargets for one epoch.

    Args:
        terms: the domain terms prompts are drawn from (no terms: no prompts).
        prompt_rate: share of examples that carry a prompt (0..1).
        timestamp_rate: share of examples with `segments` that learn timestamps (0..1).
        seed: train.seed.
        max_prompt_terms: eval.max_prompt_terms, the most terms a prompt holds.
    """

    def __init__(self, terms: list[str] | None, prompt_rate: float = 0.0, timestamp_rate: float = 0.0, seed: int = 0,
                 max_prompt_terms: int = 200):
        self.terms = list(terms or [])[:max_prompt_terms]
        self.prompt_rate = prompt_rate if self.terms else 0.0
        self.timestamp_rate = timestamp_rate
        self.seed = seed

    @property
    def plain(self) -> bool:
        """True when every target is the plain transcript (nothing to draw)."""
        return self.prompt_rate == 0 and self.timestamp_rate == 0

    def _rng(self, epoch: int, utt: Utterance) -> random.Random:
        return random.Random(zlib.crc32(f"{self.seed}:{epoch}:{utt.id}".encode()))

    def prompt(self, rng: random.Random) -> str:
        """A random subset of the terms, in random order, as a comma list (TRAIN_PROMPT_SEPARATOR)."""
        lo = max(1, round(MIN_PROMPT_SHARE * len(self.terms)))
        hi = max(lo, round(MAX_PROMPT_SHARE * len(self.terms)))
        return TRAIN_PROMPT_SEPARATOR.join(rng.sample(self.terms, rng.randint(lo, hi)))

    def target(self, utt: Utterance, epoch: int | None) -> TrainTarget:
        """The target of `utt` in `epoch`; epoch None (the dev loss) gives the plain transcript."""
        if epoch is None or self.plain:
            return TrainTarget(utt.text)
        rng = self._rng(epoch, utt)
        # Both draws always happen, so switching one rate does not move the other's choices.
        use_prompt, use_timestamps = rng.random() < self.prompt_rate, rng.random() < self.timestamp_rate
        prompt = self.prompt(rng) if use_prompt else None
        segments = None
        if use_timestamps and utt.segments and utt.text.strip():
            segments = tuple((float(s["start"]), float(s["end"]), s["text"]) for s in utt.segments)
        return TrainTarget(utt.text, prompt, segments)

    def targets(self, batch: list[Utterance], epoch: int | None) -> list[TrainTarget]:
        return [self.target(u, epoch) for u in batch]
