"""Serving speed and accuracy: HF generate vs the CTranslate2 export (int8, float32) through
faster-whisper, on Whisper tiny.en and speech synthesised with Debian flite (voice slt).

Measured in one process, engines interleaved (a, b, c, a, b, c, ...) so machine noise hits
all of them alike; torch and CTranslate2 both use every core this process may use.

- latency: one 5 s clip, transcribed end to end (features, encoder, greedy decoder; the
  "served defaults" row decodes as `speechft serve` does: beam 5, VAD, guards), median over
  --repeats after one warm-up call each;
- real-time factor: every clip transcribed one at a time, as a server handles requests,
  processing seconds / audio seconds; WER of each engine on the same clips;
- padding: the HF feature extractor pads the waveform to 30 s, faster-whisper pads the
  log-mel with zeros. The 2 x 2 table crosses engine (torch / CT2 float32) with padding
  (waveform / log-mel), so the padding effect is seen apart from the engine's.

Run from the repository root:
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serve_speed.py [--repeats 7]
The last line is `speedup: X.XX` = HF median latency / CT2 int8 median latency (5 s clip).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from speechft.audio import SAMPLE_RATE, load_audio

FLITE = "/usr/bin/flite"
FLITE_VOICE = "slt"
MODEL = "whisper-tiny.en"
LATENCY_SECONDS = 5.0  # s, the latency clip
GAP_SECONDS = 0.25  # s of silence between sentences joined into the latency clip
N_FRAMES = 3000  # Whisper's 30 s of 10 ms log-mel frames
MAX_NEW_TOKENS = 128
DEFAULT_WORK_DIR = Path(tempfile.gettempdir()) / "speechft-bench-serve-speed"
# Voice-assistant commands (what Home Assistant hears) and everyday sentences.
SENTENCES = [
    "Turn on the kitchen lights.",
    "Set a timer for ten minutes.",
    "What is the weather like tomorrow morning?",
    "Turn off the heating in the bedroom.",
    "Play some relaxing music in the living room.",
    "Lock the front door and close the garage.",
    "Dim the lights in the dining room to thirty percent.",
    "Remind me to water the plants at six o'clock.",
    "Add eggs and butter to the shopping list.",
    "Open the blinds in the study.",
    "Is the back door locked?",
    "Set the thermostat to twenty one degrees.",
    "Start the vacuum cleaner in the hallway.",
    "Turn the volume down on the television.",
    "Cancel all my alarms for tomorrow.",
    "Switch on the fan in the office.",
    "The weather is lovely today, so we are going for a walk in the park.",
    "Please remember to buy milk, bread and eggs on your way home.",
    "My brother is learning to play the guitar this summer.",
    "The train to the city leaves at half past eight every morning.",
    "Could you close the window? It is getting cold in here.",
    "We had dinner at a small restaurant near the river.",
    "She reads a book before going to bed every night.",
    "The children are playing football in the garden.",
    "I need to call the dentist and make an appointment.",
    "Turn left at the next corner and the shop is on your right.",
    "The museum is closed on Mondays but open late on Fridays.",
    "He forgot his umbrella and got wet on the way to work.",
    "Our neighbours are painting their house a bright shade of blue.",
    "The meeting has been moved to Thursday afternoon.",
    "Can you pick up the parcel from the post office?",
    "The library has a new collection of old maps.",
]


def synth(work: Path) -> tuple[list[np.ndarray], list[str]]:
    clips = []
    for i, text in enumerate(SENTENCES):
        wav = work / "clips" / f"{i:02d}.wav"
        if not wav.is_file():
            wav.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([FLITE, "-voice", FLITE_VOICE, "-t", text, "-o", str(wav)], check=True, timeout=60)
        clips.append(load_audio(wav))
    return clips, list(SENTENCES)


def latency_clip(clips: list[np.ndarray]) -> np.ndarray:
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    joined = np.concatenate([part for clip in clips for part in (clip, gap)])
    return joined[: int(LATENCY_SECONDS * SAMPLE_RATE)]


def fw_style_features(audios: list[np.ndarray]) -> torch.Tensor:
    """Log-mel of the unpadded waveform, then zero-padded to 30 s, as faster-whisper does."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    fe = FeatureExtractor(feature_size=80)
    return torch.from_numpy(np.stack([pad_or_trim(fe(a), N_FRAMES) for a in audios]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per engine for the 5 s latency")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="clips and exports (reused)")
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # generate() warns about max_length on every call
    from speechft.evaluate import score
    from speechft.export import export_ct2
    from speechft.models import resolve_model
    from speechft.models.adapters import load_adapter
    from speechft.models.base import DecodeOptions
    from speechft.models.ct2.runtime import (DeployedDecoding, cpu_threads, ct2_generate_features, ct2_transcribe,
                                             load_ct2, transcribe_deployed)

    threads = cpu_threads()
    torch.set_num_threads(threads)
    load_start = os.getloadavg()[0]
    args.work_dir.mkdir(parents=True, exist_ok=True)
    clips, refs = synth(args.work_dir)
    ids = [f"s{i}" for i in range(len(clips))]
    audio_s = sum(c.size for c in clips) / SAMPLE_RATE
    short = latency_clip(clips)

    adapter = load_adapter(MODEL)
    adapter.model.eval()
    ct2 = {}
    for quant in ("int8", "float32"):
        out = args.work_dir / f"ct2-{quant}"
        if not (out / "model.bin").is_file():
            export_ct2(resolve_model(MODEL), out, quant)
        ct2[quant] = load_ct2(out)

    def hf(audio):
        with torch.inference_mode():
            return adapter.transcribe_audio([audio], DecodeOptions(max_new_tokens=MAX_NEW_TOKENS))[0]

    engines = {"HF generate (torch fp32)": hf,
               "CT2 int8 (faster-whisper)": lambda a: ct2_transcribe(ct2["int8"], a)[0],
               "CT2 float32 (faster-whisper)": lambda a: ct2_transcribe(ct2["float32"], a)[0],
               # What `speechft serve` runs: beam 5, Silero VAD, the guards (DeployedDecoding).
               "CT2 int8, served defaults": lambda a: transcribe_deployed(ct2["int8"], a, DeployedDecoding())[0]}

    latency = {name: [] for name in engines}
    for fn in engines.values():
        fn(short)  # warm-up: first-call allocations and thread start-up
    for _ in range(args.repeats):
        for name, fn in engines.items():
            start = time.perf_counter()
            fn(short)
            latency[name].append(time.perf_counter() - start)

    busy = {name: 0.0 for name in engines}
    hyps = {name: [] for name in engines}
    for clip in clips:
        for name, fn in engines.items():
            start = time.perf_counter()
            hyps[name].append(fn(clip))
            busy[name] += time.perf_counter() - start

    # Padding study: the same two engines, each fed both kinds of padding.
    hf_padded = [adapter.features([c]) for c in clips]
    with torch.inference_mode():
        torch_fw = [adapter.transcribe_encoded(adapter.encode_rest(adapter.prefix(fw_style_features([c]), 1), 1),
                                               DecodeOptions(max_new_tokens=MAX_NEW_TOKENS))[0] for c in clips]
    ct2_hf = [ct2_generate_features(ct2["float32"], f.numpy())[0] for f in hf_padded]
    load_end = os.getloadavg()[0]

    wer = {name: score(refs, hyps[name], ids).wer for name in engines}
    print(f"machine: {threads} cores for this process, load average {load_start:.1f} at start, {load_end:.1f} at end "
          "(a shared machine: other jobs ran alongside)")
    print(f"model: {MODEL}; clips: {len(clips)} flite {FLITE_VOICE} sentences, {audio_s:.1f} s of audio; "
          f"latency clip {LATENCY_SECONDS:.0f} s, {args.repeats} repeats")
    print(f"{'engine':30s} {'5 s median':>11s} {'5 s min':>8s} {'RTF':>7s} {'WER':>7s}")
    for name in engines:
        print(f"{name:30s} {statistics.median(latency[name]):10.3f}s {min(latency[name]):7.3f}s "
              f"{busy[name] / audio_s:7.3f} {wer[name]:7.4f}")
    grid = {("torch fp32", "waveform (HF)"): wer["HF generate (torch fp32)"],
            ("torch fp32", "log-mel zeros (FW)"): score(refs, torch_fw, ids).wer,
            ("CT2 float32", "waveform (HF)"): score(refs, ct2_hf, ids).wer,
            ("CT2 float32", "log-mel zeros (FW)"): wer["CT2 float32 (faster-whisper)"]}
    print("padding study, WER (rows: engine, columns: how the 30 s window is padded):")
    print(f"{'':14s} {'waveform (HF)':>15s} {'log-mel zeros (FW)':>19s}")
    for engine in ("torch fp32", "CT2 float32"):
        print(f"{engine:14s} {grid[(engine, 'waveform (HF)')]:15.4f} {grid[(engine, 'log-mel zeros (FW)')]:19.4f}")
    differ = [i for i, (a, b) in enumerate(zip(hyps["HF generate (torch fp32)"], torch_fw)) if a != b]
    print(f"padding changes the torch transcript of {len(differ)}/{len(clips)} clips:")
    for i in differ:
        print(f"  ref: {refs[i]}\n    waveform-padded: {hyps['HF generate (torch fp32)'][i]}\n    log-mel-padded:  {torch_fw[i]}")
    hf_ms = statistics.median(latency["HF generate (torch fp32)"])
    int8_ms = statistics.median(latency["CT2 int8 (faster-whisper)"])
    print(f"speedup: {hf_ms / int8_ms:.2f}")


if __name__ == "__main__":
    main()
