"""Sources read through Hugging Face `datasets`: save_to_disk folders, audiofolders, Parquet,
Arrow, CSV and JSON Lines tables, and hub ids.

Folders and tables are streamed (`streaming=True`): nothing is copied into datasets' cache.
The audio column is read undecoded (`Audio(decode=False)`), so a row whose audio cannot be
decoded still has its id and text for the report; embedded bytes are then decoded through
datasets' Audio feature, and file paths with soundfile (ffmpeg for MP3 and the like).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from ..errors import SpeechftError
from .detect import hub_offline, local_forms
from .refs import BytesAudio, FileAudio
from .rows import AUDIO_NAMES, ID_NAMES, SPEAKER_NAMES, TEXT_NAMES, Columns, Row, pick_column

BUILDERS = {"parquet": "parquet", "arrow": "arrow", "csv": "csv", "json": "json", "audiofolder": "audiofolder"}


def _refuse_empty_saved(path: Path, source: str) -> None:
    """datasets saves a split without rows as no data file, and then cannot load it: say so instead."""
    import json

    splits = json.loads((path / "dataset_dict.json").read_text("utf-8")).get("splits", []) if (path / "dataset_dict.json").is_file() else [None]
    for split in splits:
        state = (path / split if split else path) / "state.json"
        if state.is_file() and not json.loads(state.read_text("utf-8")).get("_data_files"):
            raise SpeechftError(f"{source}: nothing to import from split {split or 'train'!r}: it has no rows. "
                                "Fix: check the source (or import another split with --split)")


def _open(source: str, fmt: str) -> dict:
    """{split: Dataset or IterableDataset} of the source."""
    import datasets

    datasets.disable_progress_bars()  # one line per import is printed by the caller
    path = Path(source).expanduser()
    try:
        if fmt == "disk":
            _refuse_empty_saved(path, source)
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.Dataset):
                return {str(loaded.split) if loaded.split else "train": loaded}
            return dict(loaded)
        if fmt == "hub":
            if hub_offline():
                raise SpeechftError(f"{source} is not a local folder or file, and the dataset hub cannot be reached "
                                    f"(offline). Fix: give a local copy in one of these forms:\n{local_forms()}")
            return dict(datasets.load_dataset(source, streaming=True))
        kwargs = {"data_dir": str(path)} if path.is_dir() else {"data_files": str(path)}
        if fmt == "csv" and path.suffix.lower() == ".tsv":
            kwargs["delimiter"] = "\t"
        return dict(datasets.load_dataset(BUILDERS[fmt], streaming=True, **kwargs))
    except SpeechftError:
        raise
    except Exception as e:  # datasets raises many types for unreadable folders and files
        raise SpeechftError(f"cannot read {source} as {fmt}: {type(e).__name__}: {e}. Fix: check the folder, or force "
                            "the right form with --format") from e


def _column_names(ds) -> list[str]:
    names = ds.column_names
    if names is None:  # streamed CSV/JSON: the columns are known once a row is read
        first = next(iter(ds), None)
        names = list(first) if first is not None else []
    return list(names)


def _resolve(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    if not p.is_absolute() and (base / p).exists():
        p = base / p
    return str(p.resolve())


def _audio_ref(value, base: Path):
    if isinstance(value, dict):
        if value.get("bytes"):
            return BytesAudio(bytes(value["bytes"]), value.get("path")), None
        if value.get("path"):
            return FileAudio(_resolve(value["path"], base)), None
        return None, "the audio value has neither bytes nor a path"
    if isinstance(value, str) and value:
        return FileAudio(_resolve(value, base)), None
    return None, f"no audio ({type(value).__name__} value)"


def _stem(audio) -> str | None:
    """Without an id column, a row is named after its audio file (duplicates get the row number)."""
    name = audio.path if isinstance(audio, FileAudio) else getattr(audio, "name", None)
    return Path(name).stem if name else None


def _rows(ds, cols: dict, base: Path, split: str) -> Iterator[Row]:
    for index, ex in enumerate(ds):
        audio, problem = _audio_ref(ex.get(cols["audio"]), base)
        if isinstance(audio, FileAudio) and not os.path.isfile(audio.path):
            audio, problem = None, f"audio file not found: {audio.path}"
        uid = ex.get(cols["id"]) if cols["id"] else _stem(audio)
        speaker = ex.get(cols["speaker"]) if cols["speaker"] else None
        text = ex.get(cols["text"])
        yield Row(index, str(uid) if uid not in (None, "") else f"{split}-{index:06d}",
                  "" if text is None else str(text).strip(),
                  None if speaker in (None, "") else str(speaker), audio, problem)


def read_hf(source: str, fmt: str, split: str | None, columns: Columns) -> dict[str, Iterator[Row]]:
    """Rows of every split (or of `split`) of a source that `datasets` reads.

    Raises:
        SpeechftError: the source cannot be read, the split does not exist, or a column is
            missing (naming the columns that exist); nothing has been written.
    """
    from datasets import Audio

    splits = _open(source, fmt)
    if split is not None:
        if split not in splits:
            raise SpeechftError(f"{source} has no split {split!r}. Splits: {', '.join(splits)}. Fix: --split one of them")
        splits = {split: splits[split]}
    path = Path(source).expanduser()
    base = path if path.is_dir() else path.parent
    out = {}
    for name, ds in splits.items():
        existing = _column_names(ds)
        where = f"{source} ({name})"
        cols = {
            "audio": pick_column(existing, columns.audio, AUDIO_NAMES, "audio", where),
            "text": pick_column(existing, columns.text, TEXT_NAMES, "text", where),
            "speaker": pick_column(existing, columns.speaker, SPEAKER_NAMES, "speaker", where, required=False),
            "id": pick_column(existing, columns.id, ID_NAMES, "id", where, required=False),
        }
        features = ds.features or {}
        if isinstance(features.get(cols["audio"]), Audio):
            ds = ds.cast_column(cols["audio"], Audio(decode=False))  # bytes/path: decoded row by row, failures kept
        out[name] = _rows(ds, cols, base, name)
    return out
