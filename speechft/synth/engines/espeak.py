"""espeak-ng: formant synthesis, many English accents and voice variants (robotic, but distinct)."""

from __future__ import annotations

import re

from .base import CliEngine

DEFAULT_WPM = 175  # espeak-ng's own default rate, words per minute (speed 1.0)
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")


class EspeakEngine(CliEngine):
    """Voices are an accent, optionally with a variant: "en-us", "en-gb-scotland+f3"."""

    name, install, programs = "espeak", "apt-get install espeak-ng", ("espeak-ng",)

    def voices(self):
        rows = [line.split() for line in self.output(["espeak-ng", "--voices=en"]).splitlines()[1:]]
        # mbrola voices (file mb/...) need the mbrola program and its non-free voice packages.
        langs = {row[1] for row in rows if len(row) > 1 and not any(t.startswith("mb/") for t in row)}
        variants = re.findall(r"!v/(\S+)", self.output(["espeak-ng", "--voices=variant"]))
        accents = [a for a in ACCENTS if a in langs]
        return accents + [f"{a}+{v}" for a in accents for v in variants]

    def command(self, voice, speed, src, out):
        return ["espeak-ng", "-v", voice, "-s", str(round(DEFAULT_WPM * speed)), "-f", src, "-w", out]
