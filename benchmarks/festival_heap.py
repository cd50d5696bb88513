"""Festival's Scheme heap: the engine's 2-million-cell heap against festival's default 10 million.

Each festival process (one per training sentence: see speechft/synth/batch.py) reserves and
clears its heap at start. This speaks the same sentences one process each with both heap sizes,
alternating, checks that the samples are identical and prints the time per sentence and the ratio.

    .venv/bin/python benchmarks/festival_heap.py [--sentences 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from speechft.synth.engines import ENGINES

SENTENCES = [
    "Start the piperacillin tazobactam tonight and recheck the creatinine in the morning.",
    "Cleared to land runway two seven left, wind two five zero at eight knots.",
    "The patient's troponin was normal and the echocardiogram showed no wall motion abnormality.",
    "Please hold the warfarin until the INR is back below three.",
    "Climb and maintain flight level three four zero, contact center on one two four decimal five.",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=30)
    ap.add_argument("--voice", default="kal_diphone")
    args = ap.parse_args()
    engine = ENGINES["festival"]
    if engine.missing():
        raise SystemExit(f"festival is not usable here: {engine.missing()}")
    small = engine.heap_cells
    seconds = {small: 0.0, 10_000_000: 0.0}
    for i in range(args.sentences):
        text, outputs = SENTENCES[i % len(SENTENCES)], []
        for cells in (small, 10_000_000) if i % 2 == 0 else (10_000_000, small):
            engine.heap_cells = cells
            t = time.perf_counter()
            outputs.append(engine.speak(text, args.voice, 1.0, 0)[0])
            seconds[cells] += time.perf_counter() - t
        engine.heap_cells = small
        assert np.array_equal(outputs[0], outputs[1]), f"sentence {i}: the samples differ between heap sizes"
    a, b = seconds[10_000_000] / args.sentences, seconds[small] / args.sentences
    print(f"festival {args.voice}, {args.sentences} sentences, one process each, identical samples")
    print(f"  heap 10,000,000 cells (default): {a:.3f} s a sentence")
    print(f"  heap {small:,} cells (speechft):  {b:.3f} s a sentence")
    print(f"  speed-up: {a / b:.2f}x")


if __name__ == "__main__":
    main()
