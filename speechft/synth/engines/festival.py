"""festival: diphone and HTS voices, one or many sentences per `festival` process (what `text2wave` does)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ...audio import SAMPLE_RATE
from ...errors import SpeechftError
from .base import ENGINE_TIMEOUT, CliEngine, to_ascii

# Short names people type -> the names festival registers.
ALIASES = {
    "us_slt_hts": "cmu_us_slt_arctic_hts", "slt_hts": "cmu_us_slt_arctic_hts", "slt": "cmu_us_slt_arctic_hts",
    "kal": "kal_diphone", "kdl": "ked_diphone", "ked": "ked_diphone",
}
PACKAGES = {
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts", "kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
}
# Saves each utterance tts_file makes, resampled, as <prefix><n>.wav: what text2wave does per utterance.
SAVE_HOOK = ('(define (speechft_save u) (utt.wave.resample u {rate}) (set! speechft_n (+ speechft_n 1)) '
             '(utt.save.wave u (string-append speechft_prefix (format nil "%03d" speechft_n) ".wav") \'riff))\n'
             "(set! tts_hooks (list utt.synth speechft_save))\n")


def rate_command(voice: str, speed: float) -> str:
    """The Scheme expression that sets the speaking rate for `voice`."""
    # HTS voices ignore Duration_Stretch; their engine takes a speech-rate option instead.
    if voice.endswith("_hts"):
        return f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {speed:.4f}))))'
    return f"(Parameter.set 'Duration_Stretch {1.0 / speed:.4f})"


class FestivalEngine(CliEngine):
    name, programs = "festival", ("festival", "text2wave")
    install = "apt-get install festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k"
    # Starting festival and loading a voice costs about 0.1 s, synthesising a sentence with a
    # diphone voice about 0.03 s: one process speaks a batch.
    batch = 16
    # Festival reserves and clears its Scheme heap at start: the default 10 million cells cost
    # 0.15 s a process, mostly system time (benchmarks/festival_heap.py), while our scripts need
    # far fewer (the lexicon and the voices live outside it; 500,000 cells already spoke our
    # longest sentences). The samples are the same (tests/test_synth.py, every installed voice).
    heap_cells = 2_000_000

    def voices(self):
        return re.findall(r"[\w-]+", self.output(["festival", "-b", "(print (voice.list))"]))

    def canonical_voice(self, voice):
        return ALIASES.get(voice, voice)

    def voice_install(self, voice):
        return f"apt-get install {PACKAGES.get(voice, 'festvox-<voice package>')}"

    def command(self, voice, speed, src, out):
        return ["text2wave", "-F", str(SAMPLE_RATE), "-eval", f"(voice_{voice})", "-eval", rate_command(voice, speed), src, "-o", out]

    def speak(self, text, voice, speed, seed):
        """One sentence through the batch script (text2wave's samples, festival's heap set)."""
        (out,) = self.speak_many([(text, speed, seed)], voice)
        if isinstance(out, SpeechftError):
            raise out
        return out

    def speak_many(self, items, voice):
        """One festival process for the batch. The script does what text2wave does (tts_file splits
        the text into utterances, each resampled and written in turn), so the samples are the same;
        re-selecting the voice per sentence resets the HTS rate."""
        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            lines = [SAVE_HOOK.format(rate=SAMPLE_RATE)]
            for i, (text, speed, _) in enumerate(items):
                Path(tmp, f"{i}.txt").write_text(to_ascii(text), encoding="ascii")
                lines += [f"(voice_{voice})", rate_command(voice, speed), "(set! speechft_n 0)",
                          f'(set! speechft_prefix "{tmp}/{i}_")', f'(tts_file "{tmp}/{i}.txt" nil)']
            Path(tmp, "batch.scm").write_text("\n".join(lines) + "\n", encoding="ascii")
            try:
                subprocess.run(["festival", "--heap", str(self.heap_cells), "-b", f"{tmp}/batch.scm"], capture_output=True, timeout=ENGINE_TIMEOUT * len(items))
            except subprocess.TimeoutExpired:
                pass  # whatever was not written is retried one by one below, with a clear error
            results = []
            for i, (text, speed, seed) in enumerate(items):
                parts = sorted(Path(tmp).glob(f"{i}_*.wav"))
                # The next sentence's first file proves this one finished (the last: the process did).
                if parts and (i + 1 == len(items) or any(Path(tmp).glob(f"{i + 1}_*.wav"))):
                    read = [sf.read(str(p), dtype="float32", always_2d=True) for p in parts]
                    results.append((np.concatenate([d.mean(axis=1) for d, _ in read]), int(read[0][1])))
                else:  # the batch stopped here: this sentence alone through text2wave gives the engine's own error
                    try:
                        results.append(CliEngine.speak(self, text, voice, speed, seed))
                    except SpeechftError as e:
                        results.append(e)
            return results
