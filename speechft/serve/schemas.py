"""Shapes of the API for `/docs` and `/openapi.json`: the transcription form, its answers
and the error body. The routes parse the form themselves (to answer with OpenAI's error
codes and to stream the upload under a size limit), so the form is declared here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Transcription(BaseModel):
    text: str


class VerboseTranscription(BaseModel):
    task: str
    language: str
    duration: float
    text: str
    segments: list[dict[str, Any]]
    words: list[dict[str, Any]] | None = None
    decoding: dict[str, Any]


class ModelCard(BaseModel):
    id: str
    object: str
    owned_by: str


class ModelList(BaseModel):
    object: str
    data: list[ModelCard]


class Health(BaseModel):
    status: str
    backend: str
    model: str
    beam_size: int
    decoding: dict[str, Any]
    pending: int
    max_pending: int


TRANSCRIPTION_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "WAV, FLAC, OGG, MP3, M4A, WebM, ..."},
        "model": {"type": "string", "description": "any value when one model is served; with --adapter, the adapter to use"},
        "language": {"type": "string", "description": "ISO-639-1 code (en for English-only models)"},
        "prompt": {"type": "string", "description": "replaces the served (shipped) prompt for this request"},
        "response_format": {"type": "string", "enum": ["json", "text", "verbose_json"], "default": "json"},
        "temperature": {"type": "number", "description": "accepted and ignored (the guards' fallback decides)"},
        "timestamp_granularities[]": {"type": "array", "items": {"type": "string", "enum": ["word", "segment"]},
                                      "description": "verbose_json only; word needs the CT2 backend"},
    },
}}}}}

_ERROR = {"model": ErrorResponse}
TRANSCRIPTION_RESPONSES = {
    200: {"description": "json: {text}; text: plain text; verbose_json: language, duration, segments, decoding",
          "content": {"application/json": {"schema": {"anyOf": [Transcription.model_json_schema(),
                                                                VerboseTranscription.model_json_schema()]}},
                      "text/plain": {"schema": {"type": "string"}}}},
    400: {**_ERROR, "description": "bad form, audio, response_format, language or granularity"},
    401: {**_ERROR, "description": "missing or wrong API key"},
    413: {**_ERROR, "description": "upload above --max-upload-mb"},
    503: {**_ERROR, "description": "too many requests waiting; retry after Retry-After seconds"},
}
