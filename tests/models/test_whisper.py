"""WhisperAdapter: training targets and the reassociated cross-attention used in training."""

import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor
from transformers.modeling_outputs import BaseModelOutput

from speechft.models.whisper import IGNORE_INDEX, WhisperAdapter, _reassociated_cross_attention


@pytest.fixture
def adapter(tiny_whisper_dir):
    return WhisperAdapter(WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir), WhisperProcessor.from_pretrained(tiny_whisper_dir))


def test_targets_learn_text_and_end_only(adapter):
    inputs, labels = adapter.make_targets(["hello there", "hi"])
    assert inputs[0, 0].item() == adapter.prefix_ids[0]
    n_prefix = len(adapter.prefix_ids)
    assert (labels[:, : n_prefix - 1] == IGNORE_INDEX).all()
    assert labels[1].tolist().count(adapter.eot_id) == 1  # end-of-text is learned once
    assert inputs.shape[1] == len(adapter.target_ids("hello there")) - 1  # padded to the batch, not 448


def test_reassociated_cross_attention_matches_the_original(adapter):
    torch.manual_seed(0)
    model = adapter.model.train()
    enc = torch.randn(2, 1500, model.config.d_model)
    inputs, _ = adapter.make_targets(["give atorvastatin daily", "stop"])
    grads, outs = [], []
    for fast in (False, True):
        model.zero_grad()
        ctx = _reassociated_cross_attention(model) if fast else torch.enable_grad()
        with ctx:
            out = model(encoder_outputs=BaseModelOutput(last_hidden_state=enc), decoder_input_ids=inputs, use_cache=False).logits
        out.square().mean().backward()
        outs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if "encoder_attn" in n and p.grad is not None})
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-3, atol=1e-6, msg=name)
    assert "forward" not in vars(model.model.decoder.layers[0].encoder_attn)  # restored after the block
