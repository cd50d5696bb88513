"""precision.py and training's autocast: bf16 only where it pays, and what it does to the frozen encoder."""

import pytest
import torch

from speechft import precision
from speechft.train.setup import amp_dtype, precision_name


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_only_on_a_cpu_with_native_bf16(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.resolve_precision("auto") == ("bf16" if native else "fp32")
    assert precision.resolve_precision("fp32") == "fp32"
    # Training on the CPU: fp32 unless bf16 is asked for (it cost memory and dev WER: amp_dtype).
    assert amp_dtype(torch.device("cpu"), "auto") is None and amp_dtype(torch.device("cpu"), "fp32") is None
    assert amp_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    assert amp_dtype(torch.device("cpu"), "fp16") is None  # no fp16 autocast on the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert precision.resolve_precision("auto") == "fp32"  # a GPU machine: the frozen encoder stays fp32


def test_precision_names():
    assert [precision_name(d) for d in (None, torch.bfloat16, torch.float16)] == ["fp32", "bf16", "fp16"]


def test_the_bf16_frozen_encoder_is_close_to_fp32_deterministic_and_returned_in_fp32(tiny_whisper_dir):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from speechft.models.whisper import WhisperAdapter

    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir).eval()
    processor = WhisperProcessor.from_pretrained(tiny_whisper_dir)
    fp32, bf16 = (WhisperAdapter(model, processor, feature_padding="logmel", encoder_precision=p) for p in ("fp32", "bf16"))
    audio = torch.sin(torch.arange(16000 * 2) * 0.05).numpy() * 0.3
    features = fp32.features([audio])
    full, low = fp32.prefix(features, fp32.n_layers + 1), bf16.prefix(features, bf16.n_layers + 1)
    assert low.dtype == torch.float32 and low.shape == full.shape
    assert not torch.equal(low, full)  # it did compute in bf16 ...
    # ... to bf16's precision (8 significant bits, relative error ~2^-8 per operation)
    assert float((low - full).norm() / full.norm()) < 0.05
    assert torch.equal(bf16.prefix(features, bf16.n_layers + 1), low)  # the same numbers every time
    assert torch.equal(bf16.encode([audio]), low)  # inference's encoder output is the cached one's
