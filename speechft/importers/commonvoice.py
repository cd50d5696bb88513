"""Common Voice release folders: `train.tsv`, `dev.tsv`, `test.tsv`, `validated.tsv`, ... + `clips/*.mp3`.

Each TSV is a split (`--split validated` picks another one). Columns as Common Voice writes
them: `path` (the clip's name in clips/), `sentence`, `client_id` (the speaker). Clips are
MP3: decoded with soundfile (libsndfile >= 1.1) or ffmpeg.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Iterator

from ..errors import SpeechftError
from .refs import FileAudio
from .rows import Columns, Row, pick_column

DEFAULT_SPLITS = ("train", "dev", "test")  # the release's own split; else validated.tsv (everything voted valid)
CLIPS_DIR = "clips"


def _header(tsv: Path) -> list[str]:
    with open(tsv, encoding="utf-8-sig", newline="") as f:  # a TSV re-saved on Windows starts with a BOM
        return next(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), [])


def _rows(tsv: Path, clips: Path, cols: dict, split: str) -> Iterator[Row]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    # Sentences hold quotes of their own: Common Voice's TSVs are not quoted.
    with open(tsv, encoding="utf-8-sig", newline="") as f:
        for index, rec in enumerate(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)):
            name = (rec.get(cols["audio"]) or "").strip()
            clip = clips / name
            uid = (rec.get(cols["id"]) or "").strip() if cols["id"] else Path(name).stem
            speaker = (rec.get(cols["speaker"]) or "").strip() if cols["speaker"] else ""
            problem = None if name and clip.is_file() else f"clip not found: {clip}"
            yield Row(index, uid or f"{split}-{index:06d}", (rec.get(cols["text"]) or "").strip(), speaker or None,
                      FileAudio(str(clip.resolve())) if problem is None else None, problem)


def read_commonvoice(folder: Path, split: str | None, columns: Columns) -> dict[str, Iterator[Row]]:
    """Rows of the release's splits (train/dev/test when present, else validated), or of `split`.

    Raises:
        SpeechftError: the split's TSV is missing, or a column is (naming those that exist).
    """
    tsvs = {p.stem: p for p in sorted(folder.glob("*.tsv"))}
    if split is not None:
        if split not in tsvs:
            raise SpeechftError(f"{folder} has no {split}.tsv. Splits: {', '.join(tsvs)}. Fix: --split one of them")
        wanted = [split]
    else:
        wanted = [s for s in DEFAULT_SPLITS if s in tsvs] or (["validated"] if "validated" in tsvs else [])
        if not wanted:
            raise SpeechftError(f"{folder} has none of train.tsv, dev.tsv, test.tsv, validated.tsv. TSVs: "
                                f"{', '.join(tsvs) or 'none'}. Fix: --split the one to import")
    out = {}
    for name in wanted:
        existing, where = _header(tsvs[name]), str(tsvs[name])
        cols = {
            "audio": pick_column(existing, columns.audio, ("path",), "audio", where),
            "text": pick_column(existing, columns.text, ("sentence", "text"), "text", where),
            "speaker": pick_column(existing, columns.speaker, ("client_id",), "speaker", where, required=False),
            "id": pick_column(existing, columns.id, (), "id", where, required=False),
        }
        out[name] = _rows(tsvs[name], folder / CLIPS_DIR, cols, name)
    return out
