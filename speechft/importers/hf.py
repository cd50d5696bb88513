"""Sources read through Hugging Face `datasets`: save_to_disk folders, audiofolders, Parquet,
Arrow, CSV and JSON Lines tables, and hub ids.

CSV cells are read as written (no type guessing: speaker "0012" is not speaker 12). A NeMo
manifest's `offset` and `duration` cut the row's stretch from its file.

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
from ..io_utils import visible_files
from .detect import hub_offline, local_forms
from .refs import BytesAudio, FileAudio
from .rows import AUDIO_NAMES, ID_NAMES, SPEAKER_NAMES, TEXT_NAMES, Columns, Row, pick_column

BUILDERS = {"parquet": "parquet", "arrow": "arrow", "csv": "csv", "json": "json", "audiofolder": "audiofolder"}
SPLIT_NAMES = ("train", "dev", "validation", "valid", "test")  # folder and table names that name a split
TABLE_FILES = {"csv": (".csv", ".tsv"), "json": (".jsonl", ".json")}  # what a folder of tables is read from


def _refuse_empty_saved(path: Path, source: str) -> None:
    """datasets saves a split without rows as no data file, and then cannot load it: say so instead."""
    import json

    splits = json.loads((path / "dataset_dict.json").read_text("utf-8")).get("splits", []) if (path / "dataset_dict.json").is_file() else [None]
    for split in splits:
        state = (path / split if split else path) / "state.json"
        if state.is_file() and not json.loads(state.read_text("utf-8")).get("_data_files"):
            raise SpeechftError(f"{source}: nothing to import from split {split or 'train'!r}: it has no rows. "
                                "Fix: check the source (or import another split with --split)")


def _table_splits(files: list[Path]) -> dict[str, list[str]]:
    """Table files by split: train.csv, test.csv ... name their splits; other names are one train split."""
    if files and all(f.stem.lower() in SPLIT_NAMES for f in files):
        by_split: dict[str, list[str]] = {}
        for f in files:
            by_split.setdefault(f.stem.lower(), []).append(str(f))
        return by_split
    return {"train": [str(f) for f in files]}


def _csv_header(path: Path, delimiter: str) -> list[str]:
    import csv

    with open(path, encoding="utf-8-sig", newline="") as f:
        return next(csv.reader(f, delimiter=delimiter), [])


def _string_features(tables: list[Path], delimiter: str, audio: bool = False):
    """Features that read every CSV column as text ("0012" stays a speaker, "007" a transcript),
    or None when the tables' headers differ (datasets then guesses)."""
    from datasets import Audio, Features, Value

    headers = {tuple(_csv_header(t, delimiter)) for t in tables}
    if len(headers) != 1:
        return None
    names = [n for n in next(iter(headers)) if n and not (audio and n.endswith("file_name"))]
    return Features({**({"audio": Audio()} if audio else {}), **{n: Value("string") for n in names}})


def _audiofolder_kwargs(path: Path, source: str, exclude: Path | None) -> dict:
    """Explicit files per split: metadata beside the audio is one train split; metadata in
    subfolders (train/, test/) makes a split of each. datasets' own guess would split by words in
    file names ("my_test_clip.wav") and read an --out folder inside the source back in."""
    from .detect import AUDIO_SUFFIXES, METADATA_FILES

    files = visible_files(path, exclude)
    metadata = [f for f in files if f.name in METADATA_FILES]
    if not metadata:
        raise SpeechftError(f"{source} has audio files but no metadata.csv or metadata.jsonl, so no transcripts. "
                            "Fix: add metadata.csv with a file_name and a text column (one row per audio file)")
    top = [f for f in metadata if f.parent == path]
    groups = {"train": path} if top else dict(_split_folder(f.parent, path) for f in metadata)
    data_files = {}
    for split, folder in groups.items():
        data_files[split] = [str(f) for f in files if f.is_relative_to(folder)
                             and (f.suffix.lower() in AUDIO_SUFFIXES or f.name in METADATA_FILES)]
    csvs = [f for f in metadata if f.suffix == ".csv"]
    features = _string_features(csvs, ",", audio=True) if csvs and len(csvs) == len(metadata) else None
    return {"data_files": data_files, **({"features": features} if features is not None else {})}


def _split_folder(folder: Path, root: Path) -> tuple[str, Path]:
    """(split name, its folder) for metadata in `folder`: a folder named like a split (data/train/)
    names it, else the top folder under `root` it sits in."""
    if folder.name.lower() in SPLIT_NAMES:
        return folder.name, folder
    top = folder.relative_to(root).parts[0]
    return top, root / top


def _open(source: str, fmt: str, exclude: Path | None = None) -> dict:
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
        if fmt == "audiofolder" and path.is_dir():
            kwargs = _audiofolder_kwargs(path, source, exclude)
        elif fmt in TABLE_FILES and path.is_dir():  # only the tables: a folder holds their audio too
            tables = [f for f in visible_files(path, exclude) if f.suffix.lower() in TABLE_FILES[fmt]]
            kwargs = {"data_files": _table_splits(tables)}
        else:
            kwargs = {"data_dir": str(path)} if path.is_dir() else {"data_files": str(path)}
            tables = [path]
        if fmt == "csv":
            delimiter = "\t" if all(t.suffix.lower() == ".tsv" for t in tables) else ","
            features = _string_features(tables, delimiter)
            # Every cell as written: no type guessing, and "NA", "None", "null" are text, not missing.
            kwargs.update(delimiter=delimiter, keep_default_na=False, **({"features": features} if features else {}))
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


def _seconds(value) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _rows(ds, cols: dict, base: Path, split: str) -> Iterator[Row]:
    for index, ex in enumerate(ds):
        audio, problem = _audio_ref(ex.get(cols["audio"]), base)
        if isinstance(audio, FileAudio) and not os.path.isfile(audio.path):
            audio, problem = None, f"audio file not found: {audio.path}"
        offset = _seconds(ex.get("offset"))
        if isinstance(audio, FileAudio) and offset is not None:  # NeMo: this row is a stretch of the file
            duration = _seconds(ex.get("duration"))
            audio = FileAudio(audio.path, offset, offset + duration if duration else None)
        uid = ex.get(cols["id"]) if cols["id"] else _stem(audio)
        speaker = ex.get(cols["speaker"]) if cols["speaker"] else None
        text = ex.get(cols["text"])
        yield Row(index, str(uid) if uid not in (None, "") else f"{split}-{index:06d}",
                  "" if text is None else str(text).strip(),
                  None if speaker in (None, "") else str(speaker), audio, problem)


def read_hf(source: str, fmt: str, split: str | None, columns: Columns,
            exclude: Path | None = None) -> dict[str, Iterator[Row]]:
    """Rows of every split (or of `split`) of a source that `datasets` reads (files under
    `exclude`, the import's output folder, are not read).

    Raises:
        SpeechftError: the source cannot be read, the split does not exist, or a column is
            missing (naming the columns that exist); nothing has been written.
    """
    from datasets import Audio

    splits = _open(source, fmt, exclude)
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
