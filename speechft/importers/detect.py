"""Which kind of source a path (or hub id) is, told by its files; `--format` forces one."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import SpeechftError

# format -> what it looks like, for messages that list the local forms accepted
FORMATS = {
    "disk": "a Hugging Face `save_to_disk` folder (dataset_info.json + state.json, or dataset_dict.json)",
    "audiofolder": "an `audiofolder`: audio files with metadata.csv or metadata.jsonl (file_name + text columns), "
                   "or split subfolders (train/, test/) of them",
    "parquet": "Parquet file(s), or a folder of them, with an audio column (bytes or paths)",
    "arrow": "Arrow file(s), or a folder of them, with an audio column",
    "csv": "a CSV/TSV table (or a folder of them) whose audio column holds file paths (relative to the table)",
    "json": "a JSON Lines table (a NeMo manifest, say; `offset` + `duration` cut a stretch) whose audio column holds "
            "file paths",
    "commonvoice": "a Common Voice release folder (train.tsv, dev.tsv, test.tsv or validated.tsv + clips/)",
    "kaldi": "a Kaldi data dir (wav.scp, text, optional utt2spk and segments)",
    "hub": "a dataset id on the Hugging Face hub, e.g. org/name (needs the hub)",
}
TABLE_SUFFIXES = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json"}
COMMONVOICE_TSVS = ("train.tsv", "dev.tsv", "test.tsv", "validated.tsv", "other.tsv", "invalidated.tsv")
METADATA_FILES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".aac", ".sph"}
HUB_PROBE_TIMEOUT = 3.0  # s: an unreachable hub must fail in seconds, not after long retries
OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def local_forms() -> str:
    return "\n".join(f"  {name}: {what}" for name, what in FORMATS.items() if name != "hub")


def _folder_format(folder: Path) -> str | None:
    names = {p.name for p in folder.iterdir()}
    if "dataset_dict.json" in names or {"dataset_info.json", "state.json"} <= names:
        return "disk"
    if "wav.scp" in names:
        return "kaldi"
    if (folder / "clips").is_dir() and names & set(COMMONVOICE_TSVS):
        return "commonvoice"
    if names & set(METADATA_FILES):
        return "audiofolder"
    subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if any(p.name in METADATA_FILES for sub in subfolders for p in sub.rglob("*")):  # train/, data/test/ audiofolders
        return "audiofolder"
    releases = [sub for sub in subfolders if (sub / "clips").is_dir() and {p.name for p in sub.iterdir()} & set(COMMONVOICE_TSVS)]
    if releases:
        raise SpeechftError(f"{folder} holds a Common Voice release in {releases[0]}. Fix: import that folder: "
                            f"speechft import {releases[0]} --out ...")
    suffixes = {p.suffix.lower() for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")}
    for suffix in TABLE_SUFFIXES:  # in this order: parquet before a stray csv
        if suffix in suffixes:
            return TABLE_SUFFIXES[suffix]
    if suffixes & AUDIO_SUFFIXES:
        return "audiofolder"
    return None


def detect_format(source: str | Path, forced: str | None = None) -> str:
    """The format of `source`: `forced` when given, else told by its files.

    Raises:
        SpeechftError: an unknown forced format, a path that does not exist, or a folder or
            file of no known form (the message lists the forms accepted).
    """
    if forced is not None:
        if forced not in FORMATS:
            raise SpeechftError(f"--format {forced!r} is unknown. Fix: use one of {', '.join(FORMATS)}")
        return forced
    path = Path(source).expanduser()
    if path.is_dir():
        found = _folder_format(path)
    elif path.is_file():
        found = TABLE_SUFFIXES.get(path.suffix.lower())
    elif looks_like_hub_id(str(source)):
        return "hub"
    else:
        raise SpeechftError(f"dataset source not found: {source}. Fix: give an existing folder or file, or a hub id "
                            f"(org/name). Local forms accepted:\n{local_forms()}")
    if found is None:
        raise SpeechftError(f"{source} is no dataset form speechft knows. Fix: give one of these, or force one with "
                            f"--format:\n{local_forms()}")
    return found


def looks_like_hub_id(name: str) -> bool:
    """"name" or "org/name": what the hub accepts and no relative or absolute path looks like."""
    return bool(name) and not name.startswith((".", "/", "~")) and name.count("/") <= 1 and "\\" not in name


def hub_offline() -> bool:
    """True when the environment says offline or the hub endpoint cannot be reached in a few seconds."""
    if any(str(os.environ.get(flag, "")).upper() in {"1", "ON", "YES", "TRUE"} for flag in OFFLINE_FLAGS):
        return True
    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    reached: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((url.hostname, url.port or 443), timeout=HUB_PROBE_TIMEOUT):
                reached.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)  # a thread: DNS look-ups ignore the socket timeout
    thread.start()
    thread.join(HUB_PROBE_TIMEOUT)
    return not reached
