"""The encoder with glibc's default heap policy against speechft's (speechft/heap.py).

Each policy runs in its own process (a heap policy is process-wide): Whisper's encoder over
`--batches` batches of `--batch` random 30-s inputs, after one warm-up batch. Prints seconds per
clip, page faults and kernel time for each, and the ratio.

    python benchmarks/heap_reuse.py [--model whisper-tiny.en] [--batch 16] [--batches 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

WORKER = """
import json, resource, sys, time
import torch
from speechft.heap import reuse_large_blocks
from speechft.models.registry import resolve_model
from transformers import WhisperForConditionalGeneration
model, policy, batch, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if policy == "speechft":
    reuse_large_blocks()
encoder = WhisperForConditionalGeneration.from_pretrained(resolve_model(model)).eval().model.encoder
x = torch.randn(batch, 80, 3000, generator=torch.Generator().manual_seed(0))
with torch.inference_mode():
    encoder(x)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(batches):
        encoder(x)
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(per_clip=seconds / (batch * batches), faults=after.ru_minflt - before.ru_minflt,
                      kernel=after.ru_stime - before.ru_stime, peak_rss_mb=after.ru_maxrss / 1024)))
"""


def measure(model: str, policy: str, batch: int, batches: int) -> dict:
    done = subprocess.run([sys.executable, "-c", WORKER, model, policy, str(batch), str(batches)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="whisper-tiny.en")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=3)
    args = ap.parse_args()
    rows = {policy: measure(args.model, policy, args.batch, args.batches) for policy in ("glibc default", "speechft")}
    print(f"{args.model}, {args.batches} batches of {args.batch} clips after a warm-up batch")
    print(f"{'heap policy':<15} {'s/clip':>7} {'page faults':>12} {'kernel s':>9} {'peak RSS MB':>12}")
    for policy, r in rows.items():
        print(f"{policy:<15} {r['per_clip']:7.3f} {r['faults']:12,d} {r['kernel']:9.2f} {r['peak_rss_mb']:12.0f}")
    print(f"speedup: {rows['glibc default']['per_clip'] / rows['speechft']['per_clip']:.2f}x")


if __name__ == "__main__":
    main()
