"""OpenAI-compatible speech-to-text server on FastAPI + uvicorn (`speechft serve`).

- app.py       routes, key check, admission (503), the model lock and upload threads
- form.py      content type, upload size limit, multipart parsing of the body
- upload.py    uploaded audio -> 16 kHz mono float32
- backends.py  CT2 export through faster-whisper (fast path) or HF folder through the adapter
- decoding.py  the decoding served: deployed defaults, the folder's shipped beams/prompt, switches
- schemas.py   the API's shapes for /docs and /openapi.json
- errors.py    `{"error": {"message", "type", "code"}}` for every failure
- server.py    uvicorn on a pre-bound socket: foreground (CLI) or background thread (tests)
"""

from .app import DEFAULT_MAX_UPLOAD_MB, HEALTH_PATH, MAX_PENDING, MODELS_PATH, TRANSCRIPTIONS_PATH, create_app
from .backends import CT2Backend, HFBackend, Transcription, TranscriptionRequest, load_backend
from .decoding import DECODING_SWITCHES, DEFAULT_BEAMS, ServedDecoding, served_decoding
from .server import TranscriptionServer, make_server, serve

__all__ = [
    "CT2Backend", "DECODING_SWITCHES", "DEFAULT_BEAMS", "DEFAULT_MAX_UPLOAD_MB", "HEALTH_PATH", "HFBackend", "MAX_PENDING",
    "MODELS_PATH", "ServedDecoding", "TRANSCRIPTIONS_PATH", "Transcription", "TranscriptionRequest",
    "TranscriptionServer", "create_app", "load_backend", "make_server", "serve", "served_decoding",
]
