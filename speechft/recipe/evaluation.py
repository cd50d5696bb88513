"""The recipe's evaluation stage: every set under every condition, with confidence intervals.

Conditions (columns of the report):
- before           the pretrained model
- prompted         the pretrained model with the domain terms as a decoding prompt: the free
                   baseline to beat (CTC: `hotwords`)
- after            the adapted model
- after+prompted   the adapted model with the terms prompt
- deployed         the adapted model exported to CTranslate2 and decoded by faster-whisper with
                   the shipped decoding and `speechft serve`'s defaults (VAD, guards)
- deployed-before  the pretrained model the same way (non-speech clips: what it says to silence)

The shipped decoding (with or without the prompt) is chosen on dev, whose voices are in neither
train nor test, and recorded in the model folder (models/shipped.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..evaluate import EvalResult, evaluate, score
from ..io_utils import atomic_write_json
from ..longform import build_recordings, nonspeech_summary, timing_summary
from ..manifest import Utterance
from ..models.base import DecodeOptions
from ..stats import bootstrap_change, bootstrap_ci

log = logging.getLogger("speechft")
LONG_DIR = "long"  # beside the test manifest: its utterances joined into long recordings, reused by later runs


class Evaluation:
    """Runs conditions on sets, writes eval/<set>-<condition>.json and keeps the summaries.

    Args:
        sets: the recipe's usable utterances by set name.
        terms: the domain terms (term recall), or None.
        run_dir: the run folder (only rank 0 writes).
        batch_size: eval.batch_size.
    """

    def __init__(self, sets: dict[str, list[Utterance]], terms: list[str] | None, run_dir: Path, batch_size: int,
                 is_main: bool = True):
        self.sets, self.terms, self.run_dir, self.batch_size, self.is_main = sets, terms, run_dir, batch_size, is_main
        self.results: dict[str, dict[str, dict]] = {}
        self.full: dict[tuple[str, str], EvalResult] = {}  # (set, condition) -> per-utterance results

    def _record(self, set_name: str, condition: str, res: EvalResult, extra: dict | None = None) -> None:
        summary = {**res.summary(), "ci": bootstrap_ci(res), **(extra or {})}
        if set_name == "nonspeech":  # no reference words: WER and CER mean nothing, the share with words does
            summary.update(wer=None, cer=None, ci=None)
        self.results.setdefault(set_name, {})[condition] = summary
        self.full[(set_name, condition)] = res
        if self.is_main:  # per-utterance ref/hyp/errors, to see what changed
            atomic_write_json(self.run_dir / "eval" / f"{set_name}-{condition}.json", {**res.to_dict(), **(extra or {})})
        if set_name == "nonspeech":
            log.info("%s %s: %d of %d clips got words, %.1f words per minute", set_name, condition, summary["clips_with_words"],
                     res.n, summary["words_per_minute"] or 0.0)
        else:
            log.info("%s %s: WER %.4f CER %.4f term recall %s (n=%d)", set_name, condition, res.wer, res.cer, res.term_recall, res.n)

    def model(self, condition: str, set_names: list[str], adapter, cache, options: DecodeOptions) -> None:
        """Decode `set_names` with the live model (HF path, cached frozen prefix)."""
        for s in set_names:
            if s in self.sets:
                res = evaluate(adapter, self.sets[s], cache, self.terms, batch_size=self.batch_size, desc=f"{s} {condition}",
                               options=options)
                self._record(s, condition, res)

    def deployed(self, condition: str, set_names: list[str], model, clips_condition: str | None = None) -> None:
        """Decode `set_names` with a DeployedModel (deployed.py) and score them like the rest; the
        long recordings are compared with the test row of `clips_condition` (default: this one)."""
        names = [s for s in set_names if s in self.sets]
        # One call for all sets, so the cores stay busy from the first clip to the last.
        hyps_all, segments_all = model.transcribe([u for s in names for u in self.sets[s]])
        start = 0
        for s in names:
            utts = self.sets[s]
            hyps, segments = hyps_all[start : start + len(utts)], segments_all[start : start + len(utts)]
            start += len(utts)
            res = score([u.text for u in utts], hyps, [u.id for u in utts], self.terms)
            extra = {}
            if s == "nonspeech":
                extra = nonspeech_summary(hyps, [u.duration or 0.0 for u in utts])
            elif s == "long":
                extra = timing_summary(utts, segments, model.timestamp_begin)
                extra["clip_by_clip_wer"] = self._clip_by_clip_wer(utts, clips_condition or condition)
            self._record(s, condition, res, extra)

    def _clip_by_clip_wer(self, recordings: list[Utterance], condition: str) -> float | None:
        """WER of the recordings' sentences decoded one by one (the test set's row of the same
        condition): what the long recordings are compared with."""
        clips = self.full.get(("test", condition))
        if clips is None:
            return None
        by_id = {u.id: u for u in clips.utterances}
        rows = [by_id[seg["id"]] for rec in recordings for seg in rec.segments or [] if seg.get("id") in by_id]
        return sum(r.errors for r in rows) / max(sum(r.words for r in rows), 1)

    def wer(self, set_name: str, condition: str) -> float:
        return self.results[set_name][condition]["wer"]

    def changes(self, headline: str) -> dict[str, dict]:
        """Per set: the `before -> headline` change of WER and term recall, with paired intervals."""
        out = {}
        for s, by_cond in self.results.items():
            if "before" in by_cond and headline in by_cond:
                b, a = self.full[(s, "before")], self.full[(s, headline)]
                ci = bootstrap_change(b, a)
                out[s] = {"from": "before", "to": headline, "wer": a.wer - b.wer, "wer_ci": ci["wer"],
                          "term_recall": None if b.term_recall is None else a.term_recall - b.term_recall,
                          "term_recall_ci": ci["term_recall"]}
        return out


def long_recordings(test: list[Utterance], test_manifest: str, n: int, seed: int) -> list[Utterance]:
    """The test utterances joined into 1-3 minute recordings (the report's `long` set): the first
    `n` of them in a seeded order, written beside the test manifest and reused."""
    import random

    chosen = sorted(test, key=lambda u: u.id)
    random.Random(seed).shuffle(chosen)
    return build_recordings(chosen[:n], Path(test_manifest).parent / LONG_DIR, seed)
