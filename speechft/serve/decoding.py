"""What the server decodes with, and why: faster-whisper's deployed defaults, the model
folder's shipped beams and prompt, then the command line's switches.

Order of precedence (later wins): `DeployedDecoding()` defaults (beam 5, Silero VAD, the
hallucination guards, previous-text conditioning), the folder's `speechft_decoding.json`
(the beams and prompt its report measured), `--beams` / `--prompt` / the guard switches,
and per request only the `prompt` and `language` fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpeechftError
from ..models.ct2.runtime import DeployedDecoding
from ..models.shipped import SHIPPED_FILE, read_shipped

DEFAULT_BEAMS = DeployedDecoding.beams
# DeployedDecoding fields the command line may change; language and prompt come per request.
DECODING_SWITCHES = ("vad_filter", "no_speech_threshold", "log_prob_threshold", "compression_ratio_threshold",
                     "silence_no_speech_prob", "temperature_fallback", "condition_on_previous_text",
                     "clip_timestamp_tokens")
PROMPT_SHIPPED, PROMPT_SERVER, PROMPT_REQUEST, PROMPT_NONE = "shipped", "server", "request", "none"


@dataclass(frozen=True)
class ServedDecoding:
    """The decoding every request starts from, and where its prompt came from."""

    decoding: DeployedDecoding
    prompt_source: str  # shipped (speechft_decoding.json) | server (--prompt) | none
    shipped_file: str | None = None  # the speechft_decoding.json read, if any

    def for_request(self, prompt: str | None, language: str | None, words: bool) -> tuple[DeployedDecoding, str]:
        """The decoding of one request: its own prompt replaces the served one."""
        source = PROMPT_REQUEST if prompt else self.prompt_source
        decoding = self.decoding.replace(prompt=prompt or self.decoding.prompt, language=language, word_timestamps=words)
        return decoding, source if decoding.prompt else PROMPT_NONE

    def to_dict(self) -> dict:
        return {**self.decoding.to_dict(), "prompt_source": self.prompt_source, "shipped_file": self.shipped_file}


def served_decoding(model_dir: str | Path, beams: int | None = None, prompt: str | None = None,
                    switches: dict | None = None) -> ServedDecoding:
    """Resolve the decoding to serve `model_dir` with.

    Args:
        beams: beam width; None: the shipped one, else faster-whisper's default (5).
        prompt: initial prompt; None: the shipped one; "": none.
        switches: DECODING_SWITCHES values to change (a threshold of None turns that guard off).

    Raises:
        SpeechftError: an unknown switch, a bad value, or an unreadable shipped file.
    """
    switches = dict(switches or {})
    unknown = sorted(set(switches) - set(DECODING_SWITCHES))
    if unknown:
        raise SpeechftError(f"unknown decoding switch(es) {', '.join(unknown)}. Fix: use {', '.join(DECODING_SWITCHES)}")
    folder = Path(str(model_dir))
    shipped = read_shipped(folder) if folder.is_dir() else None
    if beams is None:
        beams = shipped.num_beams if shipped else DEFAULT_BEAMS
    if beams < 1:
        raise SpeechftError(f"beams={beams}: use 1 (greedy) or more (beam search)")
    if prompt is not None:
        source = PROMPT_SERVER if prompt else PROMPT_NONE
    else:
        prompt = shipped.prompt if shipped else None
        source = PROMPT_SHIPPED if prompt else PROMPT_NONE
    decoding = dataclasses.replace(DeployedDecoding(), beams=beams, prompt=prompt or None, **switches)
    return ServedDecoding(decoding, source, str(folder / SHIPPED_FILE) if shipped else None)
