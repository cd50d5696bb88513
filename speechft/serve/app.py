"""The FastAPI application: `POST /v1/audio/transcriptions`, `GET /v1/models`, `GET /health`,
and FastAPI's `/docs` and `/openapi.json`.

Concurrency: the event loop only reads bodies and writes answers. Audio decoding runs in
worker threads (`upload_workers` at a time, so uploads are decoded while the model runs);
the model runs in one worker thread at a time (a capacity limiter of 1), because its own
intra-op threads already use every core. Requests wait for the model in the event loop, not
in a thread, and beyond `max_pending` of them the server answers 503 at once.
"""

from __future__ import annotations

import hmac
import logging
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import UploadFile

from ..audio import SAMPLE_RATE
from . import schemas
from .backends import TranscriptionRequest
from .errors import APIError, install_error_handlers, overloaded, unauthorized
from .form import check_content_type, check_declared_length, drain, read_form
from .models import ServedModels
from .upload import decode_upload

log = logging.getLogger(__name__)

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
MODELS_PATH = "/v1/models"
HEALTH_PATH = "/health"
RESPONSE_FORMATS = ("json", "text", "verbose_json")
GRANULARITIES = ("word", "segment")
GRANULARITY_FIELDS = ("timestamp_granularities[]", "timestamp_granularities")  # the SDK sends the first
DEFAULT_MAX_UPLOAD_MB = 25  # MiB, OpenAI's own limit for this endpoint
DEFAULT_UPLOAD_WORKERS = 4  # uploads decoded at once, while the model runs one request
MAX_PENDING = 256  # transcription requests admitted at once; beyond: 503 with Retry-After


@dataclass(frozen=True)
class ServerSettings:
    """What the app needs besides the backend."""

    model_name: str
    api_key: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    upload_workers: int = DEFAULT_UPLOAD_WORKERS
    max_pending: int = MAX_PENDING


@dataclass(frozen=True)
class TranscriptionForm:
    """The checked fields of one transcription request."""

    upload: UploadFile
    response_format: str
    language: str | None
    request: TranscriptionRequest


class _Admission:
    """Counts transcription requests in progress (one event loop: no lock needed)."""

    def __init__(self, limit: int):
        self.limit, self.pending = limit, 0

    @contextmanager
    def admit(self):
        if self.pending >= self.limit:
            raise overloaded()
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1


def create_app(models: ServedModels, settings: ServerSettings) -> FastAPI:
    """The app serving `models` (a base model and named adapters) with `settings`."""
    backend = models.default_backend  # /health describes the default model
    admission = _Admission(settings.max_pending)
    limiters: dict[str, anyio.CapacityLimiter] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Limiters belong to the running event loop, so they are made when it starts.
        limiters["model"] = anyio.CapacityLimiter(1)
        limiters["upload"] = anyio.CapacityLimiter(settings.upload_workers)
        yield

    app = FastAPI(title="speechft transcription server", version="1", lifespan=lifespan,
                  description="OpenAI-compatible speech-to-text for a speechft model (Whisper).")
    install_error_handlers(app)
    bearer = HTTPBearer(auto_error=False, description="the key given with --api-key or $SPEECHFT_API_KEY")

    def check_key(credentials: HTTPAuthorizationCredentials | None) -> None:
        if not settings.api_key:
            return
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise unauthorized()

    @app.get(HEALTH_PATH, response_model=schemas.Health, tags=["server"])
    async def health() -> dict:
        """Liveness and the decoding served (no key: load balancers probe it)."""
        served = backend.served
        return {"status": "ok", "backend": backend.kind, "model": settings.model_name,
                "beam_size": served.decoding.beams, "decoding": served.to_dict(),
                "pending": admission.pending, "max_pending": settings.max_pending,
                "models": {name: {"backend": b.kind, "source": models.sources.get(name)} for name, b in models.backends.items()}}

    @app.get(MODELS_PATH, response_model=schemas.ModelList, tags=["openai"],
             responses={401: {"model": schemas.ErrorResponse}})
    async def list_models(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
        """The models served: the base and every adapter (pick one with the request's `model` field)."""
        check_key(credentials)
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "speechft"} for name in models.backends]}

    @app.post(TRANSCRIPTIONS_PATH, tags=["openai"], openapi_extra=schemas.TRANSCRIPTION_FORM,
              responses=schemas.TRANSCRIPTION_RESPONSES)
    async def create_transcription(request: Request,
                                   credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Response:
        """Transcribe the uploaded `file` (OpenAI's `audio.transcriptions.create`)."""
        try:
            check_key(credentials)
            with admission.admit():
                return await _transcribe(request)
        except APIError:
            await drain(request)  # answered early: let the client finish sending, then read the answer
            raise

    async def _transcribe(request: Request) -> Response:
        boundary = check_content_type(request)
        check_declared_length(request, settings.max_upload_bytes)
        form = await read_form(request, boundary, settings.max_upload_bytes)
        try:
            name, chosen = models.pick(str(form.get("model") or ""))
            fields = check_fields(form, chosen)
            audio = await anyio.to_thread.run_sync(decode_upload, fields.upload.file, limiter=limiters["upload"])
        finally:
            await form.close()
        result = await anyio.to_thread.run_sync(chosen.transcribe, audio, fields.request, limiter=limiters["model"])
        result.decoding = {**result.decoding, "model": name}
        return _render(result, fields, audio.size / SAMPLE_RATE)

    return app


def check_fields(form, backend) -> TranscriptionForm:
    """Check the form's fields against what the backend serves.

    Raises:
        APIError: 400 naming the field, its value and the fix.
    """
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise APIError(400, "missing form field 'file' (a file upload). Fix: send the audio as multipart field 'file'",
                       "missing_file")
    response_format = str(form.get("response_format") or "json")
    if response_format not in RESPONSE_FORMATS:
        raise APIError(400, f"response_format={response_format!r} is not supported. Fix: use one of "
                       f"{', '.join(RESPONSE_FORMATS)}", "invalid_response_format")
    language = str(form.get("language") or "").strip().lower() or None
    if language and language not in backend.languages:
        raise APIError(400, f"language={language!r} is not supported by this model. Fix: omit it or use one of "
                       f"{', '.join(sorted(backend.languages))}", "invalid_language")
    granularities = [str(g) for name in GRANULARITY_FIELDS for g in form.getlist(name)]
    bad = [g for g in granularities if g not in GRANULARITIES]
    if bad:
        raise APIError(400, f"timestamp_granularities {bad} not supported. Fix: use word and/or segment",
                       "invalid_timestamp_granularities")
    # Word timestamps only matter for verbose_json (as in OpenAI's API) and cost an alignment pass.
    words = "word" in granularities and response_format == "verbose_json"
    if words and not backend.supports_words:
        raise APIError(400, "word timestamps need faster-whisper. Fix: serve the CT2 export (speechft export)",
                       "unsupported_timestamp_granularities")
    # `model` picked the backend (ServedModels.pick); `temperature` is accepted and ignored: the
    # model has its own temperature schedule (the guards' fallback).
    prompt = str(form.get("prompt") or "") or None
    return TranscriptionForm(upload, response_format, language, TranscriptionRequest(language, prompt, words))


def _render(result, fields: TranscriptionForm, duration: float) -> Response:
    if fields.response_format == "text":
        return PlainTextResponse(result.text + "\n")
    if fields.response_format == "json":
        return JSONResponse({"text": result.text})
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    code = fields.language or "en"
    body = {"task": "transcribe", "language": LANGUAGES.get(code, code), "duration": round(duration, 3),
            "text": result.text, "segments": result.segments, "decoding": result.decoding}
    if result.words is not None:
        body["words"] = result.words
    return JSONResponse(body)
