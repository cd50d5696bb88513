"""Which domain terms the decoding prompt holds.

Whisper's prompt holds at most 223 tokens (half its 448-token context, the rule of OpenAI's
decoder, transformers and faster-whisper alike), so a long term list does not fit: the
medical list of 70 drug and disease names takes 375 tokens. Cut by the engine, the prompt
silently loses the end of the list, and each engine cuts differently (faster-whisper's
`hotwords` keep the first tokens, its `initial_prompt` the last), so a too-long prompt also
makes the deployed model decode unlike the report. speechft therefore builds prompts of whole
terms that fit (models/whisper.py `WhisperAdapter.fit_prompt`), and puts first the terms the
model misses on dev: a term the model already writes right gains little from a prompt slot.
For the adapted model, the terms the pretrained model missed on dev come next: a term that
neither model missed gains least (medical dev, shipped prompt: 8.2% WER / 84.5% recall with list
order after the adapted model's misses, 8.0% / 85.9% with the pretrained model's misses next).
"""

from __future__ import annotations

from .evaluate import EvalResult
from .text import count_term, normalize


def missed_terms_first(terms: list[str], result: EvalResult | None, then: EvalResult | None = None) -> list[str]:
    """`terms` reordered: those `result` missed at least once first, then those `then` (another
    model's result on the same set) missed, then the rest, each group in list order. Terms absent
    from the references keep their place among the rest. With no result, the list as given."""
    first = _missed(terms, result)
    second = _missed(terms, then) if result is not None else set()
    return ([t for t in terms if t in first] + [t for t in terms if t in second - first]
            + [t for t in terms if t not in first | second])


def _missed(terms: list[str], result: EvalResult | None) -> set[str]:
    """The terms that `result`'s hypotheses hold fewer times than its references somewhere."""
    if result is None:
        return set()
    missed = set()
    for term in terms:
        norm = normalize(term)
        if norm and any(count_term(u.hyp_norm, norm) < count_term(u.ref_norm, norm) for u in result.utterances):
            missed.add(term)
    return missed
