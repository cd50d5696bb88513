"""Kaldi data dirs: `wav.scp`, `text`, optional `utt2spk` and `segments`.

`wav.scp` maps a recording id to a file path or to a shell pipe ending in `|` (`sox x.sph -t
wav - |`, `ffmpeg -i x.mp3 -f wav - |`) that writes WAV to stdout; relative paths and pipes
resolve from the working directory, as in Kaldi recipes (a path found relative to the data
dir is taken too). With `segments`, each utterance is a stretch of its recording; without,
utterance and recording ids are the same. Archive entries (`file.ark:offset`) are not
supported: such rows are listed as skipped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

from ..errors import SpeechftError
from ..io_utils import read_lines
from .refs import FileAudio, PipeAudio
from .rows import Row

KALDI_FIX = "a Kaldi data dir needs wav.scp and text (utt2spk and segments are optional)"


def _table(path: Path, min_fields: int) -> dict[str, list[str]]:
    """{first field: the other fields} of a Kaldi table file, in file order."""
    out, lines = {}, {}
    for n, line in enumerate(read_lines(path, f"Kaldi file {path.name}", KALDI_FIX), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < min_fields:
            raise SpeechftError(f"{path}:{n}: expected at least {min_fields} fields, got {line!r}. Fix: {KALDI_FIX}")
        if parts[0] in out:  # Kaldi's validate_data_dir.sh refuses this too: one of the two would be lost
            raise SpeechftError(f"{path}:{n}: id {parts[0]!r} is also on line {lines[parts[0]]}. Fix: give each line "
                                "its own id (Kaldi tables hold one line per id)")
        out[parts[0]], lines[parts[0]] = parts[1:], n
    return out


def _recording(entry: str, folder: Path):
    """(an AudioRef for a wav.scp value, problem)."""
    if entry.endswith("|"):
        return PipeAudio(entry[:-1].strip()), None
    path = Path(entry)
    if not path.is_absolute() and not path.exists() and (folder / path).exists():
        path = folder / path
    if not path.is_file() and ":" in entry and entry.rsplit(":", 1)[1].isdigit():
        return None, f"archive entry {entry!r} (file.ark:offset) is not supported"
    if not path.is_file():
        return None, f"audio file not found: {entry}"
    return FileAudio(str(path.resolve())), None


def _segment_times(rec: list[str], where: str) -> tuple[str, float, float | None]:
    try:
        start, end = float(rec[1]), float(rec[2])
    except ValueError:
        raise SpeechftError(f"{where}: start and end must be numbers, got {rec[1:3]}") from None
    return rec[0], start, None if end < 0 else end  # Kaldi: end -1 means "to the recording's end"


def _rows(folder: Path, scp: dict, texts: dict, spk: dict, segments: dict | None) -> Iterator[Row]:
    refs: dict[str, tuple] = {}
    for index, (utt, words) in enumerate(texts.items()):
        rec, start, end = segments[utt] if segments is not None and utt in segments else (utt, None, None)
        problem = None
        if segments is not None and utt not in segments:
            problem = "no line in segments"
        elif rec not in scp:
            problem = f"recording {rec!r} has no line in wav.scp"
        if problem:
            yield Row(index, utt, " ".join(words), spk.get(utt), None, problem)
            continue
        if rec not in refs:
            refs[rec] = _recording(scp[rec], folder)
        ref, problem = refs[rec]
        if ref is not None and start is not None:
            ref = dataclasses.replace(ref, start=start, end=end)
        yield Row(index, utt, " ".join(words), spk.get(utt), ref, problem)


def read_kaldi(folder: Path, split: str | None) -> dict[str, Iterator[Row]]:
    """Rows of a Kaldi data dir: one split, named `split` or after the folder (data/train -> train).

    Raises:
        SpeechftError: `text` or `wav.scp` is missing (nothing has been written).
    """
    for name in ("wav.scp", "text"):
        if not (folder / name).is_file():
            raise SpeechftError(f"Kaldi data dir {folder} has no `{name}` file. Fix: {KALDI_FIX}"
                                + ("; `text` holds one `utt-id transcript` line per utterance" if name == "text" else ""))
    # Parsed now, so a malformed file fails before any audio is converted.
    scp = {rec: " ".join(fields) for rec, fields in _table(folder / "wav.scp", 2).items()}
    texts = _table(folder / "text", 1)
    spk = {utt: f[0] for utt, f in _table(folder / "utt2spk", 2).items()} if (folder / "utt2spk").is_file() else {}
    segments = None
    if (folder / "segments").is_file():
        segments = {utt: _segment_times(f, f"{folder / 'segments'} ({utt})") for utt, f in _table(folder / "segments", 4).items()}
    return {split or folder.name: _rows(folder, scp, texts, spk, segments)}
