"""Scoring with jiwer on normalised text, and batched transcription of a manifest."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import jiwer
import torch
from tqdm import tqdm

from .distributed import Dist, get_dist
from .manifest import Utterance
from .models.base import DecodeOptions
from .text import normalize, term_hits


@dataclass
class UtteranceResult:
    id: str
    ref: str
    hyp: str
    ref_norm: str
    hyp_norm: str
    errors: int  # word substitutions + deletions + insertions
    words: int  # reference words
    term_total: int = 0
    term_hits: int = 0


@dataclass
class EvalResult:
    """Corpus-level scores (fractions: 0.05 = 5%) and per-utterance detail."""

    wer: float
    cer: float
    term_recall: float | None
    n: int
    utterances: list[UtteranceResult] = field(default_factory=list)

    def summary(self) -> dict:
        """The JSON fields without the per-utterance list."""
        return {"wer": self.wer, "cer": self.cer, "term_recall": self.term_recall, "n": self.n}

    def to_dict(self) -> dict:
        return {**self.summary(), "utterances": [dataclasses.asdict(u) for u in self.utterances]}


def _edit_counts(ref: str, hyp: str, unit: str) -> tuple[int, int]:
    """(errors, reference length) for words or characters; an empty reference counts insertions."""
    ref_units = ref.split() if unit == "word" else list(ref)
    hyp_units = hyp.split() if unit == "word" else list(hyp)
    if not ref_units:
        return len(hyp_units), 0
    if not hyp_units:
        return len(ref_units), len(ref_units)
    out = jiwer.process_words(ref, hyp) if unit == "word" else jiwer.process_characters(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, len(ref_units)


def score(refs: list[str], hyps: list[str], ids: list[str], terms: list[str] | None = None) -> EvalResult:
    """WER, CER and term recall of hypotheses against references, on normalised text.

    Term recall: over every occurrence of a term in a normalised reference, the fraction
    the hypothesis of the same utterance also holds (None when no terms are given).
    """
    norm_terms = sorted({normalize(t) for t in terms or []} - {""})
    results = []
    tot = {"err": 0, "words": 0, "cerr": 0, "chars": 0, "terms": 0, "hits": 0}
    for uid, ref, hyp in zip(ids, refs, hyps):
        r, h = normalize(ref), normalize(hyp)
        err, words = _edit_counts(r, h, "word")
        cerr, chars = _edit_counts(r, h, "char")
        t_total, t_hit = term_hits(r, h, norm_terms)
        results.append(UtteranceResult(uid, ref, hyp, r, h, err, words, t_total, t_hit))
        for k, v in (("err", err), ("words", words), ("cerr", cerr), ("chars", chars), ("terms", t_total), ("hits", t_hit)):
            tot[k] += v
    recall = (tot["hits"] / tot["terms"] if tot["terms"] else None) if terms else None
    return EvalResult(
        wer=tot["err"] / max(tot["words"], 1),
        cer=tot["cerr"] / max(tot["chars"], 1),
        term_recall=recall,
        n=len(results),
        utterances=results,
    )


@torch.no_grad()
def transcribe(adapter, utts: list[Utterance], cache, batch_size: int = 16, desc: str = "decode",
               options: DecodeOptions | None = None, dist: Dist | None = None) -> list[str]:
    """Transcribe utterances in batches, reusing the cache's frozen-prefix outputs.

    Batches are formed over utterances sorted by duration so similar lengths decode together;
    the output order is the input order.

    Args:
        options: how to decode (default: greedy).
        dist: the processes to share the batches with; default: this run's (get_dist()). A caller
            that runs on one process only (the export's parity check on rank 0) passes `Dist()`.
    """
    adapter.model.eval()
    options = options or DecodeOptions()
    dist = dist or get_dist()
    device = next(adapter.model.parameters()).device
    order = sorted(range(len(utts)), key=lambda i: (utts[i].duration or 0.0, i))
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    cache.build(utts, desc=f"{desc}: encode")
    # Whole batches go to processes round-robin: each batch is decoded exactly as one
    # process would decode it, so the gathered WER equals the single-process WER.
    mine: list[tuple[int, str]] = []
    with adapter.weights_held():  # nothing trains while a manifest decodes
        for idx in tqdm(dist.shard(batches), desc=desc, unit="batch", leave=False, disable=not dist.is_main):
            batch = adapter.collate(cache.get([utts[i] for i in idx]), device)
            mine.extend(zip(idx, adapter.transcribe_hidden(batch, cache.k, options)))
    hyps: list[str] = [""] * len(utts)
    for part in dist.gather_objects(mine):
        for i, text in part:
            hyps[i] = text
    return hyps


def evaluate(adapter, utts: list[Utterance], cache, terms: list[str] | None = None, batch_size: int = 16,
             desc: str = "eval", options: DecodeOptions | None = None, dist: Dist | None = None) -> EvalResult:
    """Transcribe (see `transcribe`) and score a list of utterances."""
    hyps = transcribe(adapter, utts, cache, batch_size, desc, options, dist)
    return score([u.text for u in utts], hyps, [u.id for u in utts], terms)
