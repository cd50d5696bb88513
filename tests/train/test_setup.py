"""Training set-up: parameter groups, step counts and the learning-rate schedule."""

import pytest
import torch

from speechft.config import TrainConfig
from speechft.train import FreezeSchedule
from speechft.train.setup import build_setup, deterministic_kernels, param_groups, step_counts, warmup_linear_decay


@pytest.mark.parametrize("policy", ["lower:1", "gradual", "encoder"])
def test_param_groups_hold_every_parameter_that_ever_trains_at_train_lr(tiny_adapter, tiny_cfg, policy):
    cfg = tiny_cfg(f"freeze.policy={policy}", "train.lr=3e-4", "train.warmup_ratio=0")
    model = tiny_adapter().model
    named = dict(model.named_parameters())
    ever = FreezeSchedule(cfg.freeze, "whisper").ever_trainable(list(named))
    groups = param_groups(model, ever, cfg.train)
    assert [g.lr for g in groups] == [3e-4]
    assert groups[0].names == [n for n in named if n in ever]  # the model's order
    assert all(p is named[n] for n, p in zip(groups[0].names, groups[0].params))
    if policy == "gradual":  # the last stage frees the whole encoder
        assert set(groups[0].names) == set(named)
    else:
        assert not any(n.startswith("model.encoder.layers.0.") for n in groups[0].names)
    setup = build_setup(groups, cfg.train, 8, next(model.parameters()).device, None)
    assert list(setup.trainable) == groups[0].names and setup.params == groups[0].params
    assert [g["lr"] for g in setup.optimizer.param_groups] == [3e-4]  # no warm-up: the full rate at step 0
    assert not setup.scaler.is_enabled()  # fp32 on CPU


def test_step_counts():
    assert step_counts(10, TrainConfig(epochs=3, batch_size=4, grad_accum=2)) == (2, 6)  # 3 batches -> 2 steps per epoch
    assert step_counts(10, TrainConfig(epochs=3, batch_size=4, grad_accum=2, max_steps=5)) == (2, 5)
    assert step_counts(10, TrainConfig(epochs=3, batch_size=4, max_steps=50)) == (3, 9)


def test_warmup_then_linear_decay():
    f = warmup_linear_decay(2, 10)
    assert [f(s) for s in (0, 1, 2, 6, 10, 12)] == [0.5, 1.0, 1.0, 0.5, 0.0, 0.0]
    assert warmup_linear_decay(0, 4)(0) == 1.0


def test_lr_decay_gives_each_encoder_block_below_the_decoder_a_smaller_rate(tiny_adapter, tiny_cfg):
    from speechft.train.setup import encoder_depth, param_groups

    adapter = tiny_adapter()
    names = [n for n, _ in adapter.model.named_parameters()]
    cfg = tiny_cfg("train.lr=1e-3", "train.lr_decay=0.5")
    groups = param_groups(adapter.model, set(names), cfg.train)
    lr_of = {n: g.lr for g in groups for n in g.names}
    assert sorted(lr_of) == sorted(names)  # every parameter once
    assert lr_of["model.decoder.layers.0.fc1.weight"] == lr_of["model.decoder.embed_tokens.weight"] == pytest.approx(1e-3)
    assert lr_of["model.encoder.layers.1.fc1.weight"] == pytest.approx(5e-4)  # the top block (of 2)
    assert lr_of["model.encoder.layer_norm.weight"] == pytest.approx(5e-4)  # the encoder's output norm sits on top
    assert lr_of["model.encoder.layers.0.fc1.weight"] == pytest.approx(2.5e-4)
    assert lr_of["model.encoder.conv1.weight"] == pytest.approx(1.25e-4)  # the stem, below every block
    assert encoder_depth("base_model.model.model.encoder.layers.1.self_attn.q_proj.lora_A.default.weight", 2) == 1  # peft names
    one = param_groups(adapter.model, set(names), tiny_cfg("train.lr=1e-3").train)
    assert len(one) == 1 and one[0].lr == 1e-3  # lr_decay 1: one group, as before


def test_deterministic_kernels_make_position_embedding_gradients_repeat_to_the_bit_on_cpu():
    # The decoder's position embeddings are an indexed lookup: each position is summed over the
    # batch, in a thread-dependent order unless torch's deterministic kernels are on.
    torch.manual_seed(0)
    weight = torch.randn(448, 64, requires_grad=True)
    positions = torch.arange(300).repeat(8, 1)
    upstream = torch.randn(8, 300, 64)

    def gradient():
        weight.grad = None
        (weight[positions] * upstream).sum().backward()
        return weight.grad.clone()

    flag = torch.are_deterministic_algorithms_enabled()
    with deterministic_kernels(torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled()
        first = gradient()
        assert all(torch.equal(first, gradient()) for _ in range(10))
    assert torch.are_deterministic_algorithms_enabled() == flag  # restored on the way out
    with deterministic_kernels(torch.device("meta")):  # not a CPU: left as it was
        assert torch.are_deterministic_algorithms_enabled() == flag
