"""Worker for test_distributed.py: train a tiny Whisper a few steps and decode a manifest.

Run as a plain process or under torchrun/accelerate; rank 0 writes weights and hypotheses.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from speechft.cache import PrefixCaches
from speechft.config import load_config
from speechft.distributed import get_dist
from speechft.evaluate import evaluate
from speechft.manifest import read_manifest
from speechft.models.base import DecodeOptions
from speechft.models.whisper import WhisperAdapter
from speechft.train import Trainer


def main(model_dir: str, train: str, dev: str, test: str, cache: str, out: str) -> None:
    torch.set_num_threads(1)  # same kernels in every mode: results must match to 1e-5
    dist = get_dist()
    adapter = WhisperAdapter(WhisperForConditionalGeneration.from_pretrained(model_dir), WhisperProcessor.from_pretrained(model_dir))
    cfg = load_config(None, [f"data.train={train}", f"data.dev={dev}", f"data.test={test}", "train.epochs=3", "train.batch_size=4",
                             "train.lr=1e-2", "train.select_by=loss", "train.early_stopping_patience=100", "freeze.policy=lower:1",
                             "eval.batch_size=2", "eval.max_new_tokens=10"])
    caches = PrefixCaches(Path(cache), adapter, enabled=cfg.train.cache)
    result = Trainer(adapter, cfg, caches).fit(read_manifest(train), read_manifest(dev))
    res = evaluate(adapter, read_manifest(test), caches.for_units(result.plan.frozen_units), batch_size=2, options=DecodeOptions(max_new_tokens=10))
    if dist.is_main:
        save_file({n: p.detach().contiguous() for n, p in adapter.model.named_parameters()}, f"{out}.safetensors")
        Path(f"{out}.json").write_text(json.dumps({"wer": res.wer, "hyps": [u.hyp for u in res.utterances],
                                                    "steps": result.steps, "world": dist.world, "history": result.history}))


if __name__ == "__main__":
    main(*sys.argv[1:])
