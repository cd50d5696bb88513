"""`speechft prepare <domain>`: build data/<domain>/ (audio, split manifests) from data_manifests/<domain>/.

Four kinds of domain:
- TTS domains (medical, aviation, legal, finance): sentences per split are spoken by the voices that
  `voices.yaml` assigns (round-robin over a split's voices, speed jitter, light augmentation). Test
  speakers never occur in train or dev: the test set measures held-out speakers.
- general: real human speech, the Asterisk core prompts (speaker "allison"), as a regression set.
- telephony: adaptation to that same Asterisk speech, split by prompt; its `voices.yaml` has a
  `real_speech` section and a TTS `general` split of everyday sentences as its regression set.
- nonspeech: clips with no speech (silence, noise, hum, clicks, DTMF, backwards babble, room
  tone, mixtures), text "", in train.jsonl and test.jsonl (speechft/synth/nonspeech.py).

Idempotent and atomic: audio is content-addressed and reused, every file is written under a temp
name and renamed, and manifests are written only after all of their audio exists.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, WHISPER_MAX_SECONDS
from .errors import SpeechftError
from .io_utils import atomic_path, write_text_if_changed
from .lexicon import load_lexicon, tts_text
from .manifest import Utterance, spread_subset
from .synth import Sentence, Voice, read_sentences, speakable, synth_sentences, usable_voices, write_manifest_if_changed
from .synth.nonspeech import nonspeech_clips
from .synth.plan import PLAN_FILE, SPLITS, Plan, assign_voices, load_plan
from .text import count_term, normalize, read_terms

log = logging.getLogger(__name__)

ASTERISK_PACKAGES = ("asterisk-core-sounds-en-g722", "asterisk-core-sounds-en")
ASTERISK_SOUNDS = "usr/share/asterisk/sounds/en_US_f_Allison"
ASTERISK_TRANSCRIPTS = "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
ASTERISK_SPEAKER = "allison"
GENERAL_TEST_SIZE = 200  # prompts in data/general/test.jsonl: keeps recipe evaluation short
GENERAL_DEV_SIZE = 150  # prompts in data/general/dev.jsonl, none of them in test
GENERAL_SEED = 0
FFMPEG_GROUP = 40  # files per ffmpeg process
FFMPEG_TIMEOUT = 60  # s per prompt; each is a few seconds of audio


def _synth_splits(domain: str, plan: Plan, src: Path, audio_dir: Path, jobs: int | None) -> dict[str, list[Utterance]]:
    sents, voices = [], []
    lexicon = load_lexicon(src)  # term -> respelling the voices say (lexicon.txt); the transcript keeps the term
    for split, sp in plan.splits.items():
        split_voices = usable_voices(Voice.parse(v) for v in sp.voices)
        # Unspeakable lines are dropped before the round-robin so they do not cost a voice its turn.
        ss = [Sentence(s.text, s.line, s.source, f"{domain}-{split}-{s.line:05d}", spoken=tts_text(s.text, lexicon))
              for s in speakable(read_sentences(src / (sp.sentences or f"{split}.txt")))]
        if not ss:
            raise SpeechftError(f"{src / (sp.sentences or f'{split}.txt')} has no sentence. Fix: one sentence a line")
        sents += ss
        voices += assign_voices(ss, sp, split_voices, plan.seed, split)
    # One call for all splits: one worker pool, one progress bar.
    utts = synth_sentences(sents, voices, audio_dir, seed=plan.seed, jobs=jobs, desc=f"synth {domain}")
    out: dict[str, list[Utterance]] = {split: [] for split in plan.splits}
    for u in utts:  # ids are "<domain>-<split>-<line>-<engine>-<voice>"; split names have no "-"
        out[u.id[len(domain) + 1:].split("-", 1)[0]].append(u)
    return out


def _check_text(domain: str, src: Path, by_split: dict[str, list[Utterance]]) -> None:
    """Warn about test sentences also in train and about terms train never says."""
    norm = {split: {normalize(u.text) for u in utts} for split, utts in by_split.items()}
    leaked = norm.get("test", set()) & norm.get("train", set())
    if leaked:
        log.warning("%s: %d test sentence(s) also in train, e.g. %r. Fix: keep test sentences out of train.txt",
                    domain, len(leaked), sorted(leaked)[0])
    if (src / "terms.txt").is_file() and "train" in norm:
        train_text = " \n ".join(norm["train"])
        unseen = [t for t in read_terms(src / "terms.txt") if not count_term(train_text, normalize(t))]
        if unseen:
            log.warning("%s: %d term(s) never spoken in train: %s. Fix: add train sentences that use them",
                        domain, len(unseen), ", ".join(unseen[:10]))


# ---------------------------------------------------------------- Asterisk real speech


def parse_asterisk_transcripts(text: str) -> dict[str, str]:
    """`key: text` lines -> {key: text}; bracketed notes are removed, tone/silence entries dropped."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(";") or ":" not in line:
            continue
        key, _, words = line.partition(":")
        # [beep], <beep ascending>, (10 seconds of silence), IAX (note: ...) describe the audio, not speech.
        words = re.sub(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)", " ", words)
        words = " ".join(words.split())
        if any(c.isalnum() for c in words):
            out[key.strip()] = words
    return out


def _run(cmd: list[str], what: str, fix: str, **kw) -> None:
    try:
        subprocess.run(cmd, check=True, capture_output=True, **kw)
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        raise SpeechftError(f"{what} failed: {e} {detail.decode(errors='replace')[-300:]}. Fix: {fix}") from e


def _asterisk_root(cache: Path) -> Path:
    """Download (once) and unpack the two Debian packages; returns the unpacked root."""
    root = cache / "root"
    if (root / ASTERISK_TRANSCRIPTS).is_file() and (root / ASTERISK_SOUNDS).is_dir():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    for pkg in ASTERISK_PACKAGES:
        if not list(cache.glob(f"{pkg}_*.deb")):
            _run(["apt-get", "download", pkg], f"apt-get download {pkg}",
                 f"run `apt-get update`, or put {pkg}_*.deb into {cache} by hand", cwd=cache)
    tmp = cache / ".root.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for pkg in ASTERISK_PACKAGES:
        deb = sorted(cache.glob(f"{pkg}_*.deb"))[-1]
        _run(["dpkg-deb", "-x", str(deb), str(tmp)], f"dpkg-deb -x {deb.name}", f"delete {deb} and run prepare again")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def _decode_g722(pairs: list[tuple[Path, Path]]) -> None:
    """Decode G.722 files to 16 kHz WAV with ONE ffmpeg process (a process per file costs more
    than the decoding: 548 prompts took 38 s one by one, a few seconds in groups)."""
    pairs = [(src, dst) for src, dst in pairs if not dst.is_file()]
    if not pairs:
        return
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    for src, _ in pairs:
        cmd += ["-f", "g722", "-i", str(src)]
    with contextlib.ExitStack() as stack:  # each output renamed into place only if ffmpeg succeeds
        tmps = [stack.enter_context(atomic_path(dst)) for _, dst in pairs]
        for i, tmp in enumerate(tmps):
            cmd += ["-map", f"{i}:a", "-ar", str(SAMPLE_RATE), "-ac", "1", "-bitexact", "-f", "wav", str(tmp)]
        _run(cmd, f"ffmpeg decode of {pairs[0][0].name} ... {pairs[-1][0].name}", "apt-get install ffmpeg",
             timeout=FFMPEG_TIMEOUT * len(pairs))


def asterisk_prompts(general_dir: Path, jobs: int | None = None) -> list[Utterance]:
    """All Asterisk prompts with a transcript and audio, decoded to 16 kHz WAV under general_dir/audio.

    Raises:
        SpeechftError: download, unpacking or decoding failed (the message says how to fix it).
    """
    import soundfile as sf
    from tqdm import tqdm

    root = _asterisk_root(general_dir / "cache")
    texts = parse_asterisk_transcripts(gzip.decompress((root / ASTERISK_TRANSCRIPTS).read_bytes()).decode("utf-8"))
    sounds = root / ASTERISK_SOUNDS
    keys = sorted(k for k in texts if (sounds / f"{k}.g722").is_file())
    if len(keys) < len(texts):
        log.info("general: %d transcript(s) without audio dropped", len(texts) - len(keys))
    wav = {k: general_dir / "audio" / f"{k}.wav" for k in keys}
    groups = [keys[i : i + FFMPEG_GROUP] for i in range(0, len(keys), FFMPEG_GROUP)]
    with ThreadPoolExecutor(jobs or os.cpu_count()) as pool:  # ffmpeg processes do the work; threads wait
        list(tqdm(pool.map(lambda group: _decode_g722([(sounds / f"{k}.g722", wav[k]) for k in group]), groups),
                  total=len(groups), desc=f"decode asterisk ({FFMPEG_GROUP} files per ffmpeg)", unit="group", disable=None))
    utts = [Utterance(str(wav[k].resolve()), texts[k], sf.info(str(wav[k])).frames / SAMPLE_RATE, k, ASTERISK_SPEAKER)
            for k in keys]
    # Whisper sees 30 s at most: longer prompts (the demo monologues) would only be dropped later.
    too_long = [u.id for u in utts if u.duration > WHISPER_MAX_SECONDS]
    if too_long:
        log.info("general: %d prompt(s) over %.0f s left out: %s", len(too_long), WHISPER_MAX_SECONDS, ", ".join(too_long))
    return [u for u in utts if u.duration <= WHISPER_MAX_SECONDS]


def general_subset(utts: list[Utterance], n: int) -> list[Utterance]:
    """n prompts for the general test set, seeded, each folder (digits/, letters/, ...) in proportion."""
    return spread_subset(utts, min(n, len(utts)), group=lambda u: u.id.rpartition("/")[0], seed=GENERAL_SEED)


def _split_real_speech(utts: list[Utterance], fractions: dict[str, float], seed: int) -> dict[str, list[Utterance]]:
    """Split by prompt text (identical wording stays in one split, so test prompts are never trained on)."""
    groups: dict[str, list[Utterance]] = {}
    for u in utts:
        groups.setdefault(normalize(u.text), []).append(u)
    order = [sorted(groups)[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    total, bounds, acc = len(utts), [], 0.0
    for split, frac in fractions.items():
        acc += frac
        bounds.append((split, acc / sum(fractions.values()) * total))
    out: dict[str, list[Utterance]] = {s: [] for s in fractions}
    done = 0
    for text in order:
        split = next(s for s, b in bounds if done < b)
        out[split] += groups[text]
        done += len(groups[text])
    return {s: sorted(us, key=lambda u: u.id) for s, us in out.items()}


# ---------------------------------------------------------------- writing


def _write_outputs(out_dir: Path, by_split: dict[str, list[Utterance]]) -> dict[str, Path]:
    paths = {}
    for split, utts in by_split.items():
        paths[split] = out_dir / f"{split}.jsonl"
        write_manifest_if_changed(paths[split], utts)
    speakers = {split: sorted({u.speaker for u in utts if u.speaker}) for split, utts in by_split.items()}
    write_text_if_changed(out_dir / "voices.json", json.dumps(speakers, indent=2) + "\n")
    return paths


def _remove_leftovers(audio_dir: Path, keep: set[str] | None = None) -> None:
    """Delete temp files of an interrupted run and (when `keep` is given) audio no manifest uses."""
    if not audio_dir.is_dir():
        return
    for p in audio_dir.rglob(".*.tmp*"):
        p.unlink(missing_ok=True)
    if keep is not None:
        for p in audio_dir.glob("*.wav"):
            if str(p.resolve()) not in keep:
                p.unlink()


def _validate(paths: list[Path]) -> None:
    try:
        from .validate import summarize, validate_manifests
    except ImportError:  # validation is optional at this stage
        return
    problems = validate_manifests(paths)
    for p in problems:
        if p.severity != "error":
            log.warning(p.message)
    if any(p.severity == "error" for p in problems):
        raise SpeechftError(f"prepared manifests have errors:\n{summarize([p for p in problems if p.severity == 'error'])}")


def _prepare_general(out_dir: Path, jobs: int | None) -> dict[str, Path]:
    try:
        utts = asterisk_prompts(out_dir, jobs)
    finally:
        _remove_leftovers(out_dir / "audio")
    subset = general_subset(utts, GENERAL_TEST_SIZE)
    # dev: other prompts of the same real speaker, where settings that trade the domain against
    # everyday speech (interpolation, replay, the shipped prompt) are chosen without touching test.
    rest = [u for u in utts if u.id not in {t.id for t in subset}]
    dev = spread_subset(rest, min(GENERAL_DEV_SIZE, len(rest)), group=lambda u: u.id.rpartition("/")[0], seed=GENERAL_SEED + 1)
    paths = _write_outputs(out_dir, {"all": utts, "test": subset, "dev": dev})
    _validate(list(paths.values()))
    return paths


def _prepare_nonspeech(src: Path, out_dir: Path) -> dict[str, Path]:
    # Not validated: an empty transcript, an error for speech, is the point of this set.
    try:
        by_split = nonspeech_clips(src, out_dir / "audio")
        paths = _write_outputs(out_dir, by_split)
        _remove_leftovers(out_dir / "audio", keep={u.audio_filepath for us in by_split.values() for u in us})
    finally:
        _remove_leftovers(out_dir / "audio")
    return paths


def prepare(domain: str, sources: str | Path = "data_manifests", data_root: str | Path = "data",
            jobs: int | None = None) -> dict[str, Path]:
    """Build data/<domain>/ from data_manifests/<domain>/ (see the module docstring).

    Args:
        domain: "general", "nonspeech", or a folder under `sources` with voices.yaml and <split>.txt.
        jobs: parallel workers (default: all cores).
    Returns:
        split -> manifest path.
    Raises:
        SpeechftError: a missing or inconsistent source, no usable TTS engine, or invalid output.
    """
    out_dir = Path(data_root) / domain
    if domain == "general":
        return _prepare_general(out_dir, jobs)
    src = Path(sources) / domain
    if domain == "nonspeech":
        return _prepare_nonspeech(src, out_dir)
    if not src.is_dir():
        known = sorted(p.name for p in Path(sources).glob("*/") if (p / PLAN_FILE).is_file())
        raise SpeechftError(f"unknown domain {domain!r}: {src} does not exist. Fix: one of general, {', '.join(known)}")
    plan = load_plan(src / PLAN_FILE)
    audio_dir = out_dir / "audio"
    _remove_leftovers(audio_dir)
    try:
        by_split = _synth_splits(domain, plan, src, audio_dir, jobs)
        _check_text(domain, src, by_split)
        if plan.real_speech:
            real = asterisk_prompts(Path(data_root) / "general", jobs)
            by_split.update(_split_real_speech(real, plan.real_speech, plan.seed))
        # Every file exists now: write the manifests (each atomically), then tidy up.
        paths = _write_outputs(out_dir, by_split)
        if (src / "terms.txt").is_file():
            write_text_if_changed(out_dir / "terms.txt", (src / "terms.txt").read_text(encoding="utf-8"))
        _remove_leftovers(audio_dir, keep={u.audio_filepath for us in by_split.values() for u in us})
    finally:
        _remove_leftovers(audio_dir)
    _validate(list(paths.values()))
    return {s: paths[s] for s in [*[s for s in SPLITS if s in paths], *sorted(set(paths) - set(SPLITS))]}


def prepare_many(targets: list[str], sources: str | Path = "data_manifests", data_root: str | Path = "data",
                 jobs: int | None = None) -> dict[str, dict[str, Path]]:
    """`prepare` each target, all at once: target -> (split -> manifest path), in the given order.

    One domain's synthesis leaves a core idle much of the time (a festival or flite process per
    sentence, audio effects under the GIL: the medical domain alone used 1.2 of 2 cores), so the
    targets share the machine instead of taking turns. `general` goes first, alone: a domain with
    real speech (voices.yaml `real_speech`) reads its folder.

    Raises:
        SpeechftError: the first target that failed (the others still finish, each atomically).
    """
    from concurrent.futures import ThreadPoolExecutor

    first = [t for t in targets if t == "general"]
    rest = [t for t in targets if t != "general"]
    done = {t: prepare(t, sources, data_root, jobs) for t in first}
    with ThreadPoolExecutor(max(1, len(rest))) as pool:
        futures = {t: pool.submit(prepare, t, sources, data_root, jobs) for t in rest}
    errors = [f.exception() for f in futures.values() if f.exception()]
    if errors:
        raise errors[0]
    done.update({t: f.result() for t, f in futures.items()})
    return {t: done[t] for t in targets}
