"""Whisper family: features, frozen-prefix forward, training targets, loss and decoding."""

from __future__ import annotations

import contextlib
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import BaseModelOutput

from ..audio import SAMPLE_RATE, WHISPER_MAX_SECONDS
from ..text import written_form

IGNORE_INDEX = -100  # label positions excluded from the loss
MAX_PROMPT_TOKENS = 223  # Whisper: prompt + prefix must fit half of the 448-token context
# Up to this many decoder tokens, cross-attention is cheaper reassociated (see
# _reassociated_cross_attention); measured break-even on tiny.en: ~70 tokens (benchmarks/README.md).
REASSOCIATE_MAX_TOKENS = 48


def _reassociated_forward(self, hidden_states, key_value_states=None, cache=None, attention_mask=None,
                          output_attentions=False, **kwargs):
    """Cross-attention as softmax((q Wk) E^T) E Wv^T + bv: the same function as projecting all
    1500 encoder frames to keys and values, at a cost linear in the (short) target length."""
    if key_value_states is None or cache is not None or attention_mask is not None or output_attentions:
        return type(self).forward(self, hidden_states, key_value_states=key_value_states, cache=cache,
                                  attention_mask=attention_mask, output_attentions=output_attentions, **kwargs)
    b, t, c = hidden_states.shape
    h, d = self.num_heads, self.head_dim
    enc = key_value_states
    q = (self.q_proj(hidden_states) * self.scaling).view(b, t, h, d).transpose(1, 2)  # B H T d
    qk = torch.einsum("bhtd,hdc->bhtc", q, self.k_proj.weight.view(h, d, c))  # B H T C (k_proj has no bias)
    scores = torch.matmul(qk.reshape(b, h * t, c), enc.transpose(1, 2)).view(b, h, t, -1)  # B H T S
    probs = F.dropout(scores.softmax(-1), p=self.dropout, training=self.training)
    pe = torch.matmul(probs.view(b, h * t, -1), enc).view(b, h, t, c)  # B H T C
    # Rows of probs sum to 1, so the value bias passes through unchanged.
    out = torch.einsum("bhtc,hdc->bhtd", pe, self.v_proj.weight.view(h, d, c)) + self.v_proj.bias.view(1, h, 1, d)
    return self.out_proj(out.transpose(1, 2).reshape(b, t, c)), None


@contextlib.contextmanager
def _reassociated_cross_attention(model):
    """Use _reassociated_forward in every decoder cross-attention for the duration."""
    modules = [layer.encoder_attn for layer in model.model.decoder.layers]
    for m in modules:
        m.forward = types.MethodType(_reassociated_forward, m)
    try:
        yield
    finally:
        for m in modules:
            del m.forward  # back to the class's forward


class WhisperAdapter:
    """Everything the trainer and evaluator need from a Whisper model.

    The encoder is split into units (see freeze.py): `prefix(features, k)` runs the first k
    units, `encode_rest(hidden, k)` the others, so a frozen prefix can be cached.
    """

    family = "whisper"
    # Random batches (length_batches pools of one batch): the encoder input is always 30 s, and
    # grouping by text length saves little decoder padding (medical train, batch 16: 1.19 padded
    # per real target token grouped, 1.31 random), while on a small set it fixes who shares a
    # batch, which slowed learning (benchmarks/README.md: final dev loss 12% worse than the
    # Trainer's with grouping, 1.7% without).
    length_sort_pool = 1

    def __init__(self, model, processor, language: str | None = "en", task: str = "transcribe", numbers_as_digits: bool = True):
        self.model = model
        self.numbers_as_digits = numbers_as_digits
        self.processor = processor
        self.tokenizer = processor.tokenizer
        gen = model.generation_config
        self.multilingual = bool(getattr(gen, "is_multilingual", False))
        self.language = language if self.multilingual else None
        self.task = task if self.multilingual else None
        # Written into the generation config so that training targets, evaluation and the
        # saved model all decode the same way (no timestamps, fixed language and task).
        gen.return_timestamps = False
        if self.multilingual:
            gen.language = self.language
            gen.task = self.task
        self.tokenizer.set_prefix_tokens(language=self.language, task=self.task, predict_timestamps=False)
        self.prefix_ids = self.tokenizer.prefix_tokens
        self.eot_id = self.tokenizer.eos_token_id
        self.n_layers = model.config.encoder_layers
        self.max_target_tokens = model.config.max_target_positions
        self._beam_decoder = None  # CT2BeamDecoder, made on the first beam search

    def limits(self, data_cfg):
        """What this model can take, for manifest validation."""
        from ..validate import Limits

        return Limits(
            max_seconds=min(data_cfg.max_seconds, WHISPER_MAX_SECONDS),
            max_label_tokens=self.max_target_tokens,
            count_tokens=self.count_tokens,
            root=Path(data_cfg.root) if data_cfg.root else None,
        )

    def decode_options(self, eval_cfg) -> dict:
        """Decoder settings from the recipe's eval section."""
        return {"num_beams": eval_cfg.num_beams, "max_new_tokens": eval_cfg.max_new_tokens}

    def zero_training_baselines(self, terms: list[str], eval_cfg) -> dict[str, dict]:
        """The baseline to beat without training: the domain terms as a decoding prompt."""
        return {"prompted": {"prompt": ", ".join(terms[: eval_cfg.max_prompt_terms])}}

    # ---- features and the encoder, unit by unit -------------------------------------------------
    def features(self, audios: list) -> torch.Tensor:
        """Log-mel features [B, n_mels, 3000]; the waveform is padded to 30 s as in training."""
        out = self.processor.feature_extractor(audios, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return out.input_features

    @torch.no_grad()
    def prefix(self, features: torch.Tensor, k: int) -> torch.Tensor:
        """Output of the lowest k encoder units (k=0: the features themselves)."""
        return self._run_units(features, 0, k)

    def prefix_batch(self, audios: list, k: int) -> list[torch.Tensor]:
        """Per-utterance prefix outputs (what the activation cache stores)."""
        return list(self.prefix(self.features(audios), k))

    def collate(self, hiddens: list[torch.Tensor], device=None) -> torch.Tensor:
        """Batch per-utterance prefix outputs (all the same shape: Whisper pads to 30 s)."""
        return torch.stack(hiddens).to(device or "cpu")

    def encode_rest(self, hidden: torch.Tensor, k: int) -> torch.Tensor:
        """Encoder output from the output of the lowest k units."""
        return self._run_units(hidden, k, self.n_layers + 1)

    def _run_units(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        enc = self.model.model.encoder
        x = x.to(enc.conv1.weight.device)
        stop = min(stop, self.n_layers + 1)
        if start == 0 and stop >= 1:  # unit 0: conv stem + positions
            x = F.gelu(enc.conv1(x.to(enc.conv1.weight.dtype)))
            x = F.gelu(enc.conv2(x)).permute(0, 2, 1)
            x = x + enc.embed_positions.weight[: x.shape[1]]
            x = F.dropout(x, p=enc.dropout, training=enc.training)
        for i in range(max(start, 1), stop):  # unit i: encoder block i-1 (+ final norm on top)
            x = enc.layers[i - 1](x, None)
            if i == self.n_layers:
                x = enc.layer_norm(x)
        return x

    def encode(self, audios: list) -> torch.Tensor:
        return self.encode_rest(self.prefix(self.features(audios), 1), 1)

    @torch.no_grad()
    def transcribe_audio(self, audios: list, **decode) -> list[str]:
        """Transcribe 16 kHz mono waveforms (used by `speechft transcribe`)."""
        self.model.eval()
        return self.transcribe_encoded(self.encode(audios), **decode)

    def prepare_for_training(self, train_texts: list[str]) -> None:
        """Whisper's byte-level tokenizer covers any text: nothing to adjust in the output layer."""
        return None

    # ---- training ---------------------------------------------------------------------------------
    def target_ids(self, text: str) -> list[int]:
        """Prefix + text + end-of-text, as the decoder must produce it (text starts with a space)."""
        text = written_form(text) if self.numbers_as_digits else text
        return self.prefix_ids + self.tokenizer.encode(" " + text.strip(), add_special_tokens=False) + [self.eot_id]

    def count_tokens(self, text: str) -> int:
        return len(self.target_ids(text))

    def make_targets(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """decoder_input_ids and labels, padded to the longest in the batch (not to 448)."""
        seqs = [self.target_ids(t) for t in texts]
        width = max(len(s) for s in seqs) - 1
        inputs = torch.full((len(seqs), width), self.eot_id, dtype=torch.long)
        labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
        n_prefix = len(self.prefix_ids)
        for i, s in enumerate(seqs):
            inputs[i, : len(s) - 1] = torch.tensor(s[:-1])
            # The prefix is given, not learned: loss on text tokens and end-of-text only.
            labels[i, n_prefix - 1 : len(s) - 1] = torch.tensor(s[n_prefix:])
        return inputs, labels

    def loss(self, hidden: torch.Tensor, k: int, texts: list[str]) -> tuple[torch.Tensor, int]:
        """Mean token cross-entropy from the output of the lowest k units; returns (loss, n_tokens)."""
        enc = self.encode_rest(hidden, k)
        inputs, labels = self.make_targets(texts)
        device = enc.device
        short = inputs.shape[1] <= REASSOCIATE_MAX_TOKENS
        with _reassociated_cross_attention(self.model) if short else contextlib.nullcontext():
            # use_cache=False: transformers keeps a KV cache in training otherwise (copies per layer).
            out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=enc), decoder_input_ids=inputs.to(device),
                             use_cache=False)
        labels = labels.to(device)
        n_tokens = int((labels != IGNORE_INDEX).sum())
        logits = out.logits.float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)
        return loss, n_tokens

    # ---- decoding ---------------------------------------------------------------------------------
    def prompt_ids(self, prompt: str) -> torch.Tensor:
        """Token ids for a decoding prompt, cut to Whisper's prompt budget."""
        ids = self.tokenizer.encode(" " + prompt.strip(), add_special_tokens=False)[: MAX_PROMPT_TOKENS - 1]
        return torch.tensor([self.tokenizer.convert_tokens_to_ids("<|startofprev|>")] + ids)

    @torch.no_grad()
    def transcribe_hidden(self, hidden: torch.Tensor, k: int, **kwargs) -> list[str]:
        """Decode from the output of the lowest k encoder units."""
        return self.transcribe_encoded(self.encode_rest(hidden, k), **kwargs)

    @torch.no_grad()
    def transcribe_encoded(self, enc: torch.Tensor, prompt: str | None = None, num_beams: int = 1, max_new_tokens: int = 128) -> list[str]:
        """Decode a batch of encoder outputs to text: greedy with transformers' generate, beam
        search (num_beams > 1) with CTranslate2 on the same encoder output (ct2_decode.py)."""
        if num_beams > 1:
            from .ct2_decode import CT2BeamDecoder

            if self._beam_decoder is None:
                self._beam_decoder = CT2BeamDecoder(self)
            prefix = (self.prompt_ids(prompt).tolist() if prompt else []) + list(self.prefix_ids)
            seqs = self._beam_decoder.decode(enc, prefix, num_beams, max_new_tokens)
        else:
            kwargs = dict(max_new_tokens=max_new_tokens, return_timestamps=False)
            if self.multilingual:
                kwargs.update(language=self.language, task=self.task)
            if prompt:
                kwargs["prompt_ids"] = self.prompt_ids(prompt).to(enc.device)
            out = self.model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=enc), **kwargs)
            seqs = out.sequences if hasattr(out, "sequences") else out
        return [t.strip() for t in self.tokenizer.batch_decode(seqs, skip_special_tokens=True)]

    def save(self, out_dir) -> None:
        """save_pretrained for model and processor, plus preprocessor_config.json, which
        transformers 5 folds into processor_config.json but faster-whisper and CT2 tools read."""
        self.model.save_pretrained(out_dir)
        self.processor.save_pretrained(out_dir)
        self.processor.feature_extractor.save_pretrained(out_dir)
