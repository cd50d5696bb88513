"""WiSE-FT weight interpolation: the pure function, and the trainer's final weights."""

import pytest
import torch

from speechft.config import load_config
from speechft.errors import SpeechftError
from speechft.train import Trainer, interpolate


def _tensors(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"layer.weight": torch.randn(5, 3, generator=g), "layer.bias": torch.randn(7, generator=g)}


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.75, 1.0])
def test_interpolate_is_the_formula_and_leaves_its_inputs_alone(alpha):
    trained, start = _tensors(0), _tensors(1)
    kept = ({n: t.clone() for n, t in trained.items()}, {n: t.clone() for n, t in start.items()})
    mixed = interpolate(trained, start, alpha)
    assert mixed.keys() == trained.keys()
    for n in trained:
        torch.testing.assert_close(mixed[n], alpha * trained[n] + (1 - alpha) * start[n], rtol=0, atol=1e-6)
        assert mixed[n] is not trained[n] and mixed[n] is not start[n]
        assert torch.equal(trained[n], kept[0][n]) and torch.equal(start[n], kept[1][n])
    if alpha in (0.0, 1.0):  # the ends give one side back exactly
        for n in trained:
            assert torch.equal(mixed[n], (trained if alpha == 1.0 else start)[n])


def test_interpolate_refuses_other_names_shapes_or_alpha():
    trained, start = _tensors(0), _tensors(1)
    with pytest.raises(ValueError, match="names"):
        interpolate(trained, {"layer.weight": start["layer.weight"]}, 0.5)
    with pytest.raises(ValueError, match="layer.bias"):
        interpolate(trained, {**start, "layer.bias": torch.zeros(6)}, 0.5)
    with pytest.raises(ValueError, match="alpha"):
        interpolate(trained, start, 1.5)


def _fit(tiny_adapter, tiny_cfg, train_dev, tmp_path, *overrides):
    cfg = tiny_cfg("train.epochs=2", "train.batch_size=2", "train.lr=1e-2", "train.select_by=loss",
                   "train.early_stopping_patience=10", "train.checkpoint_every=0", "freeze.policy=lower:1", *overrides)
    adapter = tiny_adapter()
    model = adapter.model
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    Trainer(adapter, cfg, tmp_path / "cache").fit(*train_dev)
    return start, {n: p.detach().clone() for n, p in model.named_parameters()}


def test_weight_interpolation_mixes_trained_and_starting_weights(tiny_adapter, tiny_cfg, train_dev, tmp_path):
    start, trained = _fit(tiny_adapter, tiny_cfg, train_dev, tmp_path)
    _, mixed = _fit(tiny_adapter, tiny_cfg, train_dev, tmp_path, "train.weight_interpolation=0.25")
    moved = [n for n in start if not torch.equal(start[n], trained[n])]
    assert moved  # training changed something, so the check below is not vacuous
    for n in start:
        torch.testing.assert_close(mixed[n], 0.25 * trained[n] + 0.75 * start[n], rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.2"])
def test_weight_interpolation_outside_0_1_is_refused(bad):
    with pytest.raises(SpeechftError, match="weight_interpolation"):
        load_config(None, [f"train.weight_interpolation={bad}"])
