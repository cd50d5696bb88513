"""OpenAI-compatible speech-to-text endpoint: `POST /v1/audio/transcriptions`, `GET /health`.

Serves a CTranslate2 folder made by `speechft export` through faster-whisper (the fast path,
detected by its model.bin) or a Hugging Face Whisper folder through the speechft adapter.
Both decode greedily with the settings the export parity check measured.

The stack is the standard library's HTTP server plus `python-multipart` for the form body.
A fixed pool of worker threads handles connections (so a burst cannot spawn unbounded
threads), audio decoding runs in parallel, and one lock serialises the model, whose own
intra-op threads already use every core. Every failure becomes a JSON error response
`{"error": {"message", "type", "code"}}`; nothing a client sends can stop the server.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, WHISPER_MAX_SECONDS, resample
from .errors import SpeechftError
from .export import MAX_NEW_TOKENS, ct2_transcribe, is_ct2_dir, load_ct2

log = logging.getLogger(__name__)

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
MODELS_PATH = "/v1/models"
HEALTH_PATH = "/health"
DEFAULT_MAX_UPLOAD_MB = 25  # MiB, OpenAI's own limit for this endpoint
DEFAULT_WORKERS = 4  # connection threads; decoding overlaps, the model runs one request at a time
DEFAULT_BEAMS = 5  # faster-whisper's and wyoming-faster-whisper's default; recipes with eval.num_beams 5 measured this
MAX_PENDING = 256  # accepted connections waiting for a worker; beyond this: 503 at once
LISTEN_BACKLOG = 128  # the stdlib default (5) drops connections of a modest burst
SOCKET_TIMEOUT_S = 30  # a stalled client frees its worker after this long
DRAIN_LIMIT_BYTES = 256 * 1024 * 1024  # read and discard an unwanted body up to this size
READ_CHUNK = 1024 * 1024  # bytes per socket read
RESPONSE_FORMATS = ("json", "text", "verbose_json")
_MIB = 1024 * 1024


class HTTPError(Exception):
    """An error answer: HTTP status, OpenAI-style error type and code, and the message."""

    def __init__(self, status: int, message: str, code: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.code, self.kind = status, message, code, kind


class CT2Backend:
    """An exported CTranslate2 folder, decoded by faster-whisper."""

    kind = "ct2"

    def __init__(self, model_dir: Path, beams: int = DEFAULT_BEAMS):
        self.model = load_ct2(model_dir)
        self.beams = beams
        self.languages = set(self.model.supported_languages)

    def transcribe(self, audio: np.ndarray, language: str | None, prompt: str | None) -> tuple[str, list[dict]]:
        text, segments = ct2_transcribe(self.model, audio, language, prompt, beams=self.beams)
        return text, [
            {"id": i, "seek": s.seek, "start": round(s.start, 2), "end": round(s.end, 2), "text": s.text, "tokens": s.tokens,
             "temperature": s.temperature, "avg_logprob": s.avg_logprob, "compression_ratio": s.compression_ratio,
             "no_speech_prob": s.no_speech_prob}
            for i, s in enumerate(segments)
        ]


class HFBackend:
    """A Hugging Face Whisper folder (or built-in alias), decoded by the speechft adapter."""

    kind = "hf"

    def __init__(self, model_dir: str, beams: int = DEFAULT_BEAMS):
        from .config import ModelConfig
        from .models import load_model
        from .models.adapters import adapter_for

        self.adapter = adapter_for(load_model(model_dir), ModelConfig(name=model_dir))
        self.beams = beams
        if self.adapter.family != "whisper":
            raise SpeechftError(f"{model_dir} is a {self.adapter.family} model; the server takes Whisper models. "
                                "Fix: serve a Whisper run's model folder or its CT2 export")
        gen = self.adapter.model.generation_config
        codes = {tok.strip("<|>") for tok in (getattr(gen, "lang_to_id", None) or {})}
        self.languages = codes if self.adapter.multilingual and codes else {"en"}

    def transcribe(self, audio: np.ndarray, language: str | None, prompt: str | None) -> tuple[str, list[dict]]:
        # One 30 s window: the HF path does not split long audio (the CT2 path does).
        if audio.size > WHISPER_MAX_SECONDS * SAMPLE_RATE:
            raise HTTPError(400, f"audio is {audio.size / SAMPLE_RATE:.1f} s; a Hugging Face model folder takes at most "
                            f"{WHISPER_MAX_SECONDS:.0f} s. Fix: split the audio, or serve the CT2 export "
                            "(speechft export), which transcribes long audio", "audio_too_long")
        previous = self.adapter.language
        if language and self.adapter.multilingual:
            self.adapter.language = language  # safe: the caller holds the model lock
        try:
            text = self.adapter.transcribe_audio([audio], prompt=prompt or None, num_beams=self.beams, max_new_tokens=MAX_NEW_TOKENS)[0]
        finally:
            self.adapter.language = previous
        return text, [{"id": 0, "seek": 0, "start": 0.0, "end": round(audio.size / SAMPLE_RATE, 2), "text": text}]


def load_backend(model_dir: str | Path, beams: int = DEFAULT_BEAMS):
    """CT2Backend for a folder holding model.bin, else HFBackend (folder or built-in alias)."""
    if is_ct2_dir(model_dir):
        return CT2Backend(Path(model_dir), beams)
    return HFBackend(str(model_dir), beams)


def decode_upload(data: bytes) -> np.ndarray:
    """Uploaded bytes -> float32 mono 16 kHz. WAV/FLAC/OGG through soundfile (as load_audio
    does), any other container (mp3, m4a, webm) through PyAV.

    Raises:
        HTTPError: 400 when neither can decode it, or it holds no samples.
    """
    import soundfile as sf

    try:
        samples, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        audio = resample(np.ascontiguousarray(samples.mean(axis=1)), int(sr), SAMPLE_RATE)
    except Exception as sf_error:  # noqa: BLE001 - any decoder failure means "try the next one"
        from faster_whisper.audio import decode_audio

        try:
            audio = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
        except Exception as av_error:
            log.debug("soundfile: %s; PyAV: %s", sf_error, av_error)
            raise HTTPError(400, f"cannot decode the uploaded audio: neither soundfile nor FFmpeg (PyAV) recognises it "
                            f"({type(av_error).__name__}). Fix: send WAV, FLAC, MP3, OGG, M4A or WebM audio",
                            "invalid_audio") from av_error
    if audio.size == 0:
        raise HTTPError(400, "the uploaded audio has no samples. Fix: send a non-empty recording", "empty_audio")
    return audio


def _language_name(code: str) -> str:
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return LANGUAGES.get(code, code)


def parse_form(content_type: str, body: bytes, max_bytes: int) -> tuple[dict[str, str], dict[str, bytes]]:
    """multipart/form-data body -> (text fields, file parts by field name).

    Raises:
        HTTPError: 400 when the body is not a well-formed multipart form.
    """
    from python_multipart.multipart import FormParser, parse_options_header

    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise HTTPError(400, f"Content-Type must be multipart/form-data with a boundary, got {content_type!r}. "
                        "Fix: send the audio as a form field named 'file'", "invalid_content_type")
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}

    def on_field(field) -> None:
        fields[(field.field_name or b"").decode("utf-8", "replace")] = (field.value or b"").decode("utf-8", "replace")

    def on_file(part) -> None:
        part.file_object.seek(0)
        files[(part.field_name or b"").decode("utf-8", "replace")] = part.file_object.read()

    # Files stay in memory: the body is already in memory and bounded by the upload limit.
    config = {"MAX_MEMORY_FILE_SIZE": max_bytes + 1, "MAX_BODY_SIZE": max_bytes}
    try:
        parser = FormParser("multipart/form-data", on_field, on_file, boundary=params[b"boundary"], config=config)
        parser.write(body)
        parser.finalize()
    except Exception as e:  # the parser raises several types for malformed input
        raise HTTPError(400, f"malformed multipart body: {e}. Fix: send a multipart/form-data form", "invalid_form") from e
    return fields, files


class TranscriptionServer(HTTPServer):
    """HTTPServer whose connections run on a bounded thread pool."""

    request_queue_size = LISTEN_BACKLOG
    allow_reuse_address = True

    def __init__(self, address, backend, api_key: str | None, max_upload_mb: float, workers: int, model_name: str):
        super().__init__(address, _Handler)
        self.backend, self.api_key, self.model_name = backend, api_key, model_name
        self.max_bytes = int(max_upload_mb * _MIB)
        self.model_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="speechft-serve")
        self._slots = threading.BoundedSemaphore(MAX_PENDING)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            # Overloaded: answer at once rather than queue without bound.
            body = json.dumps({"error": {"message": "server busy, retry later", "type": "overloaded_error", "code": "busy"}})
            try:
                request.sendall(f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                f"Content-Length: {len(body)}\r\nRetry-After: 1\r\n\r\n{body}".encode())
            except OSError:
                pass
            self.shutdown_request(request)
            return
        self._pool.submit(self._work, request, client_address)

    def _work(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - logged; the server keeps running
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so an idle keep-alive client never holds a worker.
    protocol_version = "HTTP/1.0"
    timeout = SOCKET_TIMEOUT_S
    server: TranscriptionServer
    server_version = "speechft"
    _body_read = False  # set once the request body has been consumed

    def log_message(self, fmt, *args) -> None:
        log.info("%s %s", self.address_string(), fmt % args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == HEALTH_PATH:  # no key: load balancers and container health checks probe it
                self._json(200, {"status": "ok", "backend": self.server.backend.kind, "model": self.server.model_name,
                                 "beam_size": self.server.backend.beams})
            elif path == MODELS_PATH:
                self._check_key()
                self._json(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model", "owned_by": "speechft"}]})
            else:
                raise HTTPError(404, f"no route GET {path}. Fix: POST {TRANSCRIPTIONS_PATH} or GET {HEALTH_PATH}", "not_found")
        except HTTPError as e:
            self._error(e)

    def do_POST(self) -> None:
        try:
            self._transcriptions()
        except HTTPError as e:
            self._error(e)
            self._drain()
        except (ConnectionError, TimeoutError) as e:  # the client went away: nobody to answer
            log.info("client %s: %s", self.address_string(), e)
        except Exception as e:  # a bug must cost one request, not the server
            log.exception("request failed")
            self._error(HTTPError(500, f"internal error: {type(e).__name__}: {e}", "internal_error", "server_error"))

    def _transcriptions(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != TRANSCRIPTIONS_PATH:
            raise HTTPError(404, f"no route POST {path}. Fix: POST {TRANSCRIPTIONS_PATH}", "not_found")
        self._check_key()
        length = self._content_length()
        body = self._read(length)
        fields, files = parse_form(self.headers.get("Content-Type", ""), body, self.server.max_bytes)
        if "file" not in files:
            raise HTTPError(400, "missing form field 'file'. Fix: send the audio as multipart field 'file'", "missing_file")
        response_format = fields.get("response_format") or "json"
        if response_format not in RESPONSE_FORMATS:
            raise HTTPError(400, f"response_format={response_format!r} is not supported. Fix: use one of "
                            f"{', '.join(RESPONSE_FORMATS)}", "invalid_response_format")
        language = (fields.get("language") or "").strip().lower() or None
        if language and language not in self.server.backend.languages:
            raise HTTPError(400, f"language={language!r} is not supported by this model. Fix: omit it or use one of "
                            f"{', '.join(sorted(self.server.backend.languages))}", "invalid_language")
        audio = decode_upload(files["file"])  # outside the lock: decoding runs in parallel
        with self.server.model_lock:
            text, segments = self.server.backend.transcribe(audio, language, fields.get("prompt"))
        if response_format == "text":
            self._send(200, (text + "\n").encode("utf-8"), "text/plain; charset=utf-8")
        elif response_format == "verbose_json":
            code = language or "en"
            self._json(200, {"task": "transcribe", "language": _language_name(code), "duration": round(audio.size / SAMPLE_RATE, 3),
                             "text": text, "segments": segments})
        else:
            self._json(200, {"text": text})

    def _check_key(self) -> None:
        key = self.server.api_key
        if not key:
            return
        auth = self.headers.get("Authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise HTTPError(401, "missing or wrong API key. Fix: send 'Authorization: Bearer <key>'",
                            "invalid_api_key", "authentication_error")

    def _content_length(self) -> int:
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise HTTPError(411, "Content-Length is required (chunked uploads are not accepted)", "length_required")
        try:
            length = int(raw)
        except ValueError:
            raise HTTPError(400, f"bad Content-Length {raw!r}", "invalid_content_length") from None
        if length < 0:
            raise HTTPError(400, f"bad Content-Length {raw!r}", "invalid_content_length")
        if length > self.server.max_bytes:
            raise HTTPError(413, f"upload of {length / _MIB:.1f} MiB exceeds the limit of {self.server.max_bytes / _MIB:g} MiB. "
                            "Fix: send a shorter or compressed recording", "file_too_large")
        return length

    def _read(self, length: int) -> bytes:
        chunks, left = [], length
        while left > 0:
            chunk = self.rfile.read(min(left, READ_CHUNK))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            chunks.append(chunk)
            left -= len(chunk)
        self._body_read = True
        return b"".join(chunks)

    def _drain(self) -> None:
        """Discard an unread body after an early answer: closing with unread data makes the
        kernel reset the connection, and the client would lose the response it has not read."""
        if self._body_read:
            return
        try:
            left = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return
        if left > DRAIN_LIMIT_BYTES:
            return
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, READ_CHUNK))
                if not chunk:
                    return
                left -= len(chunk)
        except OSError:
            pass

    def _error(self, e: HTTPError) -> None:
        if e.status >= 500:
            log.error("%s", e.message)
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else {}
        self._json(e.status, {"error": {"message": e.message, "type": e.kind, "code": e.code}}, headers)

    def _json(self, status: int, obj, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json", headers)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError as e:  # the client left before the answer
            log.info("client %s: cannot send response: %s", self.address_string(), e)


def make_server(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
                max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, workers: int = DEFAULT_WORKERS,
                beams: int = DEFAULT_BEAMS) -> TranscriptionServer:
    """Load the model and bind the server (port 0: any free port); call serve_forever() to run it.

    Raises:
        SpeechftError: the model cannot be loaded, or the address cannot be bound.
    """
    if max_upload_mb <= 0 or workers < 1 or beams < 1:
        raise SpeechftError(f"max_upload_mb={max_upload_mb}, workers={workers} and beams={beams} must be positive")
    backend = load_backend(model_dir, beams)
    try:
        return TranscriptionServer((host, port), backend, api_key, max_upload_mb, workers, Path(str(model_dir)).name)
    except OSError as e:
        raise SpeechftError(f"cannot listen on {host}:{port}: {e}. Fix: choose another --port or stop the other server") from e


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, workers: int = DEFAULT_WORKERS, beams: int = DEFAULT_BEAMS) -> None:
    """Serve `model_dir` (a CT2 export or an HF Whisper folder) until interrupted.

    Raises:
        SpeechftError: the model cannot be loaded, or the address cannot be bound.
    """
    server = make_server(model_dir, host, port, api_key, max_upload_mb, workers, beams)
    if not api_key and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s without an API key: anyone who can reach it can use it (set --api-key)", host)
    print(f"serving {model_dir} ({server.backend.kind}) at {server.url}{TRANSCRIPTIONS_PATH}; health: {server.url}{HEALTH_PATH}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
