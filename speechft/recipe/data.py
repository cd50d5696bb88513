"""The recipe's data stage: resolve, validate and split the manifests; build the training list.

Sets by name: train, dev, test (held-out speakers and sentences), general (real speech, where
forgetting shows), replay (everyday speech mixed into training), nonspeech (clips without speech:
what the model says to silence) and nonspeech_train (such clips trained on with empty targets).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..config import RecipeConfig
from ..errors import SpeechftError
from ..manifest import Utterance, spread_subset
from ..pack import pack_utterances
from ..segment import split_long
from ..validate import Limits, summarize, validate_manifest

log = logging.getLogger("speechft")
PIECES_DIR = "pieces"  # beside each manifest: the pieces of its split long audio, reused by later runs
ALIGNED_DIR = "aligned"  # beside each manifest: its long lines cut by alignment (data.long_audio: align), reused by later runs
PACKED_DIR = "packed"  # beside each training manifest: its packed clips (data.pack_seconds), reused by later runs
NONSPEECH_SETS = ("nonspeech", "nonspeech_train")  # empty transcripts are their point


def data_paths(cfg: RecipeConfig) -> dict[str, str]:
    """The recipe's manifests by set name (the optional ones when set)."""
    paths = {"train": cfg.data.train, "dev": cfg.data.dev, "test": cfg.data.test}
    for name in ("general", "replay", *NONSPEECH_SETS):
        if getattr(cfg.data, name):
            paths[name] = getattr(cfg.data, name)
    return paths


def load_sets(cfg: RecipeConfig, limits: Limits) -> tuple[dict[str, list[Utterance]], dict, dict]:
    """Validate every manifest of the recipe; stop on errors unless data.skip_invalid; with
    data.long_audio: split, replace over-long utterances by their pieces (written beside the manifest).

    Returns:
        ({set name: usable utterances}, {"count": n left out, "reasons": {problem: n}},
         {"utterances": n split, "pieces": pieces they gave})
    """
    # data.long_audio: align cuts over-long lines without segments first (resolve_data_paths); lines with segments are split.
    long_audio = "split" if cfg.data.long_audio == "align" else cfg.data.long_audio
    limits = dataclasses.replace(limits, long_audio=long_audio).with_data_checks(cfg.data)
    paths = resolve_data_paths(cfg, data_paths(cfg), limits.max_seconds)
    sets, problems = {}, []
    for name, path in paths.items():
        usable, probs = validate_manifest(path, dataclasses.replace(limits, allow_empty_text=name in NONSPEECH_SETS))
        sets[name] = usable
        problems += probs
    errors = [p for p in problems if p.severity == "error"]
    if problems:
        log.warning("validation:\n%s", summarize(problems))
    if errors and not cfg.data.skip_invalid:
        raise SpeechftError(
            f"{len(errors)} invalid utterance(s); nothing was trained:\n{summarize(problems)}\n"
            "Fix the lines above, or set data.skip_invalid=true to train on the rest"
        )
    left_out = [p for p in problems if p.severity in ("error", "drop")]
    reasons: dict[str, int] = {}
    for p in left_out:
        key = p.problem.split(" (")[0]
        reasons[key] = reasons.get(key, 0) + 1
    split = {"utterances": 0, "pieces": 0}
    if long_audio == "split":
        for name, path in paths.items():
            sets[name], stats = split_long(sets[name], limits.max_seconds, Path(path).parent / PIECES_DIR)
            split = {k: split[k] + stats[k] for k in split}
        if split["utterances"]:
            log.info("data.long_audio=split: %d utterance(s) cut into %d pieces", split["utterances"], split["pieces"])
    for name, utts in sets.items():
        if not utts:
            raise SpeechftError(f"the {name} set ({paths[name]}) has no usable utterance. Fix: check it with `speechft validate {paths[name]}`")
    if "replay" in sets:
        check_replay_speakers(sets, paths["replay"])
        sets["replay"] = spread_subset(sets["replay"], cfg.data.replay_size)
    if "nonspeech_train" in sets:
        sets["nonspeech_train"] = spread_subset(sets["nonspeech_train"], cfg.data.nonspeech_train_size)
    return sets, {"count": len({(p.manifest, p.line) for p in left_out}), "reasons": reasons}, split


def resolve_data_paths(cfg: RecipeConfig, paths: dict[str, str], max_seconds: float) -> dict[str, str]:
    """The manifests to validate, by set name.

    `hf:PATH[:split]` entries are imported on first use (importers.resolve_source) and cfg.data
    then names the imported manifest, so packing and the export check read that file too. With
    data.long_audio: align, over-long lines without segments are replaced by their aligned pieces
    in `<manifest folder>/aligned/` (a refused recording stops the run unless data.skip_invalid).
    """
    from ..importers import resolve_source

    out = {}
    for name, path in paths.items():
        path = resolve_source(path, cfg.data.root or "data")
        setattr(cfg.data, name, path)
        if cfg.data.long_audio == "align" and name not in NONSPEECH_SETS:
            from ..align import align_long_lines

            report = align_long_lines(path, Path(path).parent / ALIGNED_DIR, cfg.data.align_model, max_seconds,
                                      strict=not cfg.data.skip_invalid)
            if report.recordings or report.refused:
                log.info("data.long_audio=align (%s): %s", name, report.summary())
            path = str(report.manifest)
        out[name] = path
    return out


def check_replay_speakers(sets: dict[str, list[Utterance]], replay_path: str) -> None:
    """Replay is training data: a test, general or dev speaker in it would make held-out voices seen
    (dev is where settings are chosen, so its voices must be as new to the model as test's)."""
    held_out = {u.speaker for name in ("test", "general", "dev") for u in sets.get(name, []) if u.speaker}
    train = {u.speaker for u in sets.get("train", []) if u.speaker}
    shared = sorted((held_out - train) & {u.speaker for u in sets["replay"] if u.speaker})
    if shared:
        raise SpeechftError(f"data.replay ({replay_path}) has speaker(s) {', '.join(shared)} of the test, general or dev set, "
                            "which must measure held-out speakers. Fix: a replay manifest spoken by other voices")


def training_utterances(cfg: RecipeConfig, sets: dict[str, list[Utterance]], limits: Limits) -> tuple[list[Utterance], dict]:
    """train + replay, packed into clips of up to data.pack_seconds when that is set, then the
    non-speech training clips (never packed: each teaches "say nothing" for a whole window).

    Returns (utterances, {"utterances": n packed, "clips": clips they gave}); dev, test and
    general are never packed: they are scored utterance by utterance. With train.timestamp_rate
    the packed clips carry their sentences' times (segments) for timestamp training.
    """
    stats = {"utterances": 0, "clips": 0}
    nonspeech = sets.get("nonspeech_train", [])
    if not cfg.data.pack_seconds:
        return sets["train"] + sets.get("replay", []) + nonspeech, stats
    fits = None
    if limits.count_tokens and limits.max_label_tokens:
        fits = lambda text: limits.count_tokens(text) <= limits.max_label_tokens  # noqa: E731
    out = []
    for name, path in (("train", cfg.data.train), ("replay", cfg.data.replay)):
        if sets.get(name):
            packed = pack_utterances(sets[name], cfg.data.pack_seconds, Path(path).parent / PACKED_DIR, cfg.train.seed, fits,
                                     with_segments=cfg.train.timestamp_rate > 0)
            log.info("data.pack_seconds=%g: %d %s utterances packed into %d clips", cfg.data.pack_seconds, len(sets[name]), name, len(packed))
            stats = {"utterances": stats["utterances"] + len(sets[name]), "clips": stats["clips"] + len(packed)}
            out += packed
    return out + nonspeech, stats


def voices_of(sets: dict[str, list[Utterance]]) -> dict[str, list[str]]:
    """The speakers of each set (for the report)."""
    return {name: sorted({u.speaker for u in utts if u.speaker}) for name, utts in sets.items() if any(u.speaker for u in utts)}
