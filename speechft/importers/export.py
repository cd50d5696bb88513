"""`speechft export-dataset`: a manifest and its audio as a Hugging Face dataset (`save_to_disk`)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SpeechftError
from ..io_utils import replace_dir
from ..manifest import read_manifest


def _seconds(path: str) -> float:
    import soundfile as sf

    info = sf.info(path)
    return round(info.frames / info.samplerate, 4)


def export_dataset(manifest: str | Path, out: str | Path) -> Path:
    """Write `manifest` as a dataset with an `Audio` column (the files' bytes embedded), `text`,
    `duration`, `id` and, when any line has one, `speaker`; `datasets.load_from_disk(out)` reads it.

    Returns:
        The output folder (written under a temporary name, then moved into place).

    Raises:
        SpeechftError: the manifest is missing, malformed or empty, or audio files are missing.
    """
    import datasets
    from datasets import Audio, Dataset, Features, Value

    utts = read_manifest(manifest)
    if not utts:
        raise SpeechftError(f"{manifest} has no utterance to export. Fix: check the manifest")
    missing = [u.id for u in utts if not os.path.isfile(u.audio_filepath)]
    if missing:
        raise SpeechftError(f"{manifest}: {len(missing)} audio file(s) not found (ids {', '.join(missing[:5])}). "
                            f"Fix: check the paths with `speechft validate {manifest}`")
    columns = {"audio": [u.audio_filepath for u in utts], "text": [u.text for u in utts],
               "duration": [u.duration if u.duration is not None else _seconds(u.audio_filepath) for u in utts],
               "id": [u.id for u in utts]}
    features = {"audio": Audio(), "text": Value("string"), "duration": Value("float64"), "id": Value("string")}
    if any(u.speaker for u in utts):
        columns["speaker"], features["speaker"] = [u.speaker for u in utts], Value("string")
    datasets.disable_progress_bars()
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        # save_to_disk embeds the files' bytes: the dataset does not depend on the manifest's folder.
        Dataset.from_dict(columns, features=Features(features)).save_to_disk(str(tmp))
        replace_dir(tmp, out)
    except OSError as e:
        raise SpeechftError(f"cannot write {out}: {e}. Nothing was half-written. Fix: check the disk and permissions") from e
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return out
