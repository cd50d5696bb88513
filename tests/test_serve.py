"""The OpenAI-compatible server: status codes for every kind of bad input, a burst of 64
mixed requests all answered correctly with the server alive after, both backends, and
the real tiny.en export transcribing speech over HTTP. Loopback only."""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from speechft.errors import SpeechftError
from speechft.export import export_ct2
from speechft.serve import make_server

KEY = "test-key"
UPLOAD_LIMIT_MB = 0.25  # small, so the 413 test sends little
SR = 16000  # Hz


def wav_bytes(seconds: float, freq: float = 440.0) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * SR)) / SR
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def post(url: str, fields: dict | None = None, file: bytes | None = None, key: str | None = KEY,
         raw: bytes | None = None, content_type: str | None = None) -> tuple[int, bytes]:
    """POST a multipart form (or a raw body) with the standard library; returns (status, body)."""
    boundary = uuid.uuid4().hex
    if raw is None:
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in (fields or {}).items()]
        if file is not None:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
                         f"Content-Type: application/octet-stream\r\n\r\n".encode() + file + b"\r\n")
        raw = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": content_type or f"multipart/form-data; boundary={boundary}"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{url}/v1/audio/transcriptions", data=raw, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get(url: str, path: str, key: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url + path, headers=headers), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def running(model_dir, **kwargs):
    server = make_server(model_dir, host="127.0.0.1", port=0, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture(scope="module")
def ct2_server(tiny_whisper_dir, tmp_path_factory):
    """The random tiny Whisper exported to CT2 int8, served with a key and a small upload limit."""
    out = tmp_path_factory.mktemp("serve") / "ct2"
    export_ct2(tiny_whisper_dir, out, "int8")
    server = running(out, api_key=KEY, max_upload_mb=UPLOAD_LIMIT_MB, workers=4)
    yield server.url
    server.shutdown()
    server.server_close()


def error_code(body: bytes) -> str:
    err = json.loads(body)["error"]
    assert err["message"] and err["type"]
    return err["code"]


def test_health_and_models(ct2_server):
    status, body = get(ct2_server, "/health")
    assert status == 200 and json.loads(body)["backend"] == "ct2"
    assert get(ct2_server, "/v1/models")[0] == 401
    status, body = get(ct2_server, "/v1/models", KEY)
    assert status == 200 and json.loads(body)["data"][0]["object"] == "model"
    assert get(ct2_server, "/nope")[0] == 404


@pytest.mark.parametrize("fmt", ["json", "text", "verbose_json"])
def test_ok_formats(ct2_server, fmt):
    status, body = post(ct2_server, {"model": "whisper-1", "response_format": fmt, "prompt": "hello"}, wav_bytes(1.0))
    assert status == 200
    if fmt == "text":
        assert isinstance(body.decode("utf-8"), str)
    else:
        obj = json.loads(body)
        assert isinstance(obj["text"], str)
        if fmt == "verbose_json":
            assert obj["language"] == "english" and obj["duration"] == pytest.approx(1.0) and isinstance(obj["segments"], list)


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"file": b"this is not audio" * 10}, 400, "invalid_audio"),
        ({"file": wav_bytes(0.0)}, 400, "empty_audio"),
        ({"fields": {"model": "whisper-1"}}, 400, "missing_file"),
        ({"file": wav_bytes(0.5), "fields": {"response_format": "srt"}}, 400, "invalid_response_format"),
        ({"file": wav_bytes(0.5), "fields": {"language": "de"}}, 400, "invalid_language"),
        ({"raw": b"not a form", "content_type": "text/plain"}, 400, "invalid_content_type"),
        ({"raw": b"garbage", "content_type": "multipart/form-data; boundary=xyz"}, 400, "invalid_form"),
        ({"file": wav_bytes(0.5), "key": None}, 401, "invalid_api_key"),
        ({"file": wav_bytes(0.5), "key": "wrong"}, 401, "invalid_api_key"),
        ({"file": wav_bytes(10.0)}, 413, "file_too_large"),  # 320 kB > 0.25 MiB
    ],
)
def test_errors(ct2_server, kwargs, status, code):
    got, body = post(ct2_server, **kwargs)
    assert got == status and error_code(body) == code


def test_burst_of_64_mixed_requests(ct2_server):
    """64 concurrent requests, valid and invalid mixed: each gets its own right answer."""
    cases = [
        ({"file": wav_bytes(0.6)}, 200),
        ({"file": b"\x00garbage" * 50}, 400),
        ({"file": wav_bytes(0.6), "key": "wrong"}, 401),
        ({"file": wav_bytes(10.0)}, 413),
    ]
    jobs = [cases[i % len(cases)] for i in range(64)]
    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(lambda job: post(ct2_server, **job[0])[0], jobs))
    assert results == [expected for _, expected in jobs]
    assert get(ct2_server, "/health")[0] == 200
    assert post(ct2_server, file=wav_bytes(0.5))[0] == 200  # still transcribing


def test_hf_backend(tiny_whisper_dir):
    server = running(tiny_whisper_dir, workers=2)
    try:
        assert json.loads(get(server.url, "/health")[1])["backend"] == "hf"
        status, body = post(server.url, {"response_format": "verbose_json"}, wav_bytes(0.8), key=None)
        assert status == 200 and isinstance(json.loads(body)["text"], str)
        status, body = post(server.url, file=wav_bytes(31.0), key=None)  # one 30 s window on this path
        assert status == 400 and error_code(body) == "audio_too_long"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_real_tiny_en_over_http(tmp_path_factory):
    """The real tiny.en, exported to int8, transcribes flite speech through the endpoint."""
    from test_export import flite_export_int8

    from speechft.evaluate import score

    ct2_dir, manifest = flite_export_int8(tmp_path_factory)
    rows = [json.loads(line) for line in Path(manifest).read_text().splitlines()]
    server = running(ct2_dir, api_key=KEY)
    try:
        hyps = [json.loads(post(server.url, file=(Path(manifest).parent / r["audio_filepath"]).read_bytes())[1])["text"] for r in rows[:2]]
    finally:
        server.shutdown()
        server.server_close()
    assert score([r["text"] for r in rows[:2]], hyps, ["a", "b"]).wer <= 0.1, hyps


def test_beam_size_is_served_as_configured(tiny_whisper_dir, tmp_path):
    out = tmp_path / "ct2"
    export_ct2(tiny_whisper_dir, out, "int8")
    for model, beams in ((out, 1), (out, 3), (tiny_whisper_dir, 2)):  # CT2 export, CT2 export, HF folder
        server = running(model, beams=beams)
        try:
            status, body = get(server.url, "/health")
            assert status == 200 and json.loads(body)["beam_size"] == beams
            assert post(server.url, {"model": "whisper-1"}, wav_bytes(0.5), key=None)[0] == 200
        finally:
            server.shutdown()
            server.server_close()
    with pytest.raises(SpeechftError, match="beams=0"):
        make_server(out, port=0, beams=0)
