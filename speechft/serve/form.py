"""The request body: content type, size limit and multipart form, read without holding it all.

The limit is decided from Content-Length before a byte is read, and again from the bytes
actually streamed (chunked uploads, or a Content-Length that lies). Parts go through
starlette's multipart parser, which spools file parts above 1 MiB to disk, so a burst of
large uploads costs disk, not memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from .errors import APIError

_MIB = 1024 * 1024
DRAIN_LIMIT_BYTES = 64 * _MIB  # read and discard at most this much of a body we answer early
MAX_FORM_FIELDS = 32  # the endpoint has 7 fields; more is not a transcription request
MAX_FORM_FILES = 4
TAIL_BYTES = 1024  # where the closing boundary must be (clients send no epilogue)


def check_content_type(request: Request) -> bytes:
    """The multipart boundary.

    Raises:
        APIError: 400 invalid_content_type when the body is not multipart/form-data with a boundary.
    """
    from python_multipart.multipart import parse_options_header

    content_type = request.headers.get("content-type", "")
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise APIError(400, f"Content-Type must be multipart/form-data with a boundary, got {content_type!r}. "
                       "Fix: send the audio as a form field named 'file'", "invalid_content_type")
    return params[b"boundary"]


def too_large(size: int, max_bytes: int) -> APIError:
    return APIError(413, f"upload of {size / _MIB:.2f} MiB or more exceeds the limit of {max_bytes / _MIB:g} MiB. "
                    "Fix: send a shorter or compressed recording, or raise --max-upload-mb", "file_too_large")


def check_declared_length(request: Request, max_bytes: int) -> None:
    """Refuse a body whose Content-Length is over the limit before reading any of it.

    Raises:
        APIError: 413 file_too_large.
    """
    declared = request.headers.get("content-length")
    # uvicorn has already refused a Content-Length that is not a number.
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(int(declared), max_bytes)


async def read_form(request: Request, boundary: bytes, max_bytes: int) -> FormData:
    """Parse the multipart body, counting bytes as they arrive. The caller closes the form.

    Raises:
        APIError: 413 past the limit; 400 invalid_form for a malformed or truncated body.
        ClientDisconnect: the client went away mid-upload.
    """
    tail = bytearray()

    async def limited() -> AsyncIterator[bytes]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise too_large(size, max_bytes)
            tail.extend(chunk)
            del tail[:-TAIL_BYTES]
            yield chunk

    parser = MultiPartParser(request.headers, limited(), max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise APIError(400, f"malformed multipart body: {e.message}. Fix: send a multipart/form-data form",
                       "invalid_form") from e
    # The parser accepts a body cut short and returns the parts it saw: a truncated upload
    # would then look like a request without a file. The closing delimiter tells them apart.
    if b"--" + boundary + b"--" not in tail:
        await form.close()
        raise APIError(400, "the multipart body ends before its closing boundary (a truncated upload). "
                       "Fix: send the whole form", "invalid_form")
    return form


async def drain(request: Request) -> None:
    """Read and discard what is left of a body answered early (a bounded amount).

    Closing a connection with unread data makes the kernel reset it, and a client still
    sending (urllib, curl) would lose the answer it has not read yet.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_LIMIT_BYTES:
        return  # not worth reading: the client will see the connection close
    left = DRAIN_LIMIT_BYTES
    try:
        async for chunk in request.stream():
            left -= len(chunk)
            if left < 0:
                return
    except (RuntimeError, ClientDisconnect):  # RuntimeError: the body was already read
        return
