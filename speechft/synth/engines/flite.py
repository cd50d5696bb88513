"""flite: CMU diphone and cluster-unit voices, run as the `flite` program."""

from __future__ import annotations

from .base import CliEngine

EXCLUDED = frozenset({"awb_time"})  # a limited-domain voice that can only say clock times


class FliteEngine(CliEngine):
    name, install, programs = "flite", "apt-get install flite", ("flite",)

    def voices(self):
        return [v for v in self.output(["flite", "-lv"]).split(":", 1)[-1].split() if v not in EXCLUDED]

    def command(self, voice, speed, src, out):
        return ["flite", "-voice", voice, "--setf", f"duration_stretch={1.0 / speed:.4f}", "-f", src, "-o", out]
