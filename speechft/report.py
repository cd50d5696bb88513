"""Run reports: report.json, report.md, report.html, a before/after chart and the model card."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .io_utils import atomic_path, atomic_write_json, atomic_write_text

# Columns, in reading order (see recipe/evaluation.py for what each is).
CONDITIONS = ("before", "prompted", "hotwords", "after", "after+prompted", "deployed-before", "deployed")
SET_ORDER = ("test", "general", "dev", "long", "nonspeech")


@dataclass
class Report:
    """What report.json holds. `eval[set][condition]` = {wer, cer, term_recall, n, ci, ...}."""

    recipe: str
    model: str
    family: str
    freeze: str
    trainable_params: int
    total_params: int
    train: dict
    eval: dict
    headline: str = "after"  # the condition the model ships with (its decoding is `shipped`)
    shipped: dict = field(default_factory=dict)
    changes: dict = field(default_factory=dict)  # set -> before -> headline change with 95% intervals
    voices: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    replay: dict = field(default_factory=dict)
    packed: dict = field(default_factory=dict)
    export: dict | None = None
    stage_seconds: dict = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    processes: int = 1

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if v is not None}


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _with_ci(x, ci) -> str:
    if x is None:
        return "n/a"
    return _pct(x) + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")


def _sets(eval_results: dict) -> list[str]:
    return [s for s in SET_ORDER if s in eval_results] + [s for s in eval_results if s not in SET_ORDER]


def results_table(eval_results: dict, headline: str | None = None) -> str:
    """Markdown table: one row per (set, condition) with WER and term recall (95% intervals),
    CER and n; the shipped condition is marked. Non-speech and long sets have their own tables."""
    lines = ["| set | model | WER [95% CI] | CER | term recall [95% CI] | n |", "|---|---|---|---|---|---|"]
    for set_name in _sets(eval_results):
        if set_name == "nonspeech":
            continue
        by_cond = eval_results[set_name]
        for cond in [c for c in CONDITIONS if c in by_cond] + [c for c in by_cond if c not in CONDITIONS]:
            r = by_cond[cond]
            ci = r.get("ci") or {}
            name = f"**{cond}** (shipped)" if cond == headline else cond
            lines.append(f"| {set_name} | {name} | {_with_ci(r['wer'], ci.get('wer'))} | {_pct(r['cer'])} | "
                         f"{_with_ci(r['term_recall'], ci.get('term_recall'))} | {r['n']} |")
    return "\n".join(lines)


def extra_tables(eval_results: dict) -> list[str]:
    """The long-recording timing and the non-speech tables (markdown lines)."""
    out = []
    long = eval_results.get("long", {})
    if long:
        out += ["", "Long recordings (test utterances joined; `deployed`: as served, each clip between pauses without "
                "timestamp tokens; `deployed+timestamps`: the model places them):", "",
                "| model | WER | the same sentences one by one | segments | with timestamp tokens | mean boundary error |",
                "|---|---|---|---|---|---|"]
        for cond, r in long.items():
            share, err = r.get("timestamped_share"), r.get("boundary_error_s")
            out.append(f"| {cond} | {_pct(r['wer'])} | {_pct(r.get('clip_by_clip_wer'))} | {r.get('segments', 'n/a')} | "
                       f"{_pct(share)} | " + ("n/a" if err is None else f"{err:.2f} s") + " |")
    nonspeech = eval_results.get("nonspeech", {})
    if nonspeech:
        out += ["", "Non-speech clips (silence, noise, hum, tones, babble), decoded as served:", "",
                "| model | clips with any word | words per minute | clips |", "|---|---|---|---|"]
        for cond, r in nonspeech.items():
            wpm = r.get("words_per_minute")
            out.append(f"| {cond} | {r.get('clips_with_words')} ({_pct(r.get('share_with_words'))}) | "
                       + ("n/a" if wpm is None else f"{wpm:.1f}") + f" | {r['n']} |")
    return out


def change_lines(report: dict) -> list[str]:
    """Plain-language before -> shipped summary per set, with the change's 95% interval."""
    out = []
    for set_name, c in report.get("changes", {}).items():
        b = report["eval"][set_name][c["from"]]["wer"]
        a = report["eval"][set_name][c["to"]]["wer"]
        ci = c.get("wer_ci")
        change = f"{100 * (a - b):+.1f} points" + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "")
        rel = f", {-100 * (b - a) / b:+.0f}% relative" if b else ""
        out.append(f"{set_name}: WER {_pct(b)} -> {_pct(a)} ({c['to']}; {change}{rel})")
    return out


def render_markdown(report: dict) -> str:
    t = report["train"]
    parts = [
        f"# speechft report: {report['recipe']}",
        "",
        f"- model: `{report['model']}` ({report['family']})",
        f"- freeze policy: `{report['freeze']}`; trainable parameters {report['trainable_params']:,} of {report['total_params']:,}",
        f"- training: {t['steps']} steps, {t['epochs']} epochs, {t['seconds']:.0f} s (best epoch {t.get('best_epoch')})"
        + (f", {t['precision']} autocast" if t.get("precision", "fp32") != "fp32" else ""),
    ]
    shipped = report.get("shipped") or {}
    if shipped:
        prompt = "the terms prompt" if shipped.get("prompt") else "no prompt"
        parts.append(f"- shipped decoding: `{report.get('headline', 'after')}`: {shipped.get('num_beams')} beam(s), {prompt}; "
                     f"{shipped.get('note', '')}"
                     + (f"; frozen encoder in {shipped['encoder_precision']}" if shipped.get("encoder_precision", "fp32") != "fp32" else ""))
    if report.get("voices"):
        parts.append("- speakers per split: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in report["voices"].items()))
    if report.get("skipped", {}).get("count"):
        parts.append(f"- utterances left out: {report['skipped']['count']} ({report['skipped']['reasons']})")
    if report.get("replay", {}).get("utterances"):
        parts.append(f"- replay against forgetting: {report['replay']['utterances']} everyday utterance(s) from "
                     f"{report['replay']['manifest']} mixed into training")
    if report.get("packed", {}).get("clips"):
        parts.append(f"- packed for training (data.pack_seconds: {report['packed']['seconds']:g}): "
                     f"{report['packed']['utterances']} utterances in {report['packed']['clips']} clips")
    if report.get("split", {}).get("utterances"):
        parts.append(f"- long audio split (data.long_audio: split): {report['split']['utterances']} utterance(s) "
                     f"into {report['split']['pieces']} pieces at segment boundaries")
    parts += ["", results_table(report["eval"], report.get("headline")), *extra_tables(report["eval"]), "",
              *[f"- {line}" for line in change_lines(report)]]
    if report.get("stage_seconds"):
        parts += ["", "Wall time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["stage_seconds"].items())]
    if report.get("peak_rss_mb"):
        per = f" (rank 0 of {report['processes']} processes)" if report.get("processes", 1) > 1 else ""
        parts.append(f"Peak memory (RSS): {report['peak_rss_mb']:.0f} MB{per}")
    return "\n".join(parts) + "\n"


def write_chart(eval_results: dict, path: Path) -> None:
    """Grouped bars: WER and term recall per set and condition (sets with words only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [s for s in _sets(eval_results) if s != "nonspeech"]
    conds = [c for c in CONDITIONS if any(c in eval_results[s] for s in sets)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / max(len(conds), 1)
    for ax, metric, title in ((axes[0], "wer", "WER (lower is better)"), (axes[1], "term_recall", "term recall (higher is better)")):
        for j, cond in enumerate(conds):
            vals = [(eval_results[s].get(cond) or {}).get(metric) or 0.0 for s in sets]
            ax.bar([i + j * width for i in range(len(sets))], vals, width, label=cond)
        ax.set_xticks([i + width * (len(conds) - 1) / 2 for i in range(len(sets))], sets)
        ax.set_title(title)
        ax.set_ylim(0, 1)
    axes[0].legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def model_card(report: dict) -> str:
    return "\n".join([
        "---",
        "library_name: transformers",
        "tags: [speechft, automatic-speech-recognition]",
        "---",
        f"# {report['recipe']}: adapted from `{report['model']}` with speechft",
        "",
        f"Freeze policy `{report['freeze']}`; {report['train']['steps']} training steps.",
        "WER and term recall on held-out data, before and after adaptation (normalised text, jiwer):",
        "",
        results_table(report["eval"], report.get("headline")),
        "",
    ])


def write_report(run_dir: Path, report: dict) -> None:
    """Write report.json, report.md, chart.png and report.html into the run folder (each atomically)."""
    from .report_html import write_report_html

    run_dir = Path(run_dir)
    atomic_write_json(run_dir / "report.json", report)
    atomic_write_text(run_dir / "report.md", render_markdown(report))
    write_chart(report["eval"], run_dir / "chart.png")
    write_report_html(run_dir)
