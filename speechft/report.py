"""Run reports: report.json, report.md, a before/after chart and the model card."""

from __future__ import annotations

from pathlib import Path

from .io_utils import atomic_write_json, atomic_write_text

CONDITIONS = ("before", "prompted", "hotwords", "after")  # columns, in reading order


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def results_table(eval_results: dict) -> str:
    """Markdown table: one row per (set, condition) with WER, CER, term recall and n."""
    lines = ["| set | model | WER | CER | term recall | n |", "|---|---|---|---|---|---|"]
    for set_name, by_cond in eval_results.items():
        for cond in CONDITIONS:
            if cond in by_cond:
                r = by_cond[cond]
                lines.append(f"| {set_name} | {cond} | {_pct(r['wer'])} | {_pct(r['cer'])} | {_pct(r['term_recall'])} | {r['n']} |")
    return "\n".join(lines)


def change_lines(eval_results: dict) -> list[str]:
    """Plain-language before -> after summary per set."""
    out = []
    for set_name, by_cond in eval_results.items():
        if "before" in by_cond and "after" in by_cond:
            b, a = by_cond["before"]["wer"], by_cond["after"]["wer"]
            rel = (b - a) / b if b else 0.0
            change = f"{100 * (a - b):+.1f} points" + (f", {-100 * rel:+.0f}% relative" if b else "")
            out.append(f"{set_name}: WER {_pct(b)} -> {_pct(a)} ({change})")
    return out


def render_markdown(report: dict) -> str:
    t = report["train"]
    parts = [
        f"# speechft report: {report['recipe']}",
        "",
        f"- model: `{report['model']}` ({report['family']})",
        f"- freeze policy: `{report['freeze']}`; trainable parameters {report['trainable_params']:,} of {report['total_params']:,}",
        f"- training: {t['steps']} steps, {t['epochs']} epochs, {t['seconds']:.0f} s (best epoch {t.get('best_epoch')})",
    ]
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
    parts += ["", results_table(report["eval"]), "", *[f"- {line}" for line in change_lines(report["eval"])]]
    if report.get("stage_seconds"):
        parts += ["", "Wall time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["stage_seconds"].items())]
    if report.get("peak_rss_mb"):
        per = f" (rank 0 of {report['processes']} processes)" if report.get("processes", 1) > 1 else ""
        parts.append(f"Peak memory (RSS): {report['peak_rss_mb']:.0f} MB{per}")
    return "\n".join(parts) + "\n"


def write_chart(eval_results: dict, path: Path) -> None:
    """Grouped bars: WER and term recall per set and condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(eval_results)
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
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


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
        results_table(report["eval"]),
        "",
    ])


def write_report(run_dir: Path, report: dict) -> None:
    """Write report.json, report.md and chart.png into the run folder (each atomically)."""
    run_dir = Path(run_dir)
    atomic_write_json(run_dir / "report.json", report)
    atomic_write_text(run_dir / "report.md", render_markdown(report))
    write_chart(report["eval"], run_dir / "chart.png")
