"""The glibc heap policy: large freed blocks reused within a stage, handed back between stages."""

import subprocess
import sys

import pytest

# Encodes "a batch" twice (four layers' activations for 8 clips of 1500 frames: three 18 MB
# arrays and one 74 MB, freed after each layer) and counts the page faults of the second time.
SECOND_BATCH_FAULTS = """
import resource, sys
import numpy as np
from speechft.heap import reuse_large_blocks
if sys.argv[1] == "reuse":
    reuse_large_blocks()
def batch():
    for _ in range(4):
        q, k, v = (np.ones((8, 1500, 384), np.float32) for _ in range(3))
        h = np.ones((8, 1500, 1536), np.float32)
        del q, k, v, h
batch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
batch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES_TOUCHED = 4 * (3 * 8 * 1500 * 384 + 8 * 1500 * 1536) * 4 // 4096


def second_batch_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", SECOND_BATCH_FAULTS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_reuse_large_blocks_serves_the_next_batch_from_freed_memory():
    default = second_batch_faults("default")
    if default < PAGES_TOUCHED // 100:
        pytest.skip(f"this system's allocator already reuses the blocks ({default} page faults)")
    assert second_batch_faults("reuse") < PAGES_TOUCHED // 100  # here: 0, against about 9,000 by default


def test_release_free_memory_returns_freed_heap_to_the_system():
    """The stage log's 'after returning free heap' figure: blocks Python has freed inside the
    heap (here 100 MB of 8 KB buffers, every other one) go back to the system."""
    from speechft.heap import release_free_memory
    from speechft.recipe.runs import current_rss_mb

    buffers = [bytearray(8192) for _ in range(25_000)]
    del buffers[::2]  # freed, but between live blocks: glibc keeps them
    before = current_rss_mb()
    release_free_memory()
    assert before > 0
    assert before - current_rss_mb() >= 25  # MB
