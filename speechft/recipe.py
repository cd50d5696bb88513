"""The recipe runner: validate -> baseline -> freeze -> train -> evaluate -> report -> export.

The one module that crosses stages. Every output is written atomically, a run folder that did
not finish carries an INCOMPLETE marker, and `runs/<recipe>/latest` only ever points to a
finished run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from .config import RecipeConfig, save_config
from .distributed import get_dist
from .errors import SpeechftError
from .freeze import count_params, trainable_summary
from .io_utils import atomic_write_json, atomic_write_text, replace_dir
from .manifest import Utterance
from .models.registry import speechft_home
from .pack import pack_utterances
from .report import change_lines, model_card, results_table, write_report
from .segment import split_long
from .text import read_terms
from .validate import Limits, summarize, validate_manifest

log = logging.getLogger("speechft")
INCOMPLETE_MARKER = "INCOMPLETE"
PIECES_DIR = "pieces"  # beside each manifest: the pieces of its split long audio, reused by later runs
PACKED_DIR = "packed"  # beside each training manifest: its packed clips (data.pack_seconds), reused by later runs


class StageTimer:
    """Wall time per stage, printed as each ends."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        log.info("== stage %s", name)
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        log.info("== stage %s done in %.1f s", name, self.seconds[name])


def peak_rss_mb() -> float:
    """Peak resident memory of this process or of any finished child (data preparation), in MB."""
    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024  # KiB


def _prepare_in_subprocess(targets: list[str]) -> None:
    """`speechft prepare` in a child process: the TTS engines' memory (about 1 GB) is returned
    to the system before the model is loaded, instead of staying in this process's heap."""
    done = subprocess.run([sys.executable, "-m", "speechft", "prepare", *targets])
    if done.returncode != 0:
        raise SpeechftError(f"data preparation ({' '.join(targets)}) failed, see the messages above. "
                            f"Fix: run `speechft prepare {' '.join(targets)}` and correct what it reports")


def _setup_logging(run_dir: Path, rank: int) -> logging.Handler:
    handler = logging.FileHandler(run_dir / ("train.log" if rank == 0 else f"train.rank{rank}.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def unfinished_runs(recipe_dir: Path) -> list[Path]:
    """Run folders under runs/<recipe> that carry the INCOMPLETE marker, oldest first."""
    if not recipe_dir.is_dir():
        return []
    return sorted(p for p in recipe_dir.iterdir() if p.is_dir() and not p.is_symlink() and (p / INCOMPLETE_MARKER).exists())


def choose_run_dir(cfg: RecipeConfig) -> Path:
    """output_dir, or runs/<recipe>/<timestamp>; with resume, the newest unfinished run."""
    if cfg.output_dir:
        return Path(cfg.output_dir)
    recipe_dir = Path("runs") / cfg.name
    if cfg.resume:
        pending = unfinished_runs(recipe_dir)
        if pending:
            return pending[-1]
        log.warning("resume: no unfinished run under %s; starting a new one", recipe_dir)
    for old in unfinished_runs(recipe_dir):
        log.warning("unfinished run (killed or failed; not a result): %s. Resume it with --resume", old)
    return recipe_dir / datetime.now().strftime("%Y%m%d-%H%M%S")


def point_latest(run_dir: Path) -> None:
    """Atomically repoint runs/<recipe>/latest at a finished run (symlink swap)."""
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.tmp{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    tmp.replace(latest)


def load_sets(cfg: RecipeConfig, limits: Limits) -> tuple[dict[str, list[Utterance]], dict, dict]:
    """Validate every manifest of the recipe; stop on errors unless data.skip_invalid; with
    data.long_audio: split, replace over-long utterances by their pieces (written beside the manifest).

    Returns:
        ({set name: usable utterances}, {"count": n left out, "reasons": {problem: n}},
         {"utterances": n split, "pieces": pieces they gave})
    """
    limits = dataclasses.replace(limits, long_audio=cfg.data.long_audio)
    paths = {"train": cfg.data.train, "dev": cfg.data.dev, "test": cfg.data.test}
    if cfg.data.general:
        paths["general"] = cfg.data.general
    if cfg.data.replay:
        paths["replay"] = cfg.data.replay
    sets, problems = {}, []
    for name, path in paths.items():
        usable, probs = validate_manifest(path, limits)
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
    if cfg.data.long_audio == "split":
        for name, path in paths.items():
            sets[name], stats = split_long(sets[name], limits.max_seconds, Path(path).parent / PIECES_DIR)
            split = {k: split[k] + stats[k] for k in split}
        if split["utterances"]:
            log.info("data.long_audio=split: %d utterance(s) cut into %d pieces", split["utterances"], split["pieces"])
    for name, utts in sets.items():
        if not utts:
            raise SpeechftError(f"the {name} set ({paths[name]}) has no usable utterance. Fix: check it with `speechft validate {paths[name]}`")
    if "replay" in sets:
        _check_replay_speakers(sets, paths["replay"])
        sets["replay"] = spread_subset(sets["replay"], cfg.data.replay_size)
    return sets, {"count": len({(p.manifest, p.line) for p in left_out}), "reasons": reasons}, split


def spread_subset(utts: list[Utterance], n: int) -> list[Utterance]:
    """n utterances evenly spaced over the list (all when n is 0 or covers it); deterministic."""
    if n <= 0 or n >= len(utts):
        return utts
    return [utts[i * len(utts) // n] for i in range(n)]


def _check_replay_speakers(sets: dict[str, list[Utterance]], replay_path: str) -> None:
    """Replay is training data: a test speaker in it would make the test set's speakers seen."""
    held_out = {u.speaker for name in ("test", "general") for u in sets.get(name, []) if u.speaker}
    shared = sorted(held_out & {u.speaker for u in sets["replay"] if u.speaker})
    if shared:
        raise SpeechftError(f"data.replay ({replay_path}) has speaker(s) {', '.join(shared)} of the test or general set, "
                            "which must measure held-out speakers. Fix: a replay manifest spoken by other voices")


def training_utterances(cfg: RecipeConfig, sets: dict[str, list[Utterance]], limits: Limits) -> tuple[list[Utterance], dict]:
    """train + replay, packed into clips of up to data.pack_seconds when that is set.

    Returns (utterances, {"utterances": n packed, "clips": clips they gave}); dev, test and
    general are never packed: they are scored utterance by utterance.
    """
    stats = {"utterances": 0, "clips": 0}
    if not cfg.data.pack_seconds:
        return sets["train"] + sets.get("replay", []), stats
    fits = None
    if limits.count_tokens and limits.max_label_tokens:
        fits = lambda text: limits.count_tokens(text) <= limits.max_label_tokens  # noqa: E731
    out = []
    for name, path in (("train", cfg.data.train), ("replay", cfg.data.replay)):
        if sets.get(name):
            packed = pack_utterances(sets[name], cfg.data.pack_seconds, Path(path).parent / PACKED_DIR, cfg.train.seed, fits)
            log.info("data.pack_seconds=%g: %d %s utterances packed into %d clips", cfg.data.pack_seconds, len(sets[name]), name, len(packed))
            stats = {"utterances": stats["utterances"] + len(sets[name]), "clips": stats["clips"] + len(packed)}
            out += packed
    return out, stats


def _voices(sets: dict[str, list[Utterance]]) -> dict[str, list[str]]:
    return {name: sorted({u.speaker for u in utts if u.speaker}) for name, utts in sets.items() if any(u.speaker for u in utts)}


def run_recipe(cfg: RecipeConfig) -> Path:
    """Run a whole recipe; returns the finished run folder."""
    from .models import load_model
    from .models.adapters import adapter_for
    from .train import Trainer, seed_everything
    from .evaluate import evaluate

    dist = get_dist()
    run_dir = dist.broadcast(choose_run_dir(cfg) if dist.is_main else None)  # one folder for all processes
    if (run_dir / "report.json").exists() and not (run_dir / INCOMPLETE_MARKER).exists():
        raise SpeechftError(f"{run_dir} already holds a finished run. Fix: choose another output_dir or remove it")
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / INCOMPLETE_MARKER, "this run has not finished; its files are not a result\n")
    dist.barrier()
    handler = _setup_logging(run_dir, dist.rank)
    timer = StageTimer()
    try:
        if dist.is_main:
            save_config(cfg, run_dir / "config.yaml")
        log.info("run folder %s\nresolved config:\n%s", run_dir, json.dumps(cfg.to_dict(), indent=2))
        if cfg.data.prepare:
            with timer("prepare"):
                if dist.is_main:  # idempotent, but one writer is enough
                    _prepare_in_subprocess(cfg.data.prepare)
                dist.barrier()
        seed_everything(cfg.train.seed)
        with timer("load model"):
            if not dist.is_main:
                dist.barrier()  # rank 0 converts a built-in alias first; the others then load it
            loaded = load_model(cfg.model.name)
            if dist.is_main:
                dist.barrier()
            adapter = adapter_for(loaded, cfg.model)
            adapter.model.to(dist.device)
        limits = adapter.limits(cfg.data)
        with timer("validate"):
            sets, skipped, split = load_sets(cfg, limits)
            train_utts, packed = training_utterances(cfg, sets, limits)
        terms = read_terms(cfg.data.terms) if cfg.data.terms else None
        trainer = Trainer(adapter, cfg, speechft_home() / "cache", terms)
        log.info("freeze policy %s: %s", cfg.freeze.policy, trainable_summary(adapter.model, trainer.plan))
        eval_sets = [s for s in ("test", "general") if s in sets]
        results: dict[str, dict] = {s: {} for s in eval_sets}
        ev = dict(batch_size=cfg.eval.batch_size, **adapter.decode_options(cfg.eval))

        def run_eval(condition: str, only: list[str] | None = None, **extra):
            for s in eval_sets if only is None else [s for s in eval_sets if s in only]:
                res = evaluate(adapter, sets[s], trainer.cache_for(trainer.plan.frozen_units), terms, desc=f"{s} {condition}", **{**ev, **extra})
                results[s][condition] = res.summary()
                if dist.is_main:  # per-utterance ref/hyp/errors, to see what changed
                    atomic_write_json(run_dir / "eval" / f"{s}-{condition}.json", res.to_dict())
                log.info("%s %s: WER %.4f CER %.4f term recall %s (n=%d)", s, condition, res.wer, res.cer, res.term_recall, res.n)

        with timer("baseline eval"):
            run_eval("before")
            if cfg.eval.prompted and terms:
                for name, extra in adapter.zero_training_baselines(terms, cfg.eval).items():
                    run_eval(name, only=cfg.eval.prompted_sets, **extra)
        if "replay" in sets:
            log.info("replay: %d everyday utterances from %s mixed into %d training utterances",
                     len(sets["replay"]), cfg.data.replay, len(sets["train"]))
        head_change = adapter.prepare_for_training([u.text for u in train_utts])
        if head_change and head_change.get("added"):
            log.info("output layer adjusted to the training text: %s", head_change)
        with timer("train"):
            train_result = trainer.fit(train_utts, sets["dev"], checkpoint_dir=run_dir / "checkpoints", resume=cfg.resume)
        with timer("final eval"):
            run_eval("after")
        n_train, n_total = count_params(adapter.model, trainer.plan)
        report = {
            "recipe": cfg.name,
            "model": cfg.model.name,
            "family": adapter.family,
            "freeze": cfg.freeze.policy + (f":{cfg.freeze.layers}" if cfg.freeze.policy == "lower" else ""),
            "trainable_params": n_train,
            "total_params": n_total,
            "train": {"seconds": round(train_result.seconds, 2), "steps": train_result.steps, "epochs": train_result.epochs,
                      "best_epoch": train_result.best_epoch, "history": train_result.history,
                      "skipped_batches": train_result.skipped_batches},
            "eval": results,
            "voices": _voices(sets),
            "skipped": skipped,
            "split": split,
            "replay": {"manifest": cfg.data.replay, "utterances": len(sets.get("replay", []))},
            "packed": {"seconds": cfg.data.pack_seconds, **packed},
        }
        if not dist.is_main:  # only rank 0 writes the model, the report and `latest`
            dist.barrier()
            return run_dir
        with timer("save"):
            tmp_model = run_dir / ".model.tmp"
            adapter.save(tmp_model)
            atomic_write_text(tmp_model / "README.md", model_card(report))
            replace_dir(tmp_model, run_dir / "model")
        if cfg.export.format != "none":
            from .export import export_ct2

            with timer("export"):
                report["export"] = export_ct2(run_dir / "model", run_dir / f"model-{cfg.export.format}", cfg.export.quantization,
                                              manifest=cfg.data.test, max_wer_gap=cfg.export.max_wer_gap)
        report["stage_seconds"] = {k: round(v, 2) for k, v in timer.seconds.items()}
        report["peak_rss_mb"] = round(peak_rss_mb(), 1)  # of this process, rank 0
        report["processes"] = dist.world
        write_report(run_dir, report)
        (run_dir / INCOMPLETE_MARKER).unlink()
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # the finished model supersedes them
        if not cfg.output_dir:
            point_latest(run_dir)
        print(f"\n{results_table(results)}\n")
        for line in change_lines(results):
            print(line)
        print("wall time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in timer.seconds.items()))
        print(f"peak memory (RSS): {report['peak_rss_mb']:.0f} MB" + (f" per process, {dist.world} processes" if dist.active else "")
              + f"\nrun folder: {run_dir}")
        dist.barrier()
        return run_dir
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
