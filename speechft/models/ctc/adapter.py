"""wav2vec2 family (AutoModelForCTC): waveform, frozen-prefix forward, CTC loss, vocabulary and decoding.

Covers Wav2Vec2ForCTC, HubertForCTC, WavLMForCTC and Data2VecAudioForCTC: they share the
layout base model (CNN `feature_extractor`, `feature_projection`, `encoder` with
`pos_conv_embed`, `layer_norm` and `layers`) + `dropout` + `lm_head`, found through
`model.base_model`. The encoder is split into the units of freeze.py, bottom-up:
unit 0 the CNN, unit 1 the projection (with positional conv and, post-LN models, the encoder
norm), unit 2+i block i (the top block carries a pre-LN model's final norm).

Each utterance's prefix is computed alone, without padding, so that it equals the model's own
batch-of-one forward: group-norm CNNs (wav2vec2-base) normalise over the whole waveform, which
padding would change. In a padded batch the blocks get a frame mask, so batching never changes
an utterance's output either.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...audio import SAMPLE_RATE
from ...errors import SpeechftError
from ...text import spoken_form
from ..base import DecodeOptions, TrainTarget, refuse_options
from .decoding import HOTWORD_MIN_BEAMS, ctc_beam_decode, ctc_greedy_decode

log = logging.getLogger(__name__)

SUPPRESSED_LOGIT = -1e4  # logit given to <s>, </s>, <unk>: the CTC head never should emit them
NEW_ROW_NOISE = 0.01  # new output rows: mean of the old rows + this fraction of their std as noise
NEW_ROW_SEED = 0  # new rows are reproducible
PRIVATE_USE = 0xE000  # Unicode private-use area: labels of ids that are never emitted
# Options of DecodeOptions that only Whisper decoding uses (max_new_tokens is harmless: a CTC
# output has one symbol per frame at most).
UNSUPPORTED_OPTIONS = {"prompt", "language"}


def receptive_field(kernels, strides) -> int:
    """Samples one CNN output frame sees (the shortest input that yields a frame)."""
    field, jump = 1, 1
    for k, s in zip(kernels, strides):
        field += (k - 1) * jump
        jump *= s
    return field


def conv_lengths(lengths: torch.Tensor, kernels, strides) -> torch.Tensor:
    """Frames the CNN makes from `lengths` samples (torch.nn.Conv1d without padding)."""
    for k, s in zip(kernels, strides):
        lengths = torch.div(lengths - k, s, rounding_mode="floor") + 1
    return lengths


@dataclass
class CTCBatch:
    """Padded unit outputs ([B, samples] at unit 0, else [B, frames, dim]) and true lengths."""

    values: torch.Tensor
    lengths: torch.Tensor  # int64, on the CPU


@contextlib.contextmanager
def _eval_mode(model):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class CTCAdapter:
    """Everything the trainer and evaluator need from an AutoModelForCTC model (see module docstring).

    Decoding options (transcribe_hidden / transcribe_audio): num_beams (1 = greedy), hotwords,
    hotword_weight, kenlm_model (path of an .arpa/.bin n-gram in the model's case), lm_alpha, lm_beta.
    """

    family = "ctc"
    length_sort_pool = 8  # batches per length-sorted pool: audio padding dominates a CTC step
    encoder_precision = "fp32"  # model.encoder_precision applies to Whisper only

    def __init__(self, model, processor):
        self.model = model
        self.processor = processor
        self.base = model.base_model
        cfg = model.config
        if getattr(cfg, "add_adapter", False):
            raise SpeechftError("CTC models with `add_adapter=True` (strided adapter on top) are not supported. "
                                "Fix: use a plain wav2vec2/HuBERT/WavLM/data2vec-audio CTC checkpoint")
        self.kernels, self.strides = list(cfg.conv_kernel), list(cfg.conv_stride)
        self.rf_samples = receptive_field(self.kernels, self.strides)
        # data2vec-audio has no feat_extract_norm setting: look for the GroupNorm itself.
        self.group_norm = any(isinstance(m, torch.nn.GroupNorm) for m in self.base.feature_extractor.modules())
        self.stable_ln = bool(getattr(cfg, "do_stable_layer_norm", False))  # pre-LN: encoder norm on top
        self.stacked_pos_conv = isinstance(getattr(self.base.encoder.pos_conv_embed, "layers", None), torch.nn.ModuleList)
        self.n_layers = len(self.base.encoder.layers)
        self.n_units = 2 + self.n_layers
        # WavLM blocks thread a relative position bias from block 0 to the others.
        self.position_bias = "position_bias" in inspect.signature(type(self.base.encoder.layers[0]).forward).parameters
        self._read_vocab()

    # ---- vocabulary ----------------------------------------------------------------------------
    def _read_vocab(self) -> None:
        tok = self.tokenizer = self.processor.tokenizer
        vocab = tok.get_vocab()
        self.blank_id = self.model.config.pad_token_id if self.model.config.pad_token_id is not None else tok.pad_token_id
        delim = getattr(tok, "word_delimiter_token", None) or " "
        if delim not in vocab:
            raise SpeechftError(f"the CTC tokenizer has no word delimiter ({delim!r}). Fix: use a character CTC model (wav2vec2 style)")
        self.delim_id = vocab[delim]
        special = set(tok.all_special_ids)
        self.char_ids = {t: i for t, i in vocab.items() if len(t) == 1 and i not in special and i != self.delim_id}
        letters = [c for c in self.char_ids if c.isalpha()]
        self.upper = any(c.isupper() for c in letters) and not any(c.islower() for c in letters)
        n_out = self.model.lm_head.out_features
        by_id = {i: t for t, i in self.char_ids.items()} | {self.blank_id: "", self.delim_id: " "}
        self.suppressed = [i for i in range(n_out) if i not in by_id]
        # pyctcdecode wants unique one-character labels: never-emitted ids get private-use characters.
        self.labels = [by_id.get(i, chr(PRIVATE_USE + i)) for i in range(n_out)]

    def target_text(self, text: str) -> str:
        """The spoken form in the model's case (wav2vec2-base-960h: upper case). Not the scoring
        normaliser: it writes numbers as digits, which a letter vocabulary cannot spell."""
        spoken = spoken_form(text)
        return spoken.upper() if self.upper else spoken

    def target_ids(self, text: str) -> list[int]:
        """CTC labels; symbols outside the vocabulary are left out (prepare_for_training adds them)."""
        out = []
        for c in self.target_text(text):
            i = self.delim_id if c == " " else self.char_ids.get(c)
            if i is not None:
                out.append(i)
        return out

    def prepare_for_training(self, train_texts: list[str]) -> dict:
        """Fit the output layer to the training text's characters.

        Symbols the pretrained vocabulary lacks are appended to the tokenizer and to lm_head (old
        rows copied bit for bit, new rows near the mean of the old ones); config.vocab_size follows.

        Returns:
            {"added": symbols appended, "unused": vocabulary symbols the training text never uses}
        """
        used = set("".join(self.target_text(t) for t in train_texts)) - {" "}
        added, unused = sorted(used - set(self.char_ids)), sorted(set(self.char_ids) - used)
        if added:
            self._extend_vocab(added)
            log.info("CTC vocabulary extended by %s (lm_head %d -> %d rows)", added, len(self.labels) - len(added), len(self.labels))
        return {"added": added, "unused": unused}

    def _extend_vocab(self, symbols: list[str]) -> None:
        from transformers import Wav2Vec2CTCTokenizer

        tok = self.tokenizer
        if not isinstance(tok, Wav2Vec2CTCTokenizer) or getattr(tok, "target_lang", None):
            raise SpeechftError(f"cannot add {symbols} to a {type(tok).__name__} (only single-language Wav2Vec2CTCTokenizer). "
                                "Fix: spell the symbols out in the transcripts")
        old = self.model.lm_head
        n_old = old.out_features
        vocab = dict(tok.encoder)
        next_id = max(n_old, max(vocab.values()) + 1)
        for i, s in enumerate(symbols):
            vocab[s] = next_id + i
        with tempfile.TemporaryDirectory() as tmp:  # the tokenizer reads vocab.json in __init__
            path = Path(tmp) / "vocab.json"
            path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
            new_tok = Wav2Vec2CTCTokenizer(str(path), bos_token=tok.bos_token, eos_token=tok.eos_token, unk_token=tok.unk_token,
                                           pad_token=tok.pad_token, word_delimiter_token=tok.word_delimiter_token,
                                           replace_word_delimiter_char=tok.replace_word_delimiter_char, do_lower_case=tok.do_lower_case)
        n_new = next_id + len(symbols)
        head = torch.nn.Linear(old.in_features, n_new, bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype)
        gen = torch.Generator().manual_seed(NEW_ROW_SEED)
        with torch.no_grad():
            w = old.weight.float()
            noise = torch.randn(n_new - n_old, old.in_features, generator=gen) * NEW_ROW_NOISE * float(w.std())
            head.weight[n_old:] = (w.mean(0, keepdim=True).cpu() + noise).to(head.weight)
            head.weight[:n_old] = old.weight
            if old.bias is not None:
                head.bias[n_old:] = old.bias.float().mean().to(head.bias.dtype)
                head.bias[:n_old] = old.bias
        self.model.lm_head = head
        self.model.config.vocab_size = n_new
        self.processor.tokenizer = new_tok
        self._read_vocab()

    def feature_settings(self) -> dict:
        """What determines the features besides the audio (the activation cache's key hashes it)."""
        return self.processor.feature_extractor.to_dict()

    # ---- limits --------------------------------------------------------------------------------
    def limits(self, data_cfg):
        """Limits for training runs: no vocabulary check (prepare_for_training extends the vocabulary)."""
        from ...validate import Limits

        return Limits(max_seconds=data_cfg.max_seconds, min_seconds=self.rf_samples / SAMPLE_RATE,
                      root=Path(data_cfg.root) if data_cfg.root else None)

    def validation_limits(self, data_cfg):
        """Limits with the model's character vocabulary (normalised, lower case), for `speechft validate --model`."""
        limits = self.limits(data_cfg)
        limits.vocab = {c.lower() for c in self.char_ids}
        return limits

    def decode_options(self, eval_cfg) -> DecodeOptions:
        """Decoder settings from the recipe's eval section."""
        return DecodeOptions(num_beams=eval_cfg.num_beams)

    def zero_training_baselines(self, terms: list[str], eval_cfg) -> dict[str, DecodeOptions]:
        """The baseline to beat without training: the terms as hotwords of a beam search.

        The width is max(HOTWORD_MIN_BEAMS, eval.num_beams), applied by transcribe_hidden whenever
        hotwords are given, so these options never clash with decode_options' num_beams.
        """
        return {"hotwords": self.decode_options(eval_cfg).replace(hotwords=tuple(terms))}

    # ---- the encoder, unit by unit -------------------------------------------------------------
    def waveforms(self, audios: list) -> list[torch.Tensor]:
        """The feature extractor's normalised waveforms, padded with zeros to one receptive field."""
        fe = self.processor.feature_extractor
        out = []
        for a in audios:
            a = np.asarray(a, dtype=np.float32)
            x = fe(a, sampling_rate=SAMPLE_RATE, return_tensors="np").input_values[0] if a.size else a
            out.append(torch.from_numpy(np.pad(x, (0, max(0, self.rf_samples - x.size))).astype(np.float32)))
        return out

    @torch.no_grad()
    def prefix_batch(self, audios: list, k: int) -> list[torch.Tensor]:
        """Per-utterance outputs of the lowest k units (k=0: the normalised waveform), unpadded, on the CPU."""
        wavs = self.waveforms(audios)
        if k == 0:
            return wavs
        with _eval_mode(self.model):
            batch = self.collate(wavs, next(self.model.parameters()).device)
            x, lengths = self._run(batch.values, batch.lengths, 0, k, augment=False)
        return [x[i, : lengths[i]].float().cpu() for i in range(len(wavs))]

    def collate(self, hiddens: list[torch.Tensor], device=None) -> CTCBatch:
        """Zero-pad per-utterance unit outputs; the true lengths make the frame mask."""
        lengths = torch.tensor([h.shape[0] for h in hiddens], dtype=torch.long)
        values = torch.nn.utils.rnn.pad_sequence([torch.as_tensor(h) for h in hiddens], batch_first=True)
        return CTCBatch(values.to(device or "cpu"), lengths)

    def _cnn(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        convs = self.base.feature_extractor.conv_layers
        frames = conv_lengths(lengths, self.kernels, self.strides)
        if self.group_norm:  # GroupNorm spans the whole signal: run each utterance unpadded
            outs = []
            for w, n in zip(wavs, lengths.tolist()):
                h = w[None, None, :n]
                for conv in convs:
                    h = conv(h)
                outs.append(h[0].transpose(0, 1))
            return torch.nn.utils.rnn.pad_sequence(outs, batch_first=True), frames
        h = wavs[:, None]  # per-frame LayerNorm: frames inside the true length never see the padding
        for conv in convs:
            h = conv(h)
        return h.transpose(1, 2), frames

    def _spec_augment(self, x: torch.Tensor, mask: torch.Tensor, embed: torch.Tensor | None) -> torch.Tensor:
        """SpecAugment from the model config (mask_time_*, mask_feature_*), as the HF models apply it."""
        from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices

        cfg = self.model.config
        if not getattr(cfg, "apply_spec_augment", True):
            return x
        b, t, d = x.shape
        if cfg.mask_time_prob > 0 and t >= cfg.mask_time_length:
            m = _compute_mask_indices((b, t), cfg.mask_time_prob, cfg.mask_time_length, attention_mask=mask, min_masks=cfg.mask_time_min_masks)
            fill = embed.to(x.dtype) if embed is not None else torch.zeros((), dtype=x.dtype, device=x.device)
            x = torch.where(torch.from_numpy(m).to(x.device)[..., None], fill, x)
        if cfg.mask_feature_prob > 0 and d >= cfg.mask_feature_length:
            m = _compute_mask_indices((b, d), cfg.mask_feature_prob, cfg.mask_feature_length, min_masks=cfg.mask_feature_min_masks)
            x = x.masked_fill(torch.from_numpy(m).to(x.device)[:, None, :], 0.0)
        return x

    def _run(self, x: torch.Tensor, lengths: torch.Tensor, start: int, stop: int, augment: bool):
        """Units [start, stop) on a padded batch; returns (output, lengths in frames)."""
        base, enc = self.base, self.base.encoder
        x = x.to(self.model.lm_head.weight.dtype)  # the cache stores fp16/fp32; the model may be either
        if start == 0 and stop >= 1:
            x, lengths = self._cnn(x, lengths)
        mask = (torch.arange(x.shape[1])[None] < lengths[:, None]).to(device=x.device, dtype=torch.long)
        if start <= 1 < stop:
            x = base.feature_projection(x)
            x = x[0] if isinstance(x, tuple) else x
            if augment:  # where the HF models mask: after the projection, with the learned mask vector
                x = self._spec_augment(x, mask, getattr(base, "masked_spec_embed", None))
            x = x + self._positions(x, mask, lengths)
            x = enc.dropout(x if self.stable_ln else enc.layer_norm(x))
        elif augment and start < self.n_units:
            # A cached prefix ends above the projection: mask the first trainable block's input,
            # with zeros (the mask vector belongs to the projection's output space).
            x = self._spec_augment(x, mask, None)
        first, last = max(start, 2), min(stop, self.n_units)
        if first < last:
            x = self._blocks(x, mask, first - 2, last - 2)
        if self.stable_ln and start < self.n_units <= stop:
            x = enc.layer_norm(x)
        return x, lengths

    def _positions(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        pos_conv = self.base.encoder.pos_conv_embed
        if self.stacked_pos_conv:  # data2vec-audio: a later conv would carry the padding's output inward
            return torch.nn.utils.rnn.pad_sequence([pos_conv(x[i : i + 1, :n])[0] for i, n in enumerate(lengths.tolist())], batch_first=True)
        return pos_conv(x * mask[..., None].to(x.dtype))  # one conv: zeros past the end, as alone

    def _blocks(self, x: torch.Tensor, mask: torch.Tensor, first: int, last: int) -> torch.Tensor:
        enc, cfg = self.base.encoder, self.model.config
        kwargs = {}
        if self.position_bias:  # WavLM: raw padding mask; block 0's bias, recomputed for any start
            b, t = x.shape[:2]
            attn = enc.layers[0].attention
            kwargs["position_bias"] = attn.compute_bias(t, t).unsqueeze(0).repeat(b, 1, 1, 1).view(b * attn.num_heads, t, t)
            attn_mask = mask
        else:
            from transformers.masking_utils import create_bidirectional_mask

            attn_mask = create_bidirectional_mask(config=cfg, inputs_embeds=x, attention_mask=mask)
        for layer in enc.layers[first:last]:
            if self.model.training and cfg.layerdrop > 0 and torch.rand([]) < cfg.layerdrop:
                continue  # LayerDrop, as in the HF encoders
            out = layer(x, attention_mask=attn_mask, **kwargs)
            x = out[0] if isinstance(out, tuple) else out
        return x

    def _logits(self, batch: CTCBatch, k: int, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x, lengths = self._run(batch.values, batch.lengths, k, self.n_units, augment)
        return self.model.lm_head(self.model.dropout(x)).float(), lengths

    # ---- training ------------------------------------------------------------------------------
    def loss(self, batch: CTCBatch, k: int, texts: list) -> tuple[torch.Tensor, int]:
        """CTC loss per label token from the output of the lowest k units; returns (loss, n_tokens).

        `texts`: transcripts or TrainTarget objects (CTC uses their text; prompts and timestamps
        are Whisper's). SpecAugment and LayerDrop act in training mode. Utterances with fewer
        frames than their labels need score 0 (zero_infinity) and are reported, never NaN.
        """
        logits, lengths = self._logits(batch, k, augment=self.model.training)
        targets = [self.target_ids(t.text if isinstance(t, TrainTarget) else t) for t in texts]
        target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
        n_tokens = int(target_lengths.sum())
        needed = torch.tensor([len(t) + sum(a == b for a, b in itertools.pairwise(t)) for t in targets])
        if bool((lengths < needed).any()):
            log.warning("%d utterance(s) have fewer frames than their transcript needs; their CTC loss is set to 0",
                        int((lengths < needed).sum()))
        flat = torch.tensor([i for t in targets for i in t], dtype=torch.long, device=logits.device)
        log_probs = F.log_softmax(logits, dim=-1).transpose(0, 1)
        # cuDNN's CTC is non-deterministic and picky about layouts; the native kernel is exact.
        with torch.backends.cudnn.flags(enabled=False):
            total = F.ctc_loss(log_probs, flat, lengths.to(logits.device), target_lengths.to(logits.device),
                               blank=self.blank_id, reduction="sum", zero_infinity=True)
        return total / max(n_tokens, 1), n_tokens

    # ---- decoding ------------------------------------------------------------------------------
    def weights_held(self):
        """Nothing to skip: CTC decoding reads the live weights."""
        return contextlib.nullcontext()

    @torch.no_grad()
    def transcribe_hidden(self, batch: CTCBatch, k: int, options: DecodeOptions = DecodeOptions()) -> list[str]:
        """Decode from the output of the lowest k units: greedy when num_beams == 1 and there are no
        hotwords nor language model, else pyctcdecode beam search (hotwords: >= HOTWORD_MIN_BEAMS).
        Whisper-only options (prompt, language) are refused; max_new_tokens does not apply to CTC."""
        refuse_options(options, self.family, UNSUPPORTED_OPTIONS)
        logits, lengths = self._logits(batch, k, augment=False)
        logits[..., self.suppressed] = SUPPRESSED_LOGIT
        words = [w for w in (self.target_text(h) for h in options.hotwords) if w]
        beams = max(options.num_beams, HOTWORD_MIN_BEAMS) if words else options.num_beams
        out = []
        for row, n in zip(logits.cpu().numpy(), lengths.tolist()):
            if beams <= 1 and not options.kenlm_model:
                out.append(ctc_greedy_decode(row[:n], self.labels))
            else:
                out.append(ctc_beam_decode(row[:n], self.labels, beams, words, options.hotword_weight, options.kenlm_model,
                                           options.lm_alpha, options.lm_beta))
        return out

    @torch.no_grad()
    def transcribe_audio(self, audios: list, options: DecodeOptions = DecodeOptions()) -> list[str]:
        """Transcribe 16 kHz mono waveforms (used by `speechft transcribe`)."""
        self.model.eval()
        batch = self.collate(self.prefix_batch(audios, 0), next(self.model.parameters()).device)
        return self.transcribe_hidden(batch, 0, options)

    def save(self, out_dir) -> None:
        """save_pretrained for model and processor (the extended tokenizer included)."""
        self.model.save_pretrained(out_dir)
        self.processor.save_pretrained(out_dir)
