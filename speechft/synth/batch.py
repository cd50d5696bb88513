"""Synthesis of many sentences: content-addressed files, reuse, batching per voice, a thread pool.

A file's name hashes everything that determines its audio (`cache_key`), so a second run with
the same inputs finds every file and does no synthesis.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from ..audio import SAMPLE_RATE, write_wav
from ..errors import SpeechftError
from ..manifest import Utterance
from .engines import ENGINES, require, usable_voices
from .listeners import notify_render
from .signal import CACHE_VERSION, finish, level
from .voices import Sentence, Voice, speakable

log = logging.getLogger(__name__)


class Job(NamedTuple):
    """One file to make: `text` spoken by `voice` into `path`, random draws fixed by `seed`."""

    path: Path
    text: str
    voice: Voice
    seed: int


def cache_key(text: str, voice: Voice, seed: int) -> str:
    """The file stem of a synthesised utterance: a hash of everything that determines its audio."""
    spec = [CACHE_VERSION, voice.engine, voice.voice, voice.speed, voice.noise_snr_db, voice.reverb, seed, text]
    if voice.effects.key():  # only when set: files made before effects existed keep their names
        spec.append(voice.effects.key())
    return hashlib.sha1(json.dumps(spec).encode("utf-8")).hexdigest()[:20]


def cached_frames(path: Path) -> int | None:
    """Frames of a complete earlier result (files appear only by atomic rename); None: make it."""
    import soundfile as sf

    try:
        return sf.info(str(path)).frames or None
    except (RuntimeError, OSError):  # absent or unreadable
        return None


def babble_audio(voice: Voice) -> list[np.ndarray]:
    """The background talkers of `voice.effects.babble`, each levelled at 16 kHz.

    Raises:
        SpeechftError: a talker's engine is missing or spoke nothing.
    """
    out = []
    for talker in voice.effects.babble:
        name = Voice(talker.engine, talker.voice).voice  # aliases resolved
        out.append(level(require(talker.engine).speak(talker.text, name, 1.0, 0), f"babble {talker.engine}:{name}"))
    return out


def synthesize(text: str, voice: Voice, seed: int = 0) -> np.ndarray:
    """Speak `text`; deterministic for a given seed.

    Returns:
        float32 mono samples at 16 kHz, peak TARGET_PEAK.
    Raises:
        SpeechftError: the engine is missing, fails, or speaks nothing.
    """
    spoken = require(voice.engine).speak(text, voice.voice, voice.speed, seed)
    notify_render(text, voice, seed)
    return finish(spoken, voice, seed, babble_audio(voice))


def render(jobs: list[Job]) -> list[tuple[Path, int, str | None]]:
    """Synthesise utterances of one voice and write each atomically. Returns (path, frames, problem)s."""
    voice = jobs[0].voice
    try:
        spoken = require(voice.engine).speak_many([(j.text, voice.speed, j.seed) for j in jobs], voice.voice)
    except SpeechftError as e:
        return [(j.path, 0, str(e)) for j in jobs]
    results = []
    for job, out in zip(jobs, spoken):
        try:
            if isinstance(out, SpeechftError):
                raise out
            notify_render(job.text, voice, job.seed)
            audio = finish(out, voice, job.seed, babble_audio(voice))
        except SpeechftError as e:
            results.append((job.path, 0, str(e)))
            continue
        write_wav(job.path, audio)
        results.append((job.path, audio.size, None))
    return results


def run_jobs(jobs: list[Job], workers: int, desc: str) -> list[tuple[Path, int, str | None]]:
    """Render every job, grouped by voice into the engine's batch size, over `workers` threads."""
    from tqdm import tqdm

    # By whole Voice, so a plan's speed jitter leaves most train sentences one to a festival process
    # (0.12 s each). Batching them by engine voice made the cold medical prepare 109 -> 73 s, but
    # festival's diphone synthesis then gave one sentence of 432 different samples from run to run
    # (its last 0.17 s, depending on what the process had spoken before): audio must be a function
    # of its cache key, so that was reverted.
    by_voice: dict[Voice, list[Job]] = {}
    for job in jobs:
        by_voice.setdefault(job.voice, []).append(job)
    chunks = [js[i : i + ENGINES[v.engine].batch] for v, js in by_voice.items() for i in range(0, len(js), ENGINES[v.engine].batch)]
    chunks.sort(key=len, reverse=True)  # big batches first, so no worker ends the run alone on one
    bar = tqdm(total=len(jobs), desc=desc, unit="utt", disable=None)
    results = []
    # Threads, not processes: the engines spend their time in subprocesses (flite, festival) or in
    # onnxruntime/numpy/torch calls that release the GIL, so threads use every core; and they avoid
    # fork (unsafe once torch has started its thread pools) and spawn (re-runs a caller's script
    # that lacks an `if __name__ == "__main__"` guard).
    pool = ThreadPoolExecutor(max(1, workers))
    try:
        for done in pool.map(render, chunks):
            results += done
            bar.update(len(done))
    finally:  # on Ctrl-C, drop queued jobs instead of finishing them all
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return results


def synth_sentences(
    sentences: Sequence[Sentence | str],
    voices_for_each: Sequence[Voice | Sequence[Voice]],
    out_dir: str | Path,
    seed: int = 0,
    jobs: int | None = None,
    desc: str = "synth",
) -> list[Utterance]:
    """Speak each sentence with its voice(s) into `out_dir/<cache key>.wav`, reusing existing files.

    Args:
        sentences: Sentence objects (or plain strings, numbered from 1).
        voices_for_each: per sentence, one Voice or a list of Voices that each speak it.
        seed: fixes every random choice; same inputs + seed -> identical audio.
        jobs: parallel workers (default: all cores).
    Returns:
        one Utterance per (sentence, usable voice) in input order, with id, speaker, duration.
        Unspeakable sentences are skipped with a warning naming file and line.
    Raises:
        SpeechftError: no usable voice, or nothing could be synthesised.
    """
    if len(voices_for_each) != len(sentences):
        raise SpeechftError(f"{len(sentences)} sentences but {len(voices_for_each)} voice entries. Fix: one entry per sentence")
    per_sent = [[v] if isinstance(v, Voice) else list(v) for v in voices_for_each]
    usable = set(usable_voices(v for vs in per_sent for v in vs))
    sents = [(s if isinstance(s, Sentence) else Sentence(s, i), vs) for i, (s, vs) in enumerate(zip(sentences, per_sent), 1)]
    ok = set(speakable(s for s, _ in sents))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    planned = [(s, v, out_dir / f"{cache_key(s.tts_text, v, seed)}.wav") for s, vs in sents if s in ok for v in vs if v in usable]

    frames = {p: cached_frames(p) for _, _, p in planned}
    # One job per missing file (a repeated sentence+voice is made once); its seed comes from its
    # cache key, so every file gets its own noise.
    todo = {p: Job(p, s.tts_text, v, int(p.stem[:8], 16)) for s, v, p in planned if frames[p] is None}
    where = {p: (s, v) for s, v, p in planned}
    for path, n, problem in run_jobs(list(todo.values()), min(jobs or os.cpu_count() or 1, len(todo)), desc):
        if problem:
            s, v = where[path]
            log.warning("%s:%d skipped (%s): %s", s.source or "sentence", s.line, v.tag, problem)
        frames[path] = n or None

    utts = [Utterance(str(p.resolve()), s.text, frames[p] / SAMPLE_RATE, f"{s.stem}-{v.engine}-{v.voice}", v.speaker)
            for s, v, p in planned if frames[p]]
    if sents and not utts:
        raise SpeechftError(f"none of {len(sents)} sentences could be synthesised. Fix: see the warnings above")
    return utts
