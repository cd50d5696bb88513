"""Soak test of `speechft serve`: data that lies and clients that fail, on loopback.

Starts the server as a subprocess (`python -m speechft.cli serve --port 0`), then sends
--requests requests from --clients concurrent clients, a fixed mix of:

- good:            a flite sentence as WAV; must be answered 200 with exactly the text of a
                   reference decode (the same bytes through `decode_upload` + `transcribe_deployed`
                   in this process, with the decoding the server resolved);
- truncated_audio: a WAV cut inside its header; must be 400 invalid_audio;
- truncated_form:  a form cut before its closing boundary (Content-Length matching what is
                   sent); must be 400 invalid_form;
- wrong_type:      text/plain, JSON or url-encoded bodies; must be 400 invalid_content_type;
- disconnect:      a raw socket that sends the headers and half the body, then closes.

Afterwards the server must still answer, hold no request in progress, and its resident
memory (VmRSS of the process, measured after a warm-up) must be back within 10% of where it
started. Bounded: --requests and --max-seconds; every socket has a timeout.

Run from the repository root:
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serve_soak.py [--requests 200 --clients 16]
Exit status 1 when any check fails. tests/serve/test_soak.py runs a smaller version.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

FLITE = "/usr/bin/flite"
MODEL = "whisper-tiny.en"
DEFAULT_WORK_DIR = Path(tempfile.gettempdir()) / "speechft-bench-serve-soak"
PATH = "/v1/audio/transcriptions"
BOUNDARY = "speechft-soak"
MEMORY_SLACK = 0.10  # RSS after the soak may exceed RSS after warm-up by this fraction
SETTLE_S = 2.0  # wait after the last request before measuring memory
START_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 300.0  # one request, waiting behind the others on 2 cores
# One round of the mix: half good, the rest lies and failures (deterministic order).
MIX = ["good", "truncated_audio", "good", "wrong_type", "good", "disconnect", "good", "truncated_form", "good", "disconnect"]
EXPECTED_CODE = {"truncated_audio": "invalid_audio", "truncated_form": "invalid_form", "wrong_type": "invalid_content_type"}
WRONG_TYPES = [("text/plain", b"hello"), ("application/json", b'{"file": "a.wav"}'),
               ("application/x-www-form-urlencoded", b"file=a.wav&model=whisper-1")]
SENTENCES = [
    "Turn on the kitchen lights.",
    "Set a timer for ten minutes.",
    "What is the weather like tomorrow morning?",
    "Lock the front door and close the garage.",
    "Remind me to water the plants at six o'clock.",
    "Please remember to buy milk, bread and eggs on your way home.",
    "Could you close the window? It is getting cold in here.",
    "The meeting has been moved to Thursday afternoon.",
]


@dataclass
class Outcome:
    kind: str
    status: int | None  # None: no answer (the disconnect clients expect none)
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class SoakResult:
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0

    def problems(self) -> list[str]:
        return [f"{o.kind}: {o.detail}" for o in self.outcomes if not o.ok]


def wav(x: np.ndarray, sr: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def form(audio: bytes, fields: dict | None = None) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in (fields or {"model": "whisper-1"}).items()]
    parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
                 "Content-Type: audio/wav\r\n\r\n".encode() + audio + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


class Server:
    """`speechft serve` as a subprocess on a free loopback port."""

    def __init__(self, model_dir: Path, args: list[str], log_path: Path):
        cmd = [sys.executable, "-m", "speechft.cli", "serve", "--model", str(model_dir), "--port", "0", *args]
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        line = self.proc.stdout.readline().decode()  # "serving DIR (...) at http://127.0.0.1:PORT/v1/...; ..."
        if " at http://" not in line:
            self.stop()
            raise RuntimeError(f"speechft serve did not start: {line!r}\n{log_path.read_text()[-3000:]}")
        self.url = line.split(" at ", 1)[1].split(PATH, 1)[0]
        self.host, port = self.url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.health() is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"speechft serve not healthy:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)

    def health(self) -> dict | None:
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            conn.request("GET", "/health")
            response = conn.getresponse()
            return json.loads(response.read()) if response.status == 200 else None
        except OSError:
            return None

    def rss_mib(self) -> float:
        """Resident memory of the server process, from /proc (Linux)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc")

    def stop(self) -> None:
        self.proc.terminate()  # SIGTERM: uvicorn's graceful shutdown
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def post(server: Server, body: bytes, content_type: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request("POST", PATH, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def disconnect_mid_upload(server: Server, body: bytes) -> None:
    """Send the headers and half the body, then close: a client that gives up or crashes."""
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        head = (f"POST {PATH} HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        sock.sendall(head + body[: len(body) // 2])


def run_job(server: Server, kind: str, i: int, good: list[tuple[bytes, str]]) -> Outcome:
    """One client request of `kind`; `good` holds (wav bytes, reference text) pairs."""
    start = time.perf_counter()
    audio, reference = good[i % len(good)]
    try:
        if kind == "disconnect":
            disconnect_mid_upload(server, form(audio))
            return Outcome(kind, None, True, time.perf_counter() - start)
        if kind == "good":
            status, body = post(server, form(audio), f"multipart/form-data; boundary={BOUNDARY}")
        elif kind == "truncated_audio":
            status, body = post(server, form(audio[:30]), f"multipart/form-data; boundary={BOUNDARY}")
        elif kind == "truncated_form":
            whole = form(audio)
            status, body = post(server, whole[: len(whole) * 2 // 3], f"multipart/form-data; boundary={BOUNDARY}")
        else:
            content_type, raw = WRONG_TYPES[i % len(WRONG_TYPES)]
            status, body = post(server, raw, content_type)
    except OSError as e:  # a dropped connection is a failure of the server
        return Outcome(kind, None, False, time.perf_counter() - start, f"connection failed: {e!r}")
    seconds = time.perf_counter() - start
    try:
        obj = json.loads(body)
    except ValueError:
        return Outcome(kind, status, False, seconds, f"{status}, not JSON: {body[:200]!r}")
    if kind == "good":
        ok = status == 200 and obj.get("text") == reference
        return Outcome(kind, status, ok, seconds, "" if ok else f"{status} {obj} != reference {reference!r}")
    code = (obj.get("error") or {}).get("code")
    ok = 400 <= status < 500 and code == EXPECTED_CODE[kind]
    return Outcome(kind, status, ok, seconds, "" if ok else f"{status} {code}, expected 4xx {EXPECTED_CODE[kind]}")


def run_soak(server: Server, good: list[tuple[bytes, str]], requests: int, clients: int, max_seconds: float) -> SoakResult:
    """Send `requests` jobs (the MIX in order) from `clients` threads; stop starting new
    ones after `max_seconds`."""
    deadline = time.monotonic() + max_seconds

    def job(i: int) -> Outcome | None:
        if time.monotonic() > deadline:
            return None
        return run_job(server, MIX[i % len(MIX)], i, good)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        outcomes = [o for o in pool.map(job, range(requests)) if o is not None]
    return SoakResult(outcomes, time.perf_counter() - start)


def references(model_dir: Path, served: dict, clips: list[bytes]) -> list[str]:
    """Each clip decoded in this process exactly as the server says it decodes (its /health
    `decoding`): the same bytes through decode_upload, then transcribe_deployed."""
    import dataclasses

    from speechft.models.ct2.runtime import DeployedDecoding, load_ct2, transcribe_deployed
    from speechft.serve.upload import decode_upload

    names = {f.name for f in dataclasses.fields(DeployedDecoding)}
    decoding = DeployedDecoding(**{k: v for k, v in served.items() if k in names})
    model = load_ct2(model_dir)
    return [transcribe_deployed(model, decode_upload(io.BytesIO(c)), decoding)[0] for c in clips]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(q * len(ordered))) - 1)] if ordered else float("nan")


def soak(model_dir: Path, clips: list[bytes], server_args: list[str], requests: int, clients: int,
         max_seconds: float, log_path: Path) -> dict:
    """Run the whole soak against `speechft serve --model model_dir *server_args`; returns the
    figures and the list of problems (empty: passed)."""
    server = Server(model_dir, server_args, log_path)
    try:
        good = list(zip(clips, references(model_dir, server.health()["decoding"], clips)))
        for i in range(len(good)):  # warm-up: first-call allocations are not a leak
            run_job(server, "good", i, good)
        rss_before = server.rss_mib()
        result = run_soak(server, good, requests, clients, max_seconds)
        time.sleep(SETTLE_S)
        rss_after = server.rss_mib()
        health = server.health()
    finally:
        server.stop()
    problems = result.problems()
    if len(result.outcomes) < requests:
        problems.append(f"only {len(result.outcomes)} of {requests} requests started within {max_seconds:.0f} s")
    if health is None or health.get("pending") != 0:
        problems.append(f"after the soak the server answered /health with {health}")
    if rss_after > rss_before * (1 + MEMORY_SLACK):
        problems.append(f"memory grew from {rss_before:.1f} to {rss_after:.1f} MiB (> {MEMORY_SLACK:.0%})")
    kinds = sorted({o.kind for o in result.outcomes})
    answered = [o for o in result.outcomes if o.status is not None]
    good_s = [o.seconds for o in result.outcomes if o.kind == "good"]
    error_s = [o.seconds for o in answered if o.kind != "good"]
    return {
        "requests": len(result.outcomes), "clients": clients, "wall_s": result.wall_s,
        "by_kind": {k: sum(o.kind == k for o in result.outcomes) for k in kinds},
        "errors_by_code": _codes(answered),
        "good_p50_s": statistics.median(good_s) if good_s else float("nan"), "good_p95_s": percentile(good_s, 0.95),
        "error_p50_s": statistics.median(error_s) if error_s else float("nan"), "error_p95_s": percentile(error_s, 0.95),
        "rss_before_mib": rss_before, "rss_after_mib": rss_after, "problems": problems,
    }


def _codes(answered: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in answered:
        if o.status != 200:
            key = f"{o.status} {EXPECTED_CODE.get(o.kind, '?')}" if o.ok else f"{o.status} unexpected"
            counts[key] = counts.get(key, 0) + 1
    return counts


def print_figures(fig: dict) -> None:
    print(f"requests: {fig['requests']} from {fig['clients']} concurrent clients in {fig['wall_s']:.1f} s")
    print("by kind: " + ", ".join(f"{k} {n}" for k, n in fig["by_kind"].items()))
    print("error answers: " + (", ".join(f"{k}: {n}" for k, n in sorted(fig["errors_by_code"].items())) or "none"))
    print(f"latency, good requests: p50 {fig['good_p50_s']:.2f} s, p95 {fig['good_p95_s']:.2f} s; "
          f"error answers: p50 {fig['error_p50_s']:.2f} s, p95 {fig['error_p95_s']:.2f} s")
    change = fig["rss_after_mib"] / fig["rss_before_mib"] - 1
    print(f"server memory (RSS): {fig['rss_before_mib']:.1f} MiB after warm-up, {fig['rss_after_mib']:.1f} MiB after "
          f"the soak ({change:+.1%}; limit +{MEMORY_SLACK:.0%})")
    print("PASSED: every good request matched its reference, every bad one was a 4xx JSON error"
          if not fig["problems"] else "FAILED:\n  " + "\n  ".join(fig["problems"][:20]))


def _flite_clips(work: Path) -> list[bytes]:
    from speechft.audio import load_audio

    clips = []
    for i, text in enumerate(SENTENCES):
        path = work / "clips" / f"{i}.wav"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([FLITE, "-voice", "slt", "-t", text, "-o", str(path)], check=True, timeout=60)
        clips.append(wav(load_audio(path)))
    return clips


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop starting requests after this long")
    parser.add_argument("--model", type=Path, help="a CT2 export (default: tiny.en exported to int8 in --work-dir)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    model_dir = args.model
    if model_dir is None:
        from speechft.export import export_ct2
        from speechft.models import resolve_model

        model_dir = args.work_dir / "tiny_en_int8"
        if not (model_dir / "model.bin").is_file():
            export_ct2(resolve_model(MODEL), model_dir, "int8")
    print(f"model: {model_dir}, deployed defaults (beam 5, VAD, guards); load average {os.getloadavg()[0]:.1f}")
    fig = soak(model_dir, _flite_clips(args.work_dir), [], args.requests, args.clients, args.max_seconds,
               args.work_dir / "server.log")
    print_figures(fig)
    return 1 if fig["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
