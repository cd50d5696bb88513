"""`speechft run`: prepare -> validate -> baseline -> freeze -> train -> evaluate -> report -> export.

The one module that crosses stages; each stage's work lives in its own module (runs.py, data.py,
evaluation.py, ../train/, ../report.py, ../deployed.py).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ..config import RecipeConfig, save_config
from ..distributed import get_dist
from ..errors import SpeechftError
from ..freeze import apply_freeze, count_params, trainable_summary
from ..io_utils import atomic_write_text, replace_dir
from ..models.base import join_terms
from ..models.shipped import ShippedDecoding, write_shipped
from ..prompt import missed_terms_first
from ..report import Report, change_lines, model_card, results_table, write_report
from ..text import count_term, normalize, read_terms
from ..trackers import Tracker, open_tracker
from .data import load_sets, training_utterances, voices_of
from .evaluation import Evaluation, long_recordings
from .runs import INCOMPLETE_MARKER, StageTimer, choose_run_dir, peak_rss_mb, point_latest, prepare_in_subprocess, setup_logging

log = logging.getLogger("speechft")
CT2_DIR = "model-ct2"  # the run's CTranslate2 export: what the deployed-path rows decode


def _choose_shipped(cfg: RecipeConfig, ev: Evaluation, adapter, cache, decode, prompt: str | None) -> tuple[str, ShippedDecoding]:
    """The decoding the model ships with: with the terms prompt or without, chosen on dev.

    eval.ship_prompt "auto" decodes dev both ways and keeps the lower WER (a tie keeps no
    prompt); "always" / "never" decide without looking.
    """
    def shipped(prompt_kept: str | None, note: str) -> ShippedDecoding:
        return ShippedDecoding(decode.num_beams, prompt_kept, note, cfg.model.feature_padding,
                               adapter.encoder_precision)

    if not prompt or cfg.eval.ship_prompt == "never":
        return "after", shipped(None, "no prompt (eval.ship_prompt: never, or no terms)")
    if cfg.eval.ship_prompt == "always":
        return "after+prompted", shipped(prompt, "terms prompt (eval.ship_prompt: always)")
    if ("dev", "after") not in ev.full:  # _prompt_baselines may have decoded it already
        ev.model("after", ["dev"], adapter, cache, decode)
    ev.model("after+prompted", ["dev"], adapter, cache, decode.replace(prompt=prompt))
    plain, prompted = ev.wer("dev", "after"), ev.wer("dev", "after+prompted")
    note = f"chosen on dev (held-out voices): WER {100 * plain:.2f}% without the prompt, {100 * prompted:.2f}% with it"
    if prompted < plain:
        return "after+prompted", shipped(prompt, note)
    return "after", shipped(None, note)


def _prompt_baselines(adapter, terms: list[str] | None, cfg: RecipeConfig, ev: Evaluation, condition: str,
                      decode_dev) -> dict:
    """The adapter's prompt conditions (`zero_training_baselines`) with the terms in the order a
    prompt takes them: as listed when the prompt holds them all; otherwise those the model
    (`condition`) misses on dev first, then (for the adapted model) those the pretrained model
    missed there, so the prompt's limited room goes to the terms it helps (../prompt.py).
    `decode_dev()` decodes dev when that is needed. No terms: none."""
    if not terms:
        return {}
    baselines = adapter.zero_training_baselines(terms, cfg.eval)
    prompt = getattr(baselines.get("prompted"), "prompt", None)
    if prompt is None or prompt == join_terms(terms[: cfg.eval.max_prompt_terms]) or "dev" not in ev.sets:
        return baselines
    if ("dev", condition) not in ev.full:
        decode_dev()
    pretrained = ev.full.get(("dev", "before")) if condition != "before" else None
    baselines = adapter.zero_training_baselines(missed_terms_first(terms, ev.full[("dev", condition)], pretrained), cfg.eval)
    held = normalize(baselines["prompted"].prompt)
    log.info("the terms prompt holds %d of %d terms; those %s misses on dev go first%s",
             sum(1 for t in terms if count_term(held, normalize(t))), len(terms), condition,
             ", then those before missed" if pretrained is not None else "")
    return baselines


def allowed_int8_dev_gap(max_wer_gap: float) -> float:
    """How much worse than the report's shipped row the int8 export may decode dev: half of
    `max_wer_gap`, a margin for a small dev set's noise, so that test's gap stays within the whole."""
    return max_wer_gap / 2


def choose_quantization(int8_gap: float | None, max_wer_gap: float) -> str:
    """export.quantization=auto: "int8" when the int8 export decodes dev at most
    `allowed_int8_dev_gap` worse than the report's shipped row, else "float32", which decodes as
    the report does. No dev measurement (`int8_gap` None): float32."""
    return "int8" if int8_gap is not None and int8_gap <= allowed_int8_dev_gap(max_wer_gap) else "float32"


def _auto_quantization(cfg: RecipeConfig, ev: Evaluation, run_dir: Path, decoding, headline: str):
    """Export int8 to the run's CT2_DIR, decode dev through it (the report's `deployed-int8` dev row) and
    choose. Returns (quantization, the choice for report.json, the loaded int8 model when int8
    was chosen: CT2_DIR already holds it).

    int8 is 1.5-2x faster on CPUs, but on tiny.en it costs accuracy unevenly: +0.2 points on
    medical dev, +1.6 on a held-out dental domain's dev (float32: +0.0 on both)."""
    from ..deployed import DeployedModel, export_for_eval

    int8_gap, int8 = None, None
    if "dev" in ev.sets and headline in ev.results.get("dev", {}):
        export_for_eval(run_dir / "model", run_dir / CT2_DIR, "int8")
        int8 = DeployedModel(run_dir / CT2_DIR, decoding)
        ev.deployed("deployed-int8", ["dev"], int8)
        int8_gap = ev.wer("dev", "deployed-int8") - ev.wer("dev", headline)
    chosen, allowed = choose_quantization(int8_gap, cfg.export.max_wer_gap), allowed_int8_dev_gap(cfg.export.max_wer_gap)
    if int8_gap is None:
        log.info("export.quantization=auto: no dev row of the shipped decoding to compare int8 with: float32")
    else:
        log.info("export.quantization=auto: int8 decodes dev (held-out voices) %+.2f points against the report's %s row "
                 "(allowed: %+.2f): %s", 100 * int8_gap, headline, 100 * allowed, chosen)
    choice = {"int8_dev_gap": int8_gap, "allowed_dev_gap": allowed, "chosen": chosen}
    return chosen, choice, int8 if chosen == "int8" else None


def _deployed_rows(cfg: RecipeConfig, ev: Evaluation, run_dir: Path, shipped: ShippedDecoding,
                   pretrained_ct2: Path | None, headline: str) -> dict:
    """Export the adapted model to CTranslate2 and decode through faster-whisper as `speechft serve`
    does; `pretrained_ct2` (the pretrained model's export) decodes the non-speech set's before-row.
    Returns the export summary."""
    from ..deployed import DeployedModel, export_for_eval
    from ..export import export_ct2
    from ..models.ct2.runtime import DeployedDecoding

    decoding = DeployedDecoding(beams=shipped.num_beams, prompt=shipped.prompt)
    if pretrained_ct2 is not None:
        ev.deployed("deployed-before", ["nonspeech"], DeployedModel(pretrained_ct2, decoding.replace(prompt=None)))
    out = run_dir / CT2_DIR
    quantization, choice, deployed = cfg.export.quantization, None, None
    if quantization == "auto":  # exports int8 to `out` and keeps it loaded when int8 is chosen
        quantization, choice, deployed = _auto_quantization(cfg, ev, run_dir, decoding, headline)
    summary = {"format": "ct2", "out_dir": str(out), "quantization": quantization, "parity_checked": False}
    if cfg.export.format == "ct2":  # with the greedy WER parity check on test
        summary = export_ct2(run_dir / "model", out, quantization, manifest=cfg.data.test,
                             max_wer_gap=cfg.export.max_wer_gap, terms=ev.terms, language=cfg.model.language)
        deployed = None  # export_ct2 wrote `out` anew
    elif deployed is None:
        export_for_eval(run_dir / "model", out, quantization)
    if choice is not None:
        summary["quantization_choice"] = choice
    deployed = deployed or DeployedModel(out, decoding)
    ev.deployed("deployed", ["test", "long", "nonspeech"], deployed)
    # Served, each clip of a long recording is decoded without timestamp tokens: this row shows
    # the timestamps the adapted model itself still places (train.timestamp_rate).
    ev.deployed("deployed+timestamps", ["long"], deployed.with_decoding(decoding.replace(clip_timestamp_tokens=True)),
                clips_condition="deployed")
    return {**summary, "decoding": decoding.to_dict()}


def _check_deployed(cfg: RecipeConfig, ev: Evaluation, headline: str, quantization: str) -> None:
    """The deployed model must score as the report's headline row does (within export.max_wer_gap)."""
    if "deployed" not in ev.results.get("test", {}):
        return
    gap = ev.wer("test", "deployed") - ev.wer("test", headline)
    if gap > cfg.export.max_wer_gap:
        raise SpeechftError(
            f"the deployed model (CTranslate2 {quantization} through faster-whisper) scores test WER "
            f"{100 * ev.wer('test', 'deployed'):.2f}%, {100 * gap:.2f} points worse than the report's {headline} row "
            f"({100 * ev.wer('test', headline):.2f}%), more than export.max_wer_gap={cfg.export.max_wer_gap}. The run "
            f"folder is kept for inspection (eval/test-deployed.json). Fix: "
            + ("export with export.quantization=float32 (an engine/quantization gap), or " if quantization != "float32" else "")
            + "train with model.feature_padding=logmel (a front-end gap)")


def run_recipe(cfg: RecipeConfig) -> Path:
    """Run a whole recipe; returns the finished run folder.

    Raises:
        SpeechftError: bad data, a failed stage, or a deployed model worse than the report's row.
    """
    from ..cache import PrefixCaches
    from ..deployed import pretrained_export
    from ..lora import attach_lora, save_outputs as save_lora_outputs
    from ..models.adapters import load_adapter
    from ..models.registry import speechft_home
    from ..train import Trainer, seed_everything

    dist = get_dist()
    run_dir = dist.broadcast(choose_run_dir(cfg) if dist.is_main else None)  # one folder for all processes
    if (run_dir / "report.json").exists() and not (run_dir / INCOMPLETE_MARKER).exists():
        raise SpeechftError(f"{run_dir} already holds a finished run. Fix: choose another output_dir or remove it")
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / INCOMPLETE_MARKER, "this run has not finished; its files are not a result\n")
    dist.barrier()
    handler = setup_logging(run_dir, dist.rank)
    timer = StageTimer()
    try:
        if dist.is_main:
            save_config(cfg, run_dir / "config.yaml")
        log.info("run folder %s\nresolved config:\n%s", run_dir, json.dumps(cfg.to_dict(), indent=2))
        if cfg.data.prepare:
            with timer("prepare"):
                if dist.is_main:  # idempotent, but one writer is enough
                    prepare_in_subprocess(cfg.data.prepare)
                dist.barrier()
        seed_everything(cfg.train.seed)
        with timer("load model"):
            if not dist.is_main:
                dist.barrier()  # rank 0 converts a built-in alias first; the others then load it
            adapter = load_adapter(cfg.model.name, cfg.model)
            if dist.is_main:
                dist.barrier()
            adapter.model.to(dist.device)
            if adapter.encoder_precision != "fp32":
                log.info("frozen encoder computed in %s (model.encoder_precision=%s)", adapter.encoder_precision,
                         cfg.model.encoder_precision)
        limits = adapter.limits(cfg.data)
        with timer("validate"):
            sets, skipped, split = load_sets(cfg, limits)
            train_utts, packed = training_utterances(cfg, sets, limits)
            if cfg.eval.long_utterances and adapter.family == "whisper" and cfg.eval.deployed:
                sets["long"] = long_recordings(sets["test"], cfg.data.test, cfg.eval.long_utterances, cfg.train.seed)
        terms = read_terms(cfg.data.terms) if cfg.data.terms else None
        pretrained_ct2 = None
        if adapter.family == "whisper" and cfg.eval.deployed and "nonspeech" in sets and dist.is_main:
            # Converted now, while this process is small: a conversion briefly holds another copy of
            # the model, and after training it set the cold demo's peak memory.
            with timer("pretrained export"):
                # auto: the pretrained model as users deploy it by default (int8); its row is the
                # non-speech clips' before-row only, where the engines agree (no words either way).
                q = "int8" if cfg.export.quantization == "auto" else cfg.export.quantization
                pretrained_ct2 = pretrained_export(cfg.model.name, q)
        adapter = attach_lora(adapter, cfg)  # freeze.policy=lora: peft adapters on the model; otherwise unchanged
        # The recipe owns the freeze plan and the prefix caches: evaluation and training share both.
        plan = apply_freeze(adapter.model, cfg.freeze, adapter.family)
        caches = PrefixCaches(speechft_home() / "cache", adapter, enabled=cfg.train.cache)
        log.info("freeze policy %s: %s", cfg.freeze.policy, trainable_summary(adapter.model, plan))
        ev = Evaluation(sets, terms, run_dir, cfg.eval.batch_size, dist.is_main)
        decode = adapter.decode_options(cfg.eval)
        hf_sets = [s for s in ("test", "general") if s in sets]

        with timer("baseline eval"):
            before_cache = caches.for_units(plan.frozen_units)
            ev.model("before", hf_sets, adapter, before_cache, decode)
            if cfg.eval.prompted and terms:
                baselines = _prompt_baselines(adapter, terms, cfg, ev, "before",
                                              lambda: ev.model("before", ["dev"], adapter, before_cache, decode))
                for name, options in baselines.items():
                    ev.model(name, [s for s in hf_sets if s in cfg.eval.prompted_sets], adapter, before_cache, options)
        if "replay" in sets:
            log.info("replay: %d everyday utterances from %s mixed into %d training utterances",
                     len(sets["replay"]), cfg.data.replay, len(sets["train"]))
        head_change = adapter.prepare_for_training([u.text for u in train_utts])
        if head_change and head_change.get("added"):
            log.info("output layer adjusted to the training text: %s", head_change)
        plan = apply_freeze(adapter.model, cfg.freeze, adapter.family)  # again: prepare_for_training may have replaced the output layer
        tracker = open_tracker(cfg.train.report_to, run_dir, cfg.name) if dist.is_main else Tracker()
        tracker.log_config(cfg.to_dict())
        with timer("train"):
            train_result = Trainer(adapter, cfg, caches, terms, plan=plan, tracker=tracker).fit(
                train_utts, sets["dev"], checkpoint_dir=run_dir / "checkpoints", resume=cfg.resume)
        plan = train_result.plan  # gradual unfreezing may end on a later stage: the final eval and the counts use it
        cache = caches.for_units(plan.frozen_units)
        with timer("final eval"):
            prompted = _prompt_baselines(adapter, terms, cfg, ev, "after",
                                         lambda: ev.model("after", ["dev"], adapter, cache, decode)).get("prompted")
            prompt = prompted.prompt if prompted is not None else None
            headline, shipped = _choose_shipped(cfg, ev, adapter, cache, decode, prompt)
            log.info("shipped decoding: %s (%s)", headline, shipped.note)
            # Test in both conditions; general (real speech, where forgetting shows) only as shipped:
            # the unshipped condition there answers no question the report asks (14 s in the demo).
            ev.model("after", [s for s in hf_sets if s == "test" or headline == "after"], adapter, cache, decode)
            if prompt and cfg.eval.after_prompted:
                ev.model("after+prompted", [s for s in hf_sets if s == "test" or headline == "after+prompted"], adapter,
                         cache, decode.replace(prompt=prompt))
        n_train, n_total = count_params(adapter.model, plan)
        report = Report(
            recipe=cfg.name, model=cfg.model.name, family=adapter.family,
            freeze=cfg.freeze.policy + (f":{cfg.freeze.layers}" if cfg.freeze.policy == "lower" else ""),
            trainable_params=n_train, total_params=n_total,
            train={"seconds": round(train_result.seconds, 2), "steps": train_result.steps, "epochs": train_result.epochs,
                   "best_epoch": train_result.best_epoch, "history": train_result.history,
                   "skipped_batches": train_result.skipped_batches,
                   "precision": train_result.precision},
            eval=ev.results, headline=headline, shipped=shipped.to_dict(), voices=voices_of(sets), skipped=skipped, split=split,
            replay={"manifest": cfg.data.replay, "utterances": len(sets.get("replay", []))},
            packed={"seconds": cfg.data.pack_seconds, **packed},
        )
        if not dist.is_main:  # only rank 0 writes the model, the report and `latest`
            dist.barrier()
            return run_dir
        with timer("save"):
            # LoRA: adapter/ alone, then the adapter merged into the model that model/ holds.
            save_lora_outputs(adapter, run_dir, cfg.model.name, results_table(report.eval, headline), cfg.lora)
            tmp_model = run_dir / ".model.tmp"
            adapter.save(tmp_model)
            write_shipped(tmp_model, shipped)
            if (run_dir / "adapter").is_dir():  # LoRA: the adapter alone decodes as the report measured too
                write_shipped(run_dir / "adapter", shipped)
            atomic_write_text(tmp_model / "README.md", model_card(report.to_dict()))
            replace_dir(tmp_model, run_dir / "model")
        if adapter.family == "whisper" and cfg.eval.deployed:
            with timer("deployed eval"):
                report.export = _deployed_rows(cfg, ev, run_dir, shipped, pretrained_ct2, headline)
        report.eval, report.changes = ev.results, ev.changes(headline)
        report.stage_seconds = {k: round(v, 2) for k, v in timer.seconds.items()}
        report.peak_rss_mb = round(peak_rss_mb(), 1)  # of this process, rank 0
        report.processes = dist.world
        write_report(run_dir, report.to_dict())
        tracker.log_report(report.eval, train_result.steps)
        tracker.finish()
        _check_deployed(cfg, ev, headline, (report.export or {}).get("quantization", cfg.export.quantization))
        (run_dir / INCOMPLETE_MARKER).unlink()
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # the finished model supersedes them
        if not cfg.output_dir:
            point_latest(run_dir)
        print(f"\n{results_table(report.eval, headline)}\n")
        for line in change_lines(report.to_dict()):
            print(line)
        print("wall time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in timer.seconds.items()))
        print(f"peak memory (RSS): {report.peak_rss_mb:.0f} MB" + (f" per process, {dist.world} processes" if dist.active else "")
              + f"\nrun folder: {run_dir}")
        dist.barrier()
        return run_dir
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
