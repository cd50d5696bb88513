"""The engine interface: can it run here, which voices, speak one sentence (or a batch)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from ...errors import SpeechftError

ENGINE_TIMEOUT = 120  # s per sentence for CLI engines; a hung process must not stall a run


def to_ascii(text: str) -> str:
    """CLI engines read Latin-1 at best: fold accents and drop what they cannot say."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").strip()


class Engine:
    """A TTS engine: says whether it can run here, lists its voices, speaks one sentence.

    Subclasses keep any per-run state (loaded models, locks) on the instance, never on the class.
    """

    name = install = ""  # install: the command that installs the engine
    programs: tuple[str, ...] = ()  # CLI programs it needs on PATH
    module = ""  # Python package it needs
    batch = 1  # sentences per speak_many call (engines that start a process per call batch more)

    def missing(self) -> str | None:
        """Why the engine cannot run here, or None when it can."""
        absent = [p for p in self.programs if not shutil.which(p)]
        if absent:
            return f"program(s) {', '.join(absent)} not on PATH"
        if self.module and not importlib.util.find_spec(self.module):
            return f"Python package {self.module} not installed"
        return None

    def voices(self) -> list[str]:
        """Names of the voices installed here."""
        raise NotImplementedError

    def canonical_voice(self, voice: str) -> str:
        """The engine's own name for a voice name people type (an alias)."""
        return voice

    def voice_install(self, voice: str) -> str:
        """The command that installs `voice`."""
        return self.install

    def speak(self, text: str, voice: str, speed: float, seed: int) -> tuple[np.ndarray, int]:
        """Returns (float32 mono samples, sample rate)."""
        raise NotImplementedError

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
        """The command line that speaks the text in file `src` into WAV file `out`."""
        raise NotImplementedError

    def output(self, cmd: list[str]) -> str:
        """stdout of a short query command (e.g. listing voices)."""
        return subprocess.run(cmd, capture_output=True, text=True, timeout=ENGINE_TIMEOUT).stdout

    def speak(self, text, voice, speed, seed):
        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            # A file, not the command line: a sentence starting with "-" would be read as an option.
            src, out = os.path.join(tmp, "in.txt"), os.path.join(tmp, "out.wav")
            Path(src).write_text(to_ascii(text), encoding="ascii")
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
