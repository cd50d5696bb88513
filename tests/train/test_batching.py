"""Length-bucketed batching."""

import random

from speechft.manifest import Utterance
from speechft.train import length_batches


def test_length_batches_cover_everything_once_and_vary():
    utts = [Utterance(f"{i}.wav", "x" * (i % 37), 1.0, id=str(i)) for i in range(200)]
    rng = random.Random(0)
    first, second = length_batches(utts, 8, rng), length_batches(utts, 8, rng)
    assert sorted(u.id for b in first for u in b) == sorted(u.id for u in utts)
    assert {tuple(u.id for u in b) for b in first} != {tuple(u.id for u in b) for b in second}
