"""Running the app: uvicorn on a socket bound here, in the foreground (`speechft serve`) or
in a background thread (tests, benchmarks).

The socket is bound before uvicorn starts, so a busy port is a SpeechftError naming the fix
(uvicorn itself would log and exit the process) and port 0 gives a free port at once.
Shutdown is uvicorn's graceful one: stop accepting, finish the requests in flight, exit.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import uvicorn

from ..errors import SpeechftError
from .app import (DEFAULT_MAX_UPLOAD_MB, DEFAULT_UPLOAD_WORKERS, HEALTH_PATH, MAX_PENDING, TRANSCRIPTIONS_PATH,
                  ServerSettings, create_app)
from .models import load_models
from .decoding import served_decoding

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 2048  # uvicorn's default: a burst of connections is queued, not refused
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this long
START_TIMEOUT_S = 30.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_MIB = 1024 * 1024


class TranscriptionServer:
    """A bound, not yet running server. `start()`/`stop()` run it in a thread, `run()` in the
    foreground until SIGINT/SIGTERM; `with server.start():` stops it on exit."""

    def __init__(self, app, sock: socket.socket, models, model_dir: str):
        self.app, self.models, self.model_dir = app, models, model_dir
        self.backend = models.default_backend  # the base model's backend
        self._socket = sock
        host, port = sock.getsockname()[:2]  # the real port when 0 was asked for
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._thread: threading.Thread | None = None
        config = uvicorn.Config(app, log_config=None, access_log=True, lifespan="on", backlog=LISTEN_BACKLOG,
                                timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=None)
        self.uvicorn = uvicorn.Server(config)

    def run(self) -> None:
        """Serve in this thread until interrupted; requests in flight are finished first."""
        self.uvicorn.run(sockets=[self._socket])

    def start(self) -> "TranscriptionServer":
        """Serve from a background thread; returns once the server accepts connections.

        Raises:
            SpeechftError: uvicorn did not start.
        """
        self._thread = threading.Thread(target=self.run, name="speechft-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise SpeechftError(f"the server for {self.model_dir} did not start. Fix: see the log above")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop accepting, let the requests in flight finish, and wait for the thread."""
        self.uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> "TranscriptionServer":
        return self if self.uvicorn.started else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        return socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG)
    except OSError as e:
        raise SpeechftError(f"cannot listen on {host}:{port}: {e}. Fix: choose another --port or stop the other server") from e


def make_server(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
                max_upload_mb: float | None = None, workers: int | None = None, beams: int | None = None,
                prompt: str | None = None, decoding: dict | None = None,
                max_pending: int = MAX_PENDING, adapters: dict[str, str] | None = None) -> TranscriptionServer:
    """Load the model and bind the server (port 0: any free port); `start()` or `run()` it.

    Args:
        model_dir: a CT2 export (faster-whisper, the fast path), an HF Whisper folder or an alias.
        max_upload_mb: body limit in MiB (default 25); larger uploads get 413.
        workers: uploads decoded at once (default 4); the model runs one request at a time.
        beams, prompt, decoding: see `decoding.served_decoding` (None: the shipped or default ones).
        max_pending: transcription requests in progress at once; more get 503.
        adapters: name -> a domain's CT2 export or peft adapter folder, picked by the request's
            `model` field (models.py); the base serves requests that name none.

    Raises:
        SpeechftError: a bad setting, the model cannot be loaded, or the address cannot be bound.
    """
    max_upload_mb = DEFAULT_MAX_UPLOAD_MB if max_upload_mb is None else max_upload_mb
    workers = DEFAULT_UPLOAD_WORKERS if workers is None else workers
    if max_upload_mb <= 0 or workers < 1 or max_pending < 1:
        raise SpeechftError(f"max_upload_mb={max_upload_mb}, workers={workers} and max_pending={max_pending} "
                            "must be positive")
    models = load_models(model_dir, adapters or {}, lambda folder: served_decoding(folder, beams, prompt, decoding))
    settings = ServerSettings(model_name=Path(str(model_dir)).name, api_key=api_key or None,
                              max_upload_bytes=int(max_upload_mb * _MIB), upload_workers=workers, max_pending=max_pending)
    return TranscriptionServer(create_app(models, settings), _bind(host, port), models, str(model_dir))


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None, **kwargs) -> None:
    """Serve `model_dir` until SIGINT/SIGTERM (the keyword arguments are `make_server`'s).

    Raises:
        SpeechftError: a bad setting, the model cannot be loaded, or the address cannot be bound.
    """
    server = make_server(model_dir, host, port, api_key, **kwargs)
    if not api_key and host not in LOOPBACK:
        log.warning("listening on %s without an API key: anyone who can reach it can use it (set --api-key)", host)
    served = server.backend.served
    print(f"serving {model_dir} ({server.backend.kind}, beams {served.decoding.beams}, VAD "
          f"{'on' if served.decoding.vad_filter else 'off'}, prompt: {served.prompt_source}) at "
          f"{server.url}{TRANSCRIPTIONS_PATH}; health: {server.url}{HEALTH_PATH}; docs: {server.url}/docs", flush=True)
    for name, backend in server.models.backends.items():
        if name != server.models.default:
            print(f"  model={name}: {server.models.sources[name]} ({backend.kind})", flush=True)
    server.run()
