"""Freezing on the real Whisper tiny.en: `lower: 2` trains only what it should."""

import pytest
import torch

from speechft.config import load_config
from speechft.manifest import read_manifest
from speechft.models.adapters import adapter_for
from speechft.models.registry import load_model
from speechft.train import Trainer


@pytest.mark.slow
def test_lower_2_on_tiny_en_freezes_stem_positions_and_two_blocks(tiny_dataset, tmp_path):
    cfg = load_config(None, [f"data.train={tiny_dataset['train']}", f"data.dev={tiny_dataset['dev']}", f"data.test={tiny_dataset['test']}",
                             "freeze.policy=lower:2", "train.max_steps=2", "train.epochs=1", "train.batch_size=4",
                             "train.select_by=loss", "train.lr=1e-3", "train.checkpoint_every=0", "eval.batch_size=4"])
    adapter = adapter_for(load_model("whisper-tiny.en"), cfg.model)
    model = adapter.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = Trainer(adapter, cfg, tmp_path / "cache")
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    expected = {n for n in before if n.startswith(("model.encoder.conv1.", "model.encoder.conv2.", "model.encoder.embed_positions.",
                                                   "model.encoder.layers.0.", "model.encoder.layers.1."))}
    assert frozen == expected
    trainer.fit(read_manifest(tiny_dataset["train"]), read_manifest(tiny_dataset["dev"]))
    after = dict(model.named_parameters())
    for n in expected:
        assert torch.equal(before[n], after[n].detach()), n
    assert not torch.equal(before["model.encoder.layers.2.fc1.weight"], after["model.encoder.layers.2.fc1.weight"].detach())
