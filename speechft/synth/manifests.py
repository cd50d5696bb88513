"""Manifests of synthesised speech, and `speechft synth` (a sentence file -> audio + manifest)."""

from __future__ import annotations

from pathlib import Path

from ..errors import SpeechftError
from ..io_utils import atomic_path
from ..manifest import Utterance, read_manifest, write_manifest
from .batch import synth_sentences
from .voices import Voice, read_sentences


def write_manifest_if_changed(path: Path, utts: list[Utterance]) -> bool:
    """Write a manifest (paths relative to its folder) unless it already holds exactly `utts`.

    Returns True when the file was (re)written; an unchanged file keeps its bytes and mtime.
    """
    path = Path(path)
    if path.is_file():
        try:
            if read_manifest(path) == utts:
                return False
        except SpeechftError:
            pass  # unreadable: rewrite it
    with atomic_path(path) as tmp:
        write_manifest(tmp, utts, relative_to=path.parent.resolve())
    return True


def synth_main(text_file: str | Path, out_dir: str | Path, voices: list[str], seed: int = 0,
               jobs: int | None = None) -> Path:
    """`speechft synth`: every sentence of `text_file` spoken by every voice.

    Writes `out_dir/audio/*.wav` and `out_dir/manifest.jsonl` (paths relative to out_dir).
    Returns:
        the manifest path.
    Raises:
        SpeechftError: bad voice spec, missing file, or no usable engine.
    """
    parsed = [Voice.parse(v) for v in voices or []]
    if not parsed:
        raise SpeechftError("no voice given. Fix: e.g. --voice hibari:heart --voice flite:slt")
    sents = read_sentences(text_file)
    if not sents:
        raise SpeechftError(f"{text_file} has no sentence. Fix: one sentence a line")
    out_dir = Path(out_dir)
    utts = synth_sentences(sents, [parsed] * len(sents), out_dir / "audio", seed=seed, jobs=jobs)
    manifest = out_dir / "manifest.jsonl"
    write_manifest_if_changed(manifest, utts)
    return manifest
