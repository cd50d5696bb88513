"""The decoding a model folder ships with: what its report's headline row measured.

A recipe writes `speechft_decoding.json` into `model/` (and `speechft export` copies it into
the exported folder), so `speechft eval`, `speechft transcribe` and `speechft serve` decode a
trained model exactly as the report did unless told otherwise (`--beams`, `--prompt ''`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpeechftError

SHIPPED_FILE = "speechft_decoding.json"


@dataclass(frozen=True)
class ShippedDecoding:
    """Beam width, prompt, front end and encoder precision of the headline row; `note` says where they were chosen."""

    num_beams: int = 1
    prompt: str | None = None
    note: str = ""
    feature_padding: str = "waveform"  # the front end it was trained and measured with (models/whisper.py)
    encoder_precision: str = "fp32"  # the frozen encoder's precision it was trained and measured with (precision.py)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def read_shipped(model_dir: str | Path) -> ShippedDecoding | None:
    """The folder's shipped decoding, or None when it has none (a pretrained model, a hub id).

    Raises:
        SpeechftError: the file exists but is not valid (naming it and the fix).
    """
    path = Path(model_dir) / SHIPPED_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ShippedDecoding(**{k: raw[k] for k in ("num_beams", "prompt", "note", "feature_padding", "encoder_precision") if k in raw})
    except (ValueError, TypeError) as e:
        raise SpeechftError(f"{path} is not a valid shipped-decoding file ({e}). Fix: delete it, or re-run the recipe") from e


def write_shipped(model_dir: str | Path, shipped: ShippedDecoding) -> None:
    """Record the shipped decoding in a model (or export) folder."""
    from ..io_utils import atomic_write_json

    atomic_write_json(Path(model_dir) / SHIPPED_FILE, shipped.to_dict())
