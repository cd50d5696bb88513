"""Beam search on Whisper encoder outputs with CTranslate2 (`eval.num_beams` > 1).

transformers' beam search reorders the whole cross-attention cache (beams x 1500 frames x
layers) at every step: on 2 CPU cores, 4 beams decoded the medical test set 8x slower than
greedy search (162 s vs 20 s). CTranslate2, the engine of faster-whisper and of our export,
takes the encoder output we already have (from the activation cache) and runs the decoder's
beam search in C++: 4 beams over the same set took 20 s.

The CTranslate2 copy is converted from the live model in float32 (no quantization) and
converted again whenever the weights change (training, weight interpolation), so it always
decodes the model being evaluated.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np
import torch


def weights_checksum(model: torch.nn.Module) -> torch.Tensor:
    """Per-tensor sums and sums of squares (float64): changes whenever a weight changes.

    Tensor version counters would be cheaper but fused optimizers update weights without
    bumping them.
    """
    with torch.no_grad():
        return torch.stack([torch.stack([p.double().sum(), p.double().square().sum()]) for p in model.parameters()]).cpu()


class CT2BeamDecoder:
    """CTranslate2 beam search for a WhisperAdapter's model, rebuilt when its weights change."""

    def __init__(self, adapter):
        self.adapter = adapter
        self._checksum: torch.Tensor | None = None
        self._device: str | None = None
        self._model = None
        self._holding = False  # inside weights_held()
        self._checked = False  # ... and the weights were checked in this block
        self.conversions = 0  # how many times the weights were converted (tests read it)

    @contextlib.contextmanager
    def weights_held(self):
        """Within: the weights are checked on the first decode only (the caller does not change
        them; evaluate.transcribe holds them over a whole manifest)."""
        outer = self._holding, self._checked
        self._holding, self._checked = True, False
        try:
            yield
        finally:
            self._holding, self._checked = outer

    def _current(self, device: str):
        if self._checked and device == self._device:
            return self._model
        checksum = weights_checksum(self.adapter.model)
        if self._model is None or device != self._device or not torch.equal(checksum, self._checksum):
            import ctranslate2

            from .convert import convert_to_ct2
            from .runtime import cpu_threads, torch_threads_kept

            with tempfile.TemporaryDirectory(prefix="speechft-ct2-") as tmp:
                self.adapter.save(Path(tmp) / "hf")
                convert_to_ct2(Path(tmp) / "hf", Path(tmp) / "ct2", "float32")
                # The weights are read into memory here, so the folder can go.
                # On the CPU, one single-threaded replica per core: a call's small decoder matrices
                # keep one core busy, not two, so two calls at once decode faster (benchmarks/README.md).
                cpu = device == "cpu"
                with torch_threads_kept():
                    self._model = ctranslate2.models.Whisper(str(Path(tmp) / "ct2"), device=device, compute_type="float32",
                                                             intra_threads=1 if cpu else 0,
                                                             inter_threads=cpu_threads() if cpu else 1)
            self._checksum, self._device = checksum, device
            self.conversions += 1
        self._checked = self._holding
        return self._model

    def decode(self, enc: torch.Tensor, prefix: list[int], num_beams: int, max_new_tokens: int) -> list[list[int]]:
        """Token ids after `prefix` for each encoder output in the batch [B, frames, d_model].

        `prefix` is what the decoder is given (an optional <|startofprev|> prompt, then the
        start-of-transcript tokens); suppression follows the model's generation config, as
        transformers' generate does.
        """
        import ctranslate2

        device = "cuda" if enc.is_cuda else "cpu"
        model = self._current(device)
        features = enc.detach().float().contiguous()
        n = features.shape[0]
        per_call = utterances_per_call(features.shape, self.adapter.model.config.decoder_layers, num_beams, model.num_workers)
        calls = -(-n // per_call)
        # Even calls (16 utterances at 5 a call: 4+4+4+4, not 5+5+5+1), all submitted at once so
        # that every replica has work; the results come back in order.
        bounds = [round(i * n / calls) for i in range(calls + 1)]
        storages, pending = [], []  # a StorageView borrows its array: both must outlive the call
        for start, stop in zip(bounds, bounds[1:]):
            part = features[start:stop] if device == "cuda" else np.ascontiguousarray(features[start:stop].numpy())
            storages.append((part, ctranslate2.StorageView.from_array(part)))
            pending += model.generate(storages[-1][1], [prefix] * part.shape[0], beam_size=num_beams,
                                      max_length=len(prefix) + max_new_tokens, asynchronous=True)
        return [r.result().sequences_ids[0] for r in pending]


# Beam search keeps each beam's own copy of the cross-attention keys and values (decoder layers x
# 2 x frames x d_model floats; tiny.en: 18 MB a beam). 16 utterances x 5 beams held 1.5 GB and set
# the recipes' peak memory; within this budget the calls running at once (one per replica) hold at
# most ~0.75 GB together, and on 2 CPU cores larger calls decode no faster (benchmarks/README.md).
CROSS_ATTENTION_BUDGET_BYTES = 768 * 2**20


def utterances_per_call(enc_shape, decoder_layers: int, num_beams: int, concurrent: int = 1) -> int:
    """How many utterances one CTranslate2 generate call may take: the beams' cross-attention
    caches of `concurrent` such calls fit CROSS_ATTENTION_BUDGET_BYTES (at least one utterance)."""
    _, frames, d_model = enc_shape
    per_beam = decoder_layers * 2 * frames * d_model * 4  # float32
    return max(1, CROSS_ATTENTION_BUDGET_BYTES // (per_beam * max(1, num_beams) * max(1, concurrent)))
