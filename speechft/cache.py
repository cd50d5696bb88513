"""Frozen-prefix activation cache: compute the frozen lower part of the encoder once per utterance.

A frozen unit's output for a given audio never changes, so it is computed once (batched, no
grad), stored as fp16 .npy files (memory-mapped when read), and training runs only the rest.
Entries are keyed by the audio's content hash and a fingerprint of the frozen weights, the
prefix depth and the feature settings: change the audio or the model and they are recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .audio import file_sha1, load_audio
from .distributed import get_dist
from .manifest import Utterance

log = logging.getLogger(__name__)


def model_fingerprint(adapter, k: int) -> str:
    """Hash of what determines the prefix output: the frozen units' weights and feature settings."""
    from .freeze import encoder_units

    h = hashlib.sha1(f"{adapter.family}:k={k}".encode())
    h.update(json.dumps(adapter.feature_settings(), sort_keys=True, default=str).encode())
    params = dict(adapter.model.named_parameters())
    for unit in encoder_units(list(params), adapter.family)[:k]:
        for name in sorted(unit):
            h.update(name.encode())
            h.update(params[name].detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def encode_batch_size(device: torch.device | str) -> int:
    """Utterances per encoder call. On CPU one at a time is fastest: Whisper tiny.en's encoder
    on 2 cores took 0.29 s per clip alone, 0.36 s in batches of 8 and 0.45 s in batches of 32
    (larger activations fall out of the caches); GPUs want batches."""
    return 16 if torch.device(device).type == "cuda" else 1


class PrefixCache:
    """Per-utterance store of the lowest `k` encoder units' output for one model.

    Args:
        root: cache folder (shared between runs, so a second run of a recipe reuses it).
        adapter: the family adapter (WhisperAdapter, CTCAdapter).
        k: number of frozen encoder units (0 = cache the input features).
        enabled: False computes every request afresh (used when augmentation changes the audio).
    """

    def __init__(self, root: str | Path, adapter, k: int, batch_size: int | None = None, enabled: bool = True):
        self.adapter = adapter
        self.k = k
        self.batch_size = batch_size or encode_batch_size(next(adapter.model.parameters()).device)
        self.enabled = enabled
        self.dir = Path(root) / model_fingerprint(adapter, k) if enabled else None
        self._audio_keys: dict[str, str] = {}
        self.computed = 0  # entries computed by this instance (tests and logs read it)

    def _key(self, utt: Utterance) -> str:
        path = utt.audio_filepath
        stat = os.stat(path)
        memo = (path, stat.st_size, stat.st_mtime_ns)
        key = self._audio_keys.get(memo)
        if key is None:
            key = self._audio_keys[memo] = file_sha1(path)
        return key

    def _path(self, utt: Utterance) -> Path:
        return self.dir / f"{self._key(utt)}.npy"

    def _compute(self, utts: list[Utterance]) -> list[np.ndarray]:
        audios = [load_audio(u.audio_filepath) for u in utts]
        with torch.no_grad():
            out = self.adapter.prefix_batch(audios, self.k)
        return [o.to(torch.float16).cpu().numpy() for o in out]

    def build(self, utts: list[Utterance], desc: str = "cache") -> None:
        """Compute every missing entry, in batches sorted by duration (less padding).

        Collective when several processes run: each computes its share of the missing
        entries (distinct audio, so no two processes write the same file), then all wait.
        """
        if not self.enabled:
            return
        dist = get_dist()
        self._compute_missing(dist.shard(self._missing(utts)), desc, show=dist.is_main)
        dist.barrier()

    def _missing(self, utts: list[Utterance]) -> list[Utterance]:
        unique = {str(self._path(u)): u for u in utts}  # one entry per distinct audio content
        return sorted((u for p, u in unique.items() if not Path(p).exists()), key=lambda u: (u.duration or 0, u.id))

    def _compute_missing(self, missing: list[Utterance], desc: str, show: bool = True) -> None:
        if not missing:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        for i in tqdm(range(0, len(missing), self.batch_size), desc=desc, unit="batch", leave=False, disable=not show):
            batch = missing[i : i + self.batch_size]
            for utt, arr in zip(batch, self._compute(batch)):
                path = self._path(utt)
                tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.npy")
                np.save(tmp, arr)
                tmp.replace(path)  # atomic: a reader never sees a half-written entry
                self.computed += 1

    def get(self, utts: list[Utterance]) -> list[torch.Tensor]:
        """The prefix outputs (fp32 tensors) of `utts`, computing what is missing."""
        if not self.enabled:
            with torch.no_grad():
                return [t.cpu() for i in range(0, len(utts), self.batch_size)
                        for t in self.adapter.prefix_batch([load_audio(u.audio_filepath) for u in utts[i : i + self.batch_size]], self.k)]
        self._compute_missing(self._missing(utts), desc="cache")  # local: no collective here
        return [torch.from_numpy(np.load(self._path(u), mmap_mode="r").astype(np.float32)) for u in utts]


def encoder_unit_count(adapter) -> int:
    """How many units the whole encoder has: the depth of a cache of its output."""
    from .freeze import encoder_units

    return len(encoder_units([n for n, _ in adapter.model.named_parameters()], adapter.family))


def uncached(adapter) -> PrefixCache:
    """A full-precision encoder pass for every request, nothing stored: standalone decoding
    (`speechft eval`, the export's parity check) must not depend on a run's cache."""
    return PrefixCache("", adapter, encoder_unit_count(adapter), enabled=False)


class PrefixCaches:
    """The frozen-prefix caches of one model, one `PrefixCache` per prefix depth, made on first use.

    Built once by the recipe and shared by training and evaluation, so each depth's entries are
    found (and each audio file hashed) once per run, whatever stage gradual unfreezing is at.

    Args:
        root: cache folder (shared between runs).
        adapter: the family adapter.
        enabled: False computes every request afresh (train.cache=false).
    """

    def __init__(self, root: str | Path, adapter, enabled: bool = True):
        self.root = root
        self.adapter = adapter
        self.enabled = enabled
        self._by_depth: dict[int, PrefixCache] = {}

    def for_units(self, k: int) -> PrefixCache:
        """The cache of the lowest `k` encoder units' output."""
        if k not in self._by_depth:
            self._by_depth[k] = PrefixCache(self.root, self.adapter, k, enabled=self.enabled)
        return self._by_depth[k]
