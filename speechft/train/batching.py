"""Seeding and length-bucketed batching."""

from __future__ import annotations

import random

import numpy as np
import torch

from ..manifest import Utterance

SORT_POOL_BATCHES = 8  # batches per pool sorted by length: small padding, new batch mates every epoch


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global random generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_batches(utts: list[Utterance], batch_size: int, rng: random.Random,
                   pool_batches: int = SORT_POOL_BATCHES) -> list[list[Utterance]]:
    """Batches of similar length (keeps padding small), in random order.

    The data is shuffled, cut into pools of `pool_batches` batches, each pool is sorted by
    transcript length and cut into batches, and the batches are shuffled: utterances meet
    different batch mates every epoch while each batch stays nearly uniform in length.
    `pool_batches=1` gives plain random batches.
    """
    order = list(utts)
    rng.shuffle(order)
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda u: (len(u.text), u.duration or 0.0))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches
