"""hibari-tts: a small neural (Kokoro-style) engine, 24 kHz, one voice bundled in the wheel."""

from __future__ import annotations

import threading

from .base import Engine


class HibariEngine(Engine):
    name, install, module = "hibari", "pip install hibari-tts==0.2.1", "hibari"

    def __init__(self):
        # One model per thread and voice: its G2P keeps Python state that threads must not share.
        self._local = threading.local()

    def voices(self):
        from hibari.voices import VOICES, voice_path

        def present(name):  # other voices download from a hub, which may be unreachable
            try:
                return bool(voice_path(name, download_missing=False))
            except (FileNotFoundError, ValueError):
                return False

        return [v for v in VOICES if present(v)]

    def speak(self, text, voice, speed, seed):
        models = self._local.__dict__.setdefault("models", {})
        if voice not in models:
            from hibari import Hibari

            models[voice] = Hibari(voice=voice, threads=1)
        return models[voice](text, speed=speed, seed=seed), models[voice].sample_rate
