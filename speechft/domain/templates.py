"""Domain-neutral carrier sentences for terms the documents rarely use (train only).

A term the model never hears cannot be learnt, so a term with fewer than the wanted train
occurrences is spoken in a few of these sentences. They are written into train.txt below a
`#` comment line (`speechft prepare` skips comment lines, so the marker costs nothing) and
never into dev or test, which must measure real sentences.

The templates use no digit, no abbreviation and no domain word, and they differ in opening
and structure so that no single frame dominates the training text. Each term starts at its
own place in the bank (a hash of the term), so different terms get different carriers.
"""

from __future__ import annotations

import zlib

TEMPLATES = (
    "Please note {term} in the record.",
    "Can you confirm {term} before we go on?",
    "I wrote down {term} in my notes.",
    "We talked about {term} this morning.",
    "Make sure {term} is mentioned in the summary.",
    "Is {term} on the list for today?",
    "She asked about {term} at the end of the call.",
    "He mentioned {term} twice during the meeting.",
    "Add {term} to the handover, please.",
    "Nobody has checked {term} yet.",
    "I think {term} needs another look.",
    "They reviewed {term} again after lunch.",
    "The question was about {term}, not the other thing.",
    "Write {term} clearly so nobody misreads it.",
    "Everyone agreed that {term} comes first.",
    "We still need an update on {term}.",
    "Just to be clear, I said {term}.",
    "Have you heard back about {term} yet?",
    "Tomorrow we will go over {term} again.",
    "Could you repeat {term} a little more slowly?",
    "Before you leave, double check {term}.",
    "My last point is {term}.",
    "According to the notes, {term} was discussed.",
    "Let's keep {term} in mind for next time.",
)
TEMPLATE_COMMENT = ("# Carrier sentences from speechft/domain/templates.py for terms the documents use fewer than "
                    "{n} times in train (train only; `speechft prepare` skips this comment line)")


def carrier_sentences(term: str, count: int, seed: int = 0) -> list[str]:
    """`count` carrier sentences for `term`, each from a different template (cycling when
    count exceeds the bank), deterministic for (term, seed).

    Args:
        term: the term as written in terms.txt.
    Returns:
        sentences with the term in place of {term}.
    """
    start = (zlib.crc32(term.lower().encode("utf-8")) + seed) % len(TEMPLATES)
    return [TEMPLATES[(start + i) % len(TEMPLATES)].format(term=term) for i in range(max(0, count))]
