"""report.html: one self-contained page per run folder, and a side-by-side page for several runs.

Everything is derived from what the run folder already holds (report.json, config.yaml and the
per-utterance eval/<set>-<condition>.json files) plus the manifests and terms file that config.yaml
names, so `speechft report RUN_DIR` can rebuild the page of any finished run. The page has no
external reference: styles and script are inline (speechft/data/report_template.html) and the
data is embedded as JSON; the only links are relative paths to the run's audio files.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections import Counter, defaultdict
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import jiwer
import yaml

from .errors import SpeechftError
from .io_utils import atomic_write_text
from .manifest import read_manifest
from .text import count_term, normalize, read_terms

REPORT_HTML = "report.html"
TEMPLATE = "data/report_template.html"  # package data: the page's styles and script
# Metric names that hold fractions (0.05 = 5%) and so print as percentages.
_FRACTION = re.compile(r"wer|cer|recall|share|rate")
MAX_SPELLINGS = 3  # wrong spellings shown per term and condition
CURVE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def _resolve(path: str | None, run_dir: Path) -> Path | None:
    """A path from config.yaml: as given, else under the run folder's ancestors (config paths are
    relative to where `speechft run` was started, usually the folder that holds runs/)."""
    if not path:
        return None
    p = Path(path)
    for cand in [p] if p.is_absolute() else [Path.cwd() / p, *(a / p for a in run_dir.resolve().parents)]:
        if cand.exists():
            return cand
    return None


def _load_run(run_dir: Path) -> dict:
    """report.json, config.yaml, the eval files, the manifests' utterances and the terms."""
    if not (run_dir / "report.json").is_file():
        raise SpeechftError(f"{run_dir} has no report.json. Fix: point at a finished run folder (runs/<recipe>/<timestamp>)")
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    config = {}
    if (run_dir / "config.yaml").is_file():
        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    data_cfg = config.get("data") or {}
    evals: dict[str, dict[str, list[dict]]] = {}
    for set_name, by_cond in report.get("eval", {}).items():
        for cond in by_cond:
            f = run_dir / "eval" / f"{set_name}-{cond}.json"
            if f.is_file():
                evals.setdefault(set_name, {})[cond] = json.loads(f.read_text(encoding="utf-8")).get("utterances", [])
    manifests = {}
    for set_name in evals:  # eval set names are config data keys: test -> data.test
        path = _resolve(data_cfg.get(set_name), run_dir)
        manifests[set_name] = {u.id: u for u in read_manifest(path)} if path and path.is_file() else {}
    terms_path = _resolve(data_cfg.get("terms"), run_dir)
    terms = sorted({normalize(t) for t in read_terms(terms_path)} - {""}) if terms_path else []
    return {"dir": run_dir, "report": report, "evals": evals, "manifests": manifests, "terms": terms}


def _alignment(ref: list[str], hyp: list[str]) -> list[list]:
    """jiwer's word alignment as [[type letter, ref start, ref end, hyp start, hyp end], ...]."""
    if not ref or not hyp:  # jiwer needs words on both sides
        return [["d", 0, len(ref), 0, 0]] if ref else ([["i", 0, 0, 0, len(hyp)]] if hyp else [])
    chunks = jiwer.process_words(" ".join(ref), " ".join(hyp)).alignments[0]
    return [[c.type[0], c.ref_start_idx, c.ref_end_idx, c.hyp_start_idx, c.hyp_end_idx] for c in chunks]


def _aligned_hyp(ops: list[list], hyp: list[str], start: int, end: int) -> str:
    """The hypothesis words aligned to reference words [start, end); when they are not all
    correct, with the insertions that touch the span (a term heard as two words is one
    substitution plus one insertion)."""
    inner = [op for op in ops if op[0] != "i" and op[1] < end and op[2] > start]
    around = [] if all(op[0] == "e" for op in inner) else [op for op in ops if op[0] == "i" and start <= op[1] <= end]
    lo = hi = None
    for t, rs, re_, hs, he in inner + around:
        if t in "es":  # one-to-one: keep only the part inside the span
            hs, he = hs + max(start - rs, 0), hs + min(end, re_) - rs
        lo, hi = (hs if lo is None else min(lo, hs)), (he if hi is None else max(hi, he))
    return " ".join(hyp[lo:hi]) if lo is not None else ""


def _term_spans(words: list[str], term: list[str]) -> list[tuple[int, int]]:
    """Non-overlapping word spans of a term in a word list (as count_term counts them)."""
    spans, i, k = [], 0, len(term)
    while i + k <= len(words):
        if words[i : i + k] == term:
            spans.append((i, i + k))
            i += k
        else:
            i += 1
    return spans


def _utterances(run: dict, out_dir: Path) -> list[dict]:
    """One row per (set, utterance id): speaker, audio path, reference words, and per condition the
    hypothesis words, alignment, errors and missed terms."""
    rows = {}
    for set_name, by_cond in run["evals"].items():
        for cond, utts in by_cond.items():
            for u in utts:
                key = f"{set_name}/{u.get('id', '')}"
                if key not in rows:
                    man = run["manifests"].get(set_name, {}).get(u.get("id"))
                    # A relative URL, so the page plays the audio wherever the folders are (quoted: "#", " ").
                    audio = quote(Path(os.path.relpath(Path(man.audio_filepath).resolve(), out_dir.resolve())).as_posix()) if man else None
                    rows[key] = {"key": key, "id": u.get("id", ""), "set": set_name, "spk": man.speaker if man else None,
                                 "audio": audio, "text": u.get("ref", ""),
                                 "ref": (u.get("ref_norm") or "").split(), "words": u.get("words", 0), "c": {}}
                hyp = (u.get("hyp_norm") or "").split()
                rows[key]["c"][cond] = {"text": u.get("hyp", ""), "hyp": hyp, "ops": _alignment(rows[key]["ref"], hyp),
                                        "errors": u.get("errors", 0), "miss": u.get("term_total", 0) - u.get("term_hits", 0)}
    return list(rows.values())


def _term_rows(run: dict, utts: list[dict]) -> list[dict]:
    """Per (set, term): occurrences in the references, hits and wrong spellings per condition."""
    out = []
    for set_name, by_cond in run["evals"].items():
        mine = [u for u in utts if u["set"] == set_name]
        for term in run["terms"]:
            toks = term.split()
            occ = sum(count_term(" ".join(u["ref"]), term) for u in mine)
            if not occ:
                continue
            hits, wrong = {}, {}
            for cond in by_cond:
                hits[cond], spellings = 0, Counter()
                for u in mine:
                    c, n_ref = u["c"].get(cond), count_term(" ".join(u["ref"]), term)
                    if not c or not n_ref:
                        continue
                    n_hyp = count_term(" ".join(c["hyp"]), term)
                    hits[cond] += min(n_ref, n_hyp)  # as text.term_hits counts a hit
                    if n_hyp < n_ref:  # what was heard in place of each occurrence not heard right
                        heard = (_aligned_hyp(c["ops"], c["hyp"], s, e) for s, e in _term_spans(u["ref"], toks))
                        spellings.update(h or "(nothing)" for h in heard if h != term)
                wrong[cond] = spellings.most_common(MAX_SPELLINGS)
            out.append({"set": set_name, "term": term, "occurrences": occ, "hits": hits, "wrong": wrong})
    return sorted(out, key=lambda r: (r["set"], -r["occurrences"], r["term"]))


def _group_wer(utts: list[dict], conds: list[str]) -> list[dict]:
    """Corpus WER per (set, speaker) and per set (speaker None), as evaluate.score pools it."""
    groups: dict = defaultdict(lambda: {"n": 0, "words": 0, "err": Counter(), "ref": Counter()})
    for u in utts:
        for key in ((u["set"], None), (u["set"], u["spk"] or "(unknown)")):
            g = groups[key]
            g["n"] += 1
            g["words"] += u["words"]
            for cond, c in u["c"].items():
                g["err"][cond] += c["errors"]
                g["ref"][cond] += u["words"]
    return [{"set": s, "speaker": spk, "n": g["n"], "words": g["words"],
             "wer": {c: g["err"][c] / max(g["ref"][c], 1) for c in conds if c in g["ref"]}}
            for (s, spk), g in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] is not None, kv[0][1] or ""))]


# ---------------------------------------------------------------- HTML pieces

def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(name: str, v) -> str:
    """A metric value for a table cell: fractions as percentages, counts as integers."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _e(v)
    if isinstance(v, int):
        return f"{v:,}"
    return f"{100 * v:.1f}%" if _FRACTION.search(name) else f"{v:.3g}"


def _interval(name: str, iv) -> str:
    if not (isinstance(iv, (list, tuple)) and len(iv) == 2 and all(isinstance(x, (int, float)) for x in iv)):
        return ""
    lo, hi = (f"{100 * x:.1f}" if _FRACTION.search(name) else f"{x:.3g}" for x in iv)
    return f'<span class="ci" title="95% confidence interval">[{lo}, {hi}]</span>'


def _metric_cells(summary: dict) -> dict[str, str]:
    """{column: cell html} for every metric of one (set, condition) summary; `ci` holds intervals
    of other metrics, other nested fields become their own columns."""
    cis = summary.get("ci") if isinstance(summary.get("ci"), dict) else {}
    cells = {}
    for k, v in summary.items():
        if k == "ci":
            continue
        if isinstance(v, dict):
            for kk, vv in v.items():
                iv = _interval(kk, vv)
                cells[f"{k} {kk}"] = iv or _fmt(kk, vv)
        elif not isinstance(v, list):
            cells[k] = _fmt(k, v) + (" " + _interval(k, cis[k]) if k in cis and _interval(k, cis[k]) else "")
    return cells


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table from cells that are already HTML."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _summary_table(runs: list[dict], labels: list[str]) -> str:
    """Sets x conditions, one column per metric (and per run when comparing)."""
    keys, cells = [], {}
    for i, run in enumerate(runs):
        for set_name, by_cond in run["report"].get("eval", {}).items():
            for cond, summary in by_cond.items():
                if (set_name, cond) not in keys:
                    keys.append((set_name, cond))
                cells[(i, set_name, cond)] = _metric_cells(summary or {})
    metrics = list(dict.fromkeys(m for c in cells.values() for m in c))
    head = ["set", "condition"] + [_e(m) + (f"<br><small>{_e(lab)}</small>" if len(runs) > 1 else "")
                                   for m in metrics for lab in labels]
    rows = [[_e(s), _e(c)] + [cells.get((i, s, c), {}).get(m, "") for m in metrics for i in range(len(runs))] for s, c in keys]
    return _table(head, rows, "num")


def _terms_table(terms: list[dict]) -> str:
    conds = list(dict.fromkeys(c for t in terms for c in t["hits"]))
    head = ["set", "term", "occurrences"] + [f"hits {_e(c)}" for c in conds] + ["most common wrong spellings"]
    rows = []
    for t in terms:
        wrong = "; ".join(f"<b>{_e(c)}</b>: " + ", ".join(f"{_e(w)} ×{n}" for w, n in t["wrong"][c])
                          for c in conds if t["wrong"].get(c))
        rows.append([_e(t["set"]), _e(t["term"]), str(t["occurrences"])]
                    + [str(t["hits"][c]) if c in t["hits"] else "" for c in conds] + [wrong])
    return _table(head, rows, "num")


def _groups_table(groups: list[dict], conds: list[str]) -> str:
    head = ["set", "speaker", "utterances", "words"] + [f"WER {_e(c)}" for c in conds]
    rows = [[_e(g["set"]), "<b>all</b>" if g["speaker"] is None else _e(g["speaker"]), str(g["n"]), str(g["words"])]
            + [_fmt("wer", g["wer"].get(c)) if c in g["wer"] else "" for c in conds] for g in groups]
    return _table(head, rows, "num")


def _curves_svg(history: list[dict], best_epoch=None, width: int = 520, height: int = 240) -> str:
    """Every `*loss` series of train.history per epoch, as an inline SVG line chart."""
    series = [k for k in dict.fromkeys(k for h in history for k in h) if k.endswith("loss")]
    xs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    vals = [v for h in history for k in series if isinstance(v := h.get(k), (int, float)) and math.isfinite(v)]
    if not series or not vals:
        return "<p>No training history in report.json.</p>"
    left, right, top, bottom = 50, 130, 12, 34
    x_lo, x_hi, y_hi = min(xs), max(xs), max(vals) * 1.05 or 1.0
    px = lambda x: left + (x - x_lo) / ((x_hi - x_lo) or 1) * (width - left - right)  # noqa: E731
    py = lambda y: top + (1 - y / y_hi) * (height - top - bottom)  # noqa: E731
    parts = [f'<svg class="curves" role="img" aria-label="training curves" viewBox="0 0 {width} {height}" width="{width}" height="{height}">']
    for i in range(5):  # horizontal grid with loss labels
        y = y_hi * i / 4
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{py(y):.1f}" y2="{py(y):.1f}"/>'
                     f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    for x in dict.fromkeys(xs):
        parts.append(f'<text x="{px(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{_e(x)}</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.0f}" y="{height - 4}" text-anchor="middle">epoch</text>')
    if best_epoch in xs:
        parts.append(f'<line class="best" x1="{px(best_epoch):.1f}" x2="{px(best_epoch):.1f}" y1="{top}" y2="{height - bottom}">'
                     f'<title>best epoch {_e(best_epoch)}</title></line>')
    for j, key in enumerate(series):
        colour = CURVE_COLOURS[j % len(CURVE_COLOURS)]
        pts = [(px(x), py(h[key])) for x, h in zip(xs, history) if isinstance(h.get(key), (int, float)) and math.isfinite(h[key])]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in pts)}"/>')
        parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>' for a, b in pts]
        parts.append(f'<rect x="{width - right + 12}" y="{top + 18 * j}" width="12" height="3" fill="{colour}"/>'
                     f'<text x="{width - right + 30}" y="{top + 18 * j + 5}">{_e(key)}</text>')
    return "".join(parts) + "</svg>"


def _facts(report: dict) -> str:
    t = report.get("train", {})
    facts = [("model", f"{report.get('model')} ({report.get('family')})"), ("freeze policy", report.get("freeze")),
             ("trainable parameters", f"{report.get('trainable_params', 0):,} of {report.get('total_params', 0):,}"),
             ("training", f"{t.get('steps')} steps, {t.get('epochs')} epochs, {t.get('seconds', 0):.0f} s, best epoch {t.get('best_epoch')}")]
    facts += [(f"speakers ({k})", ", ".join(v)) for k, v in (report.get("voices") or {}).items()]
    if report.get("stage_seconds"):
        facts.append(("wall time per stage", ", ".join(f"{k} {v:.1f} s" for k, v in report["stage_seconds"].items())))
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts) + "</dl>"


def _page(title: str, body: str, data: dict | None = None) -> str:
    """The template with the title, the body and the embedded JSON filled in (one pass, so text
    that looks like a placeholder is left alone)."""
    template = resources.files("speechft").joinpath(TEMPLATE).read_text("utf-8")
    # "<" escaped keeps a "</script>" inside an utterance from closing the data element.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c") if data else "null"
    fill = {"title": _e(title), "body": body, "data": payload}
    return re.sub(r"\{\{(title|body|data)\}\}", lambda m: fill[m[1]], template)


def _run_label(run: dict) -> str:
    return f"{run['report'].get('recipe', '?')} {run['dir'].resolve().name}"


# ---------------------------------------------------------------- public

def build_report_html(run_dir: str | Path, out: str | Path | None = None) -> str:
    """The report page of one run folder, with audio paths relative to `out`'s folder
    (default: the run folder, where report.html goes)."""
    run_dir = Path(run_dir)
    run = _load_run(run_dir)
    out_dir = Path(out).parent if out else run_dir
    utts = _utterances(run, out_dir)
    conds = list(dict.fromkeys(c for u in utts for c in u["c"]))
    terms = _term_rows(run, utts)
    report = run["report"]
    sections = [
        f"<h1>speechft report: {_e(report.get('recipe', run_dir.name))}</h1>",
        f'<p class="sub">run folder {_e(run_dir.resolve().name)}</p>', _facts(report),
        "<h2>Results</h2>", _summary_table([run], ["this run"]),
        "<p class=\"note\">Fractions in %, on normalised text; [lo, hi]: 95% confidence interval where the run computed one.</p>",
        "<h2>Terms</h2>", _terms_table(terms) if terms else "<p>No terms file (config.yaml data.terms) or no term in the references.</p>",
        "<h2>WER per set and speaker</h2>", _groups_table(_group_wer(utts, conds), conds),
        "<h2>Training curves</h2>", _curves_svg(report.get("train", {}).get("history") or [], report.get("train", {}).get("best_epoch")),
        '<h2>Utterances</h2><div id="controls"></div><p id="count"></p>'
        '<p class="legend">Normalised reference against each condition: <span class="sub"><s>reference</s> heard</span> '
        'substitution, <del>deleted</del>, <ins>inserted</ins>. Click a column title to sort.</p><table id="utterances" class="utts"><thead></thead><tbody></tbody></table>',
    ]
    base = "before" if "before" in conds else (conds[0] if conds else None)
    final = "after" if "after" in conds else (conds[-1] if conds else None)
    return _page(f"speechft: {report.get('recipe', '')}", "\n".join(sections),
                 {"conds": conds, "base": base, "final": final, "utts": utts})


def write_report_html(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write report.html into the run folder (or to `out`); returns its path.

    Raises:
        SpeechftError: the folder holds no report.json, or a manifest it names is malformed.
    """
    path = Path(out) if out else Path(run_dir) / REPORT_HTML
    atomic_write_text(path, build_report_html(run_dir, path))
    return path


def write_comparison_html(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Write one page that sets several runs side by side (results, terms, speakers, curves) and
    links to each run's own report.html; returns its path."""
    out = Path(out)
    runs = [_load_run(Path(d)) for d in run_dirs]
    labels = [_run_label(r) for r in runs]
    labels = [lab if labels.count(lab) == 1 else f"{lab} ({i + 1})" for i, lab in enumerate(labels)]
    facts, terms, groups, curves = [], {}, {}, []
    for i, (run, lab) in enumerate(zip(runs, labels)):
        utts = _utterances(run, out.parent)
        conds = list(dict.fromkeys(c for u in utts for c in u["c"]))
        final = "after" if "after" in conds else conds[-1] if conds else None
        link = quote(Path(os.path.relpath((run["dir"] / REPORT_HTML).resolve(), out.parent.resolve())).as_posix())
        facts.append(f'<div class="run"><h3><a href="{_e(link)}">{_e(lab)}</a></h3>{_facts(run["report"])}</div>')
        for t in _term_rows(run, utts):
            if final in t["hits"]:
                terms.setdefault((t["set"], t["term"]), {})[i] = f"{t['hits'][final]}/{t['occurrences']} ({_e(final)})"
        for g in _group_wer(utts, conds):
            if final in g["wer"]:
                groups.setdefault((g["set"], g["speaker"]), {})[i] = f"{_fmt('wer', g['wer'][final])} ({_e(final)})"
        t = run["report"].get("train", {})
        curves.append(f'<div class="run"><h3>{_e(lab)}</h3>{_curves_svg(t.get("history") or [], t.get("best_epoch"))}</div>')
    heads = [_e(lab) for lab in labels]
    term_rows = [[_e(s), _e(term)] + [v.get(i, "") for i in range(len(runs))] for (s, term), v in sorted(terms.items())]
    group_rows = [[_e(s), "<b>all</b>" if spk is None else _e(spk)] + [v.get(i, "") for i in range(len(runs))]
                  for (s, spk), v in groups.items()]
    body = "\n".join([
        f"<h1>speechft: {len(runs)} runs side by side</h1>", '<div class="runs">' + "".join(facts) + "</div>",
        "<h2>Results</h2>", _summary_table(runs, labels),
        "<h2>Terms: hits / occurrences</h2>", _table(["set", "term"] + heads, term_rows, "num") if term_rows else "<p>No terms.</p>",
        "<h2>WER per set and speaker</h2>", _table(["set", "speaker"] + heads, group_rows, "num"),
        "<h2>Training curves</h2>", '<div class="runs">' + "".join(curves) + "</div>",
    ])
    atomic_write_text(out, _page("speechft: comparison", body))
    return out
