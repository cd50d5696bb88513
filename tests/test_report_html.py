"""report.html: built from a hand-made run folder, then opened in real headless Chromium.

The browser is driven over the DevTools protocol on a pipe (--remote-debugging-pipe), which needs
only the standard library. The browser tests skip only when no Chromium is installed
(Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from support import write_manifest, write_tone_wav
from speechft.cli import main
from speechft.evaluate import score
from speechft.report_html import write_comparison_html, write_report_html

ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots, kept after the run (git-ignored)
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install chromium)")
DATA = "tinydata-for-report"  # config paths are relative: resolved against the run folder's ancestors

TERMS = ["atorvastatin", "apixaban", "troponin"]
# set -> [(id, speaker, reference, before, after)]
SETS = {
    "test": [
        ("t-0", "anna", "Give atorvastatin daily.", "give a torvastatin daily", "give atorvastatin daily"),
        ("t-1", "anna", "Start apixaban now.", "start epic saban now", "start apixaban now"),
        ("t-2", "ben", "Check the troponin level.", "check the troponin level", "check the troponin"),
        ("t-3", "ben", "Order troponin </script> & apixaban.", "order troponin and apixaban", "order tropo nin and a pixaban"),
        ("t-4", "ben", "Hold it.", "hold it", "hold it please"),
    ],
    "general": [
        ("g-0", "cleo", "The weather is fine.", "the weather is fine", "the weather is find"),
        ("g-1", "cleo", "Call me later.", "call me later", "call me later"),
        ("g-2", "dev", "See you soon.", "see you", "see you soon"),
    ],
}


AUDIO = {"t-4": "t-4 #2.wav"}  # a name that must be quoted in a URL


def _audio_name(uid: str) -> str:
    return AUDIO.get(uid, f"{uid}.wav")


def _summary(res, **extra) -> dict:
    return {**res.summary(), **extra}


def _make_run(root: Path, recipe: str = "tiny") -> Path:
    """A run folder as `speechft run` writes it, with the fields later changes add (intervals, more
    conditions and metrics), and the manifests, audio and terms file its config.yaml names."""
    data = root / DATA
    (data).mkdir(parents=True, exist_ok=True)
    (data / "terms.txt").write_text("\n".join(TERMS) + "\n", encoding="utf-8")
    run = root / "runs" / recipe / "20260101-000000"
    (run / "eval").mkdir(parents=True)
    report_eval = {}
    for set_name, rows in SETS.items():
        manifest = [{"audio_filepath": f"audio/{_audio_name(uid)}", "text": ref, "duration": 1.0, "id": uid, "speaker": spk}
                    for uid, spk, ref, _, _ in rows]
        for i, (uid, *_rest) in enumerate(rows):
            write_tone_wav(data / "audio" / _audio_name(uid), 1.0, 220 + 30 * i, seed=i)
        write_manifest(data / f"{set_name}.jsonl", manifest)
        refs, ids = [r[2] for r in rows], [r[0] for r in rows]
        terms = TERMS if set_name == "test" else None
        results = {"before": score(refs, [r[3] for r in rows], ids, terms), "after": score(refs, [r[4] for r in rows], ids, terms)}
        if set_name == "test":
            results["prompted"] = score(refs, [r[4] if i % 2 else r[3] for i, r in enumerate(rows)], ids, terms)
            results["after+prompted"] = score(refs, [r[2] for r in rows], ids, terms)
        report_eval[set_name] = {}
        for cond, res in results.items():
            (run / "eval" / f"{set_name}-{cond}.json").write_text(json.dumps(res.to_dict()), encoding="utf-8")
            extra = {"ci": {"wer": [res.wer * 0.5, res.wer * 1.5 + 0.01], "term_recall": None}} if cond == "after" else {}
            if cond == "after+prompted":
                extra = {"words_per_minute": 151.25, "clips_with_words": 4}
            report_eval[set_name][cond] = _summary(res, **extra)
    config = {"name": recipe, "data": {"train": f"{DATA}/train.jsonl", "dev": f"{DATA}/dev.jsonl", "test": f"{DATA}/test.jsonl",
                                       "general": f"{DATA}/general.jsonl", "terms": f"{DATA}/terms.txt"}}
    (run / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    history = [{"epoch": e, "step": 2 * e, "train_loss": 2.0 / e, "dev_loss": 1.5 / e + 0.2} for e in (1, 2, 3)]
    report = {"recipe": recipe, "model": "tiny-whisper", "family": "whisper", "freeze": "encoder", "trainable_params": 1000,
              "total_params": 5000, "train": {"seconds": 3.5, "steps": 6, "epochs": 3, "best_epoch": 3, "history": history},
              "eval": report_eval, "voices": {"test": ["anna", "ben"], "general": ["cleo", "dev"]}}
    (run / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return run


def _misses(run: Path, set_name: str, cond: str) -> set[str]:
    utts = json.loads((run / "eval" / f"{set_name}-{cond}.json").read_text())["utterances"]
    return {f"{set_name}/{u['id']}" for u in utts if u["term_total"] > u["term_hits"]}


def _embedded(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="utterance-data">(.*?)</script>', page, re.S)
    return json.loads(m[1])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = _make_run(tmp_path_factory.mktemp("report"))
    write_report_html(run)
    return run


def test_page_holds_every_utterance_with_its_audio(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    data = _embedded(page)
    assert sorted(u["key"] for u in data["utts"]) == sorted(f"{s}/{r[0]}" for s, rows in SETS.items() for r in rows)
    assert data["conds"] == ["before", "after", "prompted", "after+prompted"]
    for u in data["utts"]:
        assert not Path(u["audio"]).is_absolute()
        assert (run_dir / unquote(u["audio"])).resolve() == (run_dir.parents[2] / DATA / "audio" / _audio_name(u["id"])).resolve()
        assert u["spk"] == {r[0]: r[1] for rows in SETS.values() for r in rows}[u["id"]]
    t0 = next(u for u in data["utts"] if u["id"] == "t-0")
    assert t0["c"]["before"]["ops"] == [["e", 0, 1, 0, 1], ["i", 1, 1, 1, 2], ["s", 1, 2, 2, 3], ["e", 2, 3, 3, 4]]


def test_page_is_self_contained_and_small(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "</script> &" not in page  # the reference text is escaped inside the embedded data
    assert len(page.encode()) < 200_000


def test_tables_show_every_condition_metric_and_interval(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    for text in ("after+prompted", "words_per_minute", "clips_with_words", "151", 'title="95% confidence interval"'):
        assert text in page, text
    # per-term table: the wrong spellings come from the alignment ("a torvastatin": insertion + substitution)
    assert "a torvastatin ×1" in page and "epic saban ×1" in page
    # per-speaker WER pools errors over words, as the corpus WER does
    after = json.loads((run_dir / "eval" / "test-after.json").read_text())["utterances"]
    ben = [u for u in after if u["id"] in ("t-2", "t-3", "t-4")]
    wer = sum(u["errors"] for u in ben) / sum(u["words"] for u in ben)
    row = re.search(r"<tr><td>test</td><td>ben</td><td>3</td><td>(\d+)</td>(.*?)</tr>", page)
    assert row and int(row[1]) == sum(u["words"] for u in ben)
    assert re.findall(r"<td>([^<]*)</td>", row[2])[1] == f"{100 * wer:.1f}%"  # columns: before, after, ...
    assert "<svg" in page and "train_loss" in page and "dev_loss" in page


def test_term_and_set_tables_agree_with_report_json(run_dir):
    """Recounted from the per-utterance files, the tables give the run's own term recall and WER."""
    from speechft.report_html import _group_wer, _load_run, _term_rows, _utterances

    run = _load_run(run_dir)
    utts = _utterances(run, run_dir)
    terms = [t for t in _term_rows(run, utts) if t["set"] == "test"]
    groups = {g["set"]: g for g in _group_wer(utts, ["before", "after"]) if g["speaker"] is None}
    for cond, summary in run["report"]["eval"]["test"].items():
        assert sum(t["hits"][cond] for t in terms) / sum(t["occurrences"] for t in terms) == pytest.approx(summary["term_recall"])
    for set_name, by_cond in run["report"]["eval"].items():
        for cond in ("before", "after"):
            assert groups[set_name]["wer"][cond] == pytest.approx(by_cond[cond]["wer"])


def test_cli_rebuilds_one_report_and_compares_several(tmp_path):
    a, b = _make_run(tmp_path / "a"), _make_run(tmp_path / "b", recipe="other")
    assert main(["report", str(a)]) == 0
    assert (a / "report.html").is_file()
    out = tmp_path / "compare.html"
    assert main(["report", str(a), str(b), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "tiny 20260101-000000" in page and "other 20260101-000000" in page
    links = re.findall(r'<a href="([^"]+)">', page)
    assert [(out.parent / link).resolve() for link in links] == [(a / "report.html").resolve(), (b / "report.html").resolve()]
    assert main(["report", str(tmp_path / "nothing-here")]) == 2


# ---------------------------------------------------------------- in the browser

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND"]


class Browser:
    """Headless Chromium over the DevTools protocol on a pipe: JSON messages ending in NUL,
    commands on the child's fd 3, replies and events on its fd 4."""

    def __init__(self, profile: Path, log: Path):
        cmd_r, self._w = os.pipe()
        self._r, reply_w = os.pipe()

        def fds():  # copies above 10 first, so dup2 onto 3 and 4 cannot clobber the other pipe end
            a, b = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (cmd_r, reply_w))
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._log = open(log, "wb")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, close_fds=False, preexec_fn=fds)
        os.close(cmd_r)
        os.close(reply_w)
        self._buf, self._id, self.events, self.session = b"", 0, [], None

    def _next(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no message from Chromium")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, timeout: float = 60) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._next(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def pump(self, seconds: float) -> None:
        """Collect events for a while (late requests or errors after the load event)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._next(deadline))
        except TimeoutError:
            pass

    def open(self, url: str) -> None:
        """Load the page afresh (via about:blank: a change of the #fragment alone would not
        reload it) and wait for its load event; the events then are this page's only."""
        for target in ("about:blank", url):
            self.events.clear()
            self.send("Page.navigate", {"url": target})
            deadline = time.monotonic() + 60
            while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
                self.events.append(self._next(deadline))
        self.pump(0.5)

    def js(self, expression: str):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors (CSP, failed loads) seen so far."""
        out = []
        for e in self.events:
            p, method = e.get("params", {}), e.get("method")
            if method == "Runtime.exceptionThrown":
                out.append(json.dumps(p["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(json.dumps(p.get("args"))[:500])
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(p["entry"].get("text", ""))
        return out

    def requests(self) -> list[str]:
        """URLs the page asked for; data: URLs (the audio controls' own icons) fetch nothing."""
        urls = [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]
        return [u for u in urls if not u.startswith("data:")]

    def screenshot(self, path: Path) -> Path:
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)
        self._log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no Chromium on PATH (Debian: apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("chromium")
    b = Browser(tmp / "profile", tmp / "chromium.log")
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        b.session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.send(f"{domain}.enable")
        b.send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        yield b
    finally:
        b.close()


VISIBLE_ROWS = "[...document.querySelectorAll('#utterances tbody tr:not([hidden])')].map((tr) => tr.dataset.key)"


@needs_chromium
def test_page_renders_without_error_or_network(browser, run_dir):
    url = (run_dir / "report.html").resolve().as_uri()
    browser.open(url)
    assert browser.errors() == []
    assert browser.requests() == [url]  # the page itself, nothing else
    keys = browser.js(VISIBLE_ROWS)
    assert sorted(keys) == sorted(f"{s}/{r[0]}" for s, rows in SETS.items() for r in rows)
    assert browser.js("document.querySelectorAll('#utterances audio[preload=none]').length") == len(keys)
    assert browser.js("document.querySelectorAll('#utterances tbody del, #utterances tbody ins, #utterances tbody span.sub').length") > 0
    path = browser.screenshot(ARTIFACTS / "report_html.png")
    print(f"screenshot: {path}")


@needs_chromium
def test_term_miss_filter_leaves_exactly_the_missed_utterances(browser, run_dir):
    url = (run_dir / "report.html").resolve().as_uri()
    expected = _misses(run_dir, "test", "after")
    assert expected and len(expected) < len(SETS["test"])  # the filter has something to leave out
    browser.open(url)
    chosen = browser.js("const s = document.getElementById('f-miss'); s.value = 'after'; s.dispatchEvent(new Event('change')); location.hash")
    assert chosen == "#miss=after"
    assert set(browser.js(VISIBLE_ROWS)) == expected
    browser.open(url + "#miss=before&sort=-err:before")  # the same state read from the URL on load
    before = browser.js(VISIBLE_ROWS)
    assert set(before) == _misses(run_dir, "test", "before")
    errors = {u["id"]: u["errors"] for u in json.loads((run_dir / "eval" / "test-before.json").read_text())["utterances"]}
    assert [errors[k.split("/")[1]] for k in before] == sorted((errors[k.split("/")[1]] for k in before), reverse=True)
    assert browser.errors() == []


@needs_chromium
def test_audio_plays_from_the_run_folder(browser, run_dir):
    browser.open((run_dir / "report.html").resolve().as_uri())
    duration = browser.js("""new Promise((done) => {
        const a = document.querySelector('tr[data-key="test/t-4"] audio');  // "t-4 #2.wav"
        a.addEventListener('loadedmetadata', () => done(a.duration));
        a.addEventListener('error', () => done('error ' + a.error.code));
        setTimeout(() => done('timeout'), 15000);
        a.preload = 'metadata'; a.load();
    })""")
    assert duration == pytest.approx(1.0, abs=0.05)
    assert browser.errors() == []


@needs_chromium
def test_comparison_renders_without_error(browser, run_dir, tmp_path):
    other = _make_run(tmp_path, recipe="other")
    out = write_comparison_html([run_dir, other], tmp_path / "compare.html")
    url = out.resolve().as_uri()
    browser.open(url)
    assert browser.errors() == []
    assert browser.requests() == [url]
    assert browser.js("document.querySelectorAll('svg.curves').length") == 2
    print(f"screenshot: {browser.screenshot(ARTIFACTS / 'report_comparison.png')}")
