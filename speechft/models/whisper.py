"""Whisper family: features, frozen-prefix forward, training targets, loss and decoding."""

from __future__ import annotations

import contextlib
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

from ..audio import SAMPLE_RATE, WHISPER_MAX_SECONDS
from ..errors import SpeechftError
from ..precision import autocast_to
from ..text import written_form
from .base import PROMPT_TERM_SEPARATOR, DecodeOptions, TrainTarget, join_terms, refuse_options

IGNORE_INDEX = -100  # label positions excluded from the loss
# Prompt tokens after <|startofprev|>: half of Whisper's 448-token context, less one. Longer
# prompts are cut to their first 223 tokens, as faster-whisper cuts `hotwords` (what
# `speechft serve` and the deployed rows send); the recipes' prompts fit whole (fit_prompt).
MAX_PROMPT_TOKENS = 223
# Up to this many decoder tokens, cross-attention is cheaper reassociated (see
# _reassociated_cross_attention); measured break-even on tiny.en: ~70 tokens (benchmarks/README.md).
REASSOCIATE_MAX_TOKENS = 48
# A batch whose examples differ this much in length is decoded in two groups (length_groups):
# half the medical examples carry a ~220-token prompt, the others ~100 tokens of text.
LENGTH_GROUP_MIN_SAVING = 0.2
FEATURE_PADDINGS = ("logmel", "waveform")  # see WhisperAdapter.features
TIME_PRECISION = 0.02  # s per Whisper timestamp token
N_TIMESTAMP_STEPS = 1500  # <|0.00|> .. <|30.00|>
# Options of DecodeOptions that only CTC decoding uses.
UNSUPPORTED_OPTIONS = {"hotwords", "hotword_weight", "kenlm_model", "lm_alpha", "lm_beta"}


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


def length_groups(lengths: list[int], min_saving: float = LENGTH_GROUP_MIN_SAVING) -> list[list[int]]:
    """Batch indices in one group, or in two (shorter, longer) when padding each to its own
    longest saves at least `min_saving` of the decoder positions of padding all to the longest."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    longest, n = lengths[order[-1]] if order else 0, len(order)
    best_cut, best_cost = 0, n * longest
    for cut in range(1, n):
        cost = cut * lengths[order[cut - 1]] + (n - cut) * longest
        if cost < best_cost:
            best_cut, best_cost = cut, cost
    if best_cut == 0 or best_cost > (1 - min_saving) * n * longest:
        return [list(range(n))]
    return [sorted(order[:best_cut]), sorted(order[best_cut:])]


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

    def __init__(self, model, processor, language: str | None = "en", task: str = "transcribe", numbers_as_digits: bool = True,
                 feature_padding: str = "waveform", encoder_precision: str = "fp32"):
        if feature_padding not in FEATURE_PADDINGS:
            raise SpeechftError(f"feature_padding={feature_padding!r}: use one of {', '.join(FEATURE_PADDINGS)}")
        if encoder_precision not in ("fp32", "bf16"):
            raise SpeechftError(f"encoder_precision={encoder_precision!r}: use fp32 or bf16")
        self.model = model
        self.encoder_precision = encoder_precision  # of the frozen prefix (`prefix`): precision.py
        self.numbers_as_digits = numbers_as_digits
        self.feature_padding = feature_padding
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
        self.prefix_ids = self.decoder_prefix()
        self.eot_id = self.tokenizer.eos_token_id
        self.n_layers = model.config.encoder_layers
        self.max_target_tokens = model.config.max_target_positions
        self._beam_decoder = None  # CT2BeamDecoder, made on the first beam search
        self._fw_extractor = None  # faster-whisper's FeatureExtractor, made on first use

    def limits(self, data_cfg):
        """What this model can take, for manifest validation."""
        from ..validate import Limits

        return Limits(
            max_seconds=min(data_cfg.max_seconds, WHISPER_MAX_SECONDS),
            max_label_tokens=self.max_target_tokens,
            count_tokens=self.count_tokens,
            root=Path(data_cfg.root) if data_cfg.root else None,
        )

    def validation_limits(self, data_cfg):
        """Limits for `speechft validate --model`: the same as for training."""
        return self.limits(data_cfg)

    def decode_options(self, eval_cfg) -> DecodeOptions:
        """Decoder settings from the recipe's eval section."""
        return DecodeOptions(num_beams=eval_cfg.num_beams, max_new_tokens=eval_cfg.max_new_tokens)

    def zero_training_baselines(self, terms: list[str], eval_cfg) -> dict[str, DecodeOptions]:
        """The baseline to beat without training: the domain terms as a decoding prompt."""
        return {"prompted": self.decode_options(eval_cfg).replace(prompt=self.fit_prompt(terms[: eval_cfg.max_prompt_terms]))}

    def fit_prompt(self, terms: list[str]) -> str | None:
        """The terms, in order, joined as a prompt of whole terms that fits MAX_PROMPT_TOKENS
        tokens: a term that would overflow is left out and shorter later ones still go in.
        Below the limit every engine keeps the prompt whole, so HF, CTranslate2 and faster-whisper
        (`hotwords` or `initial_prompt`) all decode with the same tokens (../prompt.py)."""
        return join_terms(self.fit_terms(terms)) or None

    def fit_terms(self, terms: list[str], separator: str = PROMPT_TERM_SEPARATOR) -> list[str]:
        """The terms fit_prompt keeps, in order, were they joined by `separator`."""
        chosen: list[str] = []
        for term in terms:
            if len(self.tokenizer.encode(" " + separator.join(chosen + [term]), add_special_tokens=False)) <= MAX_PROMPT_TOKENS:
                chosen.append(term)
        return chosen

    def decoder_prefix(self, language: str | None = None, timestamps: bool = False) -> list[int]:
        """The tokens the decoder starts from: start-of-transcript, then (multilingual models)
        language and task, then <|notimestamps|> unless timestamps are wanted.

        `language` overrides the adapter's language for one call (multilingual models only).
        """
        tok = self.tokenizer
        ids = [tok.convert_tokens_to_ids("<|startoftranscript|>")]
        if self.multilingual:
            code = (language or self.language or "").lower()
            if code:
                code = TO_LANGUAGE_CODE.get(code, code)
                lang_id = tok.convert_tokens_to_ids(f"<|{code}|>")
                if lang_id == tok.unk_token_id or lang_id is None:
                    raise SpeechftError(f"language {code!r} is not one this model knows. Fix: use a Whisper language code, e.g. en, de, fr")
                ids.append(lang_id)
            ids.append(tok.convert_tokens_to_ids(f"<|{self.task or 'transcribe'}|>"))
        if not timestamps:
            ids.append(tok.convert_tokens_to_ids("<|notimestamps|>"))
        return ids

    # ---- features and the encoder, unit by unit -------------------------------------------------
    def features(self, audios: list) -> torch.Tensor:
        """Log-mel features [B, n_mels, 3000] of one window each, padded as `feature_padding` says.

        "logmel" is faster-whisper's front end, what a deployed model sees: the log-mel of the
        audio itself (normalised over the audio alone), then zero frames up to 30 s. "waveform"
        is transformers' and openai-whisper's: the waveform padded with silence to 30 s, then
        the log-mel of all of it. The encoder output differs in the padded part, and a decoder
        adapted to one front end loses accuracy on the other (FACTS.md: 1.5 WER points on
        unseen speakers), so training, evaluation and serving use one of them throughout.
        """
        if self.feature_padding == "waveform":
            return self.processor.feature_extractor(audios, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        extractor = self._deployed_extractor()
        frames = extractor.nb_max_frames
        out = np.zeros((len(audios), extractor.mel_filters.shape[0], frames), dtype=np.float32)
        for i, audio in enumerate(audios):
            mel = extractor(np.asarray(audio, dtype=np.float32))
            # faster-whisper drops the last frame (content_frames = frames - 1) before windowing.
            content = mel[:, : min(mel.shape[-1] - 1, frames)]
            out[i, :, : content.shape[-1]] = content
        return torch.from_numpy(out)

    def _deployed_extractor(self):
        if self._fw_extractor is None:
            from faster_whisper.feature_extractor import FeatureExtractor

            fe = self.processor.feature_extractor
            self._fw_extractor = FeatureExtractor(feature_size=fe.feature_size, sampling_rate=fe.sampling_rate,
                                                  hop_length=fe.hop_length, chunk_length=fe.chunk_length, n_fft=fe.n_fft)
        return self._fw_extractor

    def feature_settings(self) -> dict:
        """What determines the features besides the audio (the activation cache's key hashes it)."""
        settings = self.processor.feature_extractor.to_dict()
        # Only non-default settings add a key, so caches made before they existed stay valid.
        if self.feature_padding != "waveform":
            settings = {**settings, "padding": self.feature_padding}
        if self.encoder_precision != "fp32":
            settings = {**settings, "encoder_precision": self.encoder_precision}
        return settings

    @torch.no_grad()
    def prefix(self, features: torch.Tensor, k: int) -> torch.Tensor:
        """Output of the lowest k encoder units (k=0: the features themselves), computed in
        `encoder_precision`, returned in float32."""
        with autocast_to(self.encoder_precision, self.model.device):
            return self._run_units(features, 0, k).float()

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
        """Encoder output of 16 kHz waveforms, all of it computed as the frozen prefix is."""
        return self.prefix(self.features(audios), self.n_layers + 1)

    @torch.no_grad()
    def transcribe_audio(self, audios: list, options: DecodeOptions = DecodeOptions()) -> list[str]:
        """Transcribe 16 kHz mono waveforms (used by `speechft transcribe`)."""
        self.model.eval()
        return self.transcribe_encoded(self.encode(audios), options)

    def prepare_for_training(self, train_texts: list[str]) -> None:
        """Whisper's byte-level tokenizer covers any text: nothing to adjust in the output layer."""
        return None

    # ---- training ---------------------------------------------------------------------------------
    def text_ids(self, text: str) -> list[int]:
        """Token ids of a transcript in Whisper's writing style (leading space, numbers as
        digits when model.numbers_as_digits); none for an empty transcript."""
        text = (written_form(text) if self.numbers_as_digits else text).strip()
        return self.tokenizer.encode(" " + text, add_special_tokens=False) if text else []

    def target_ids(self, text: str) -> list[int]:
        """Prefix + text + end-of-text, as the decoder must produce it (text starts with a space)."""
        return self.prefix_ids + self.text_ids(text) + [self.eot_id]

    def timestamp_id(self, seconds: float) -> int:
        """The <|t.tt|> token nearest `seconds` (20 ms steps, 0..30 s)."""
        steps = min(max(int(round(seconds / TIME_PRECISION)), 0), N_TIMESTAMP_STEPS)
        # The timestamp tokens follow <|notimestamps|> in every Whisper vocabulary (openai-whisper's
        # and faster-whisper's timestamp_begin), whether or not the tokenizer names them.
        return self.tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1 + steps

    def timestamped_ids(self, segments) -> list[int]:
        """Whisper's timestamp format: <|start|> text <|end|> per segment, then end-of-text."""
        out = []
        for start, end, text in segments:
            out += [self.timestamp_id(start), *self.text_ids(text), self.timestamp_id(end)]
        return out + [self.eot_id]

    def count_tokens(self, text: str) -> int:
        return len(self.target_ids(text))

    def example_ids(self, target: TrainTarget) -> tuple[list[int], list[int]]:
        """(context given to the decoder, tokens it must produce) for one training example.

        Context: an optional <|startofprev|> prompt, then the start tokens (without
        <|notimestamps|> when learning timestamps). A prompt that would not leave room for the
        target in the decoder's 448 positions is dropped for that example.
        """
        if target.segments:
            context, produce = self.decoder_prefix(timestamps=True), self.timestamped_ids(target.segments)
        else:
            context, produce = list(self.prefix_ids), self.text_ids(target.text) + [self.eot_id]
        if target.prompt:
            prompt = self.prompt_ids(target.prompt).tolist()
            if len(prompt) + len(context) + len(produce) <= self.max_target_tokens:
                context = prompt + context
        return context, produce

    def make_targets(self, targets: list) -> tuple[torch.Tensor, torch.Tensor]:
        """decoder_input_ids and labels, padded to the longest in the batch (not to 448).

        `targets`: TrainTarget objects (or plain transcripts). The loss covers only what the
        decoder must produce (text, timestamps, end-of-text), never the prompt or start tokens.
        """
        return self._padded(self._examples(targets))

    def _examples(self, targets: list) -> list[tuple[list[int], list[int]]]:
        """`example_ids` of each target (a TrainTarget or a plain transcript)."""
        return [self.example_ids(t if isinstance(t, TrainTarget) else TrainTarget(t)) for t in targets]

    def _padded(self, examples: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, torch.Tensor]:
        """make_targets for (context, produce) pairs from `example_ids`."""
        width = max(len(c) + len(p) for c, p in examples) - 1
        inputs = torch.full((len(examples), width), self.eot_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
        for i, (context, produce) in enumerate(examples):
            seq = context + produce
            inputs[i, : len(seq) - 1] = torch.tensor(seq[:-1])
            labels[i, len(context) - 1 : len(seq) - 1] = torch.tensor(produce)
        return inputs, labels

    def loss(self, hidden: torch.Tensor, k: int, targets: list) -> tuple[torch.Tensor, int]:
        """Mean token cross-entropy from the output of the lowest k units; returns (loss, n_tokens).

        `targets`: TrainTarget objects or plain transcripts (see make_targets). Examples of very
        different lengths (a 223-token prompt next to a short target) go through the decoder in
        two groups, each padded to its own longest (`length_groups`): the same loss, without
        computing the short examples' padding."""
        enc = self.encode_rest(hidden, k)
        examples = self._examples(targets)
        total, n_tokens = enc.new_zeros(()), 0
        for group in length_groups([len(c) + len(p) for c, p in examples]):
            summed, n = self._summed_loss(enc[group] if len(group) < len(examples) else enc, [examples[i] for i in group])
            total, n_tokens = total + summed, n_tokens + n
        return total / max(n_tokens, 1), n_tokens

    def _summed_loss(self, enc: torch.Tensor, examples: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, int]:
        """Summed token cross-entropy of one group of (context, produce) examples and its token count."""
        inputs, labels = self._padded(examples)
        device = enc.device
        short = inputs.shape[1] <= REASSOCIATE_MAX_TOKENS
        with _reassociated_cross_attention(self.model) if short else contextlib.nullcontext():
            # use_cache=False: transformers keeps a KV cache in training otherwise (copies per layer).
            decoded = self.model.model.decoder(input_ids=inputs.to(device), encoder_hidden_states=enc, use_cache=False)
        labels = labels.to(device)
        learned = labels != IGNORE_INDEX
        # The output layer only where there is something to learn: prompt and padding positions
        # would cost a [tokens x 51864] logit matrix each (a 200-token prompt: most of a step's memory).
        logits = self.model.proj_out(decoded.last_hidden_state[learned]).float()
        return F.cross_entropy(logits, labels[learned], reduction="sum"), int(learned.sum())

    # ---- decoding ---------------------------------------------------------------------------------
    def prompt_ids(self, prompt: str) -> torch.Tensor:
        """Token ids for a decoding prompt, cut to Whisper's prompt budget."""
        ids = self.tokenizer.encode(" " + prompt.strip(), add_special_tokens=False)[:MAX_PROMPT_TOKENS]
        return torch.tensor([self.tokenizer.convert_tokens_to_ids("<|startofprev|>")] + ids)

    def weights_held(self):
        """A block in which the weights stay as they are: beam search checks them on its first
        batch only (the check reads every weight: ~0.3 s a batch for tiny.en on 2 cores)."""
        return self._beam_search().weights_held()

    def _beam_search(self):
        """The CT2BeamDecoder of this model, made on first use."""
        if self._beam_decoder is None:
            from .ct2.beam import CT2BeamDecoder

            self._beam_decoder = CT2BeamDecoder(self)
        return self._beam_decoder

    @torch.no_grad()
    def transcribe_hidden(self, hidden: torch.Tensor, k: int, options: DecodeOptions = DecodeOptions()) -> list[str]:
        """Decode from the output of the lowest k encoder units."""
        return self.transcribe_encoded(self.encode_rest(hidden, k), options)

    @torch.no_grad()
    def transcribe_encoded(self, enc: torch.Tensor, options: DecodeOptions = DecodeOptions()) -> list[str]:
        """Decode a batch of encoder outputs to text: greedy with transformers' generate, beam
        search (num_beams > 1) with CTranslate2 on the same encoder output (ct2/beam.py)."""
        refuse_options(options, self.family, UNSUPPORTED_OPTIONS)
        prompt, language = options.prompt, options.language
        if language and not self.multilingual and language != "en":
            raise SpeechftError(f"language={language!r}: this model is English-only. Fix: omit the language or use en")
        if options.num_beams > 1:
            prefix = (self.prompt_ids(prompt).tolist() if prompt else []) + self.decoder_prefix(language)
            seqs = self._beam_search().decode(enc, prefix, options.num_beams, options.max_new_tokens)
        else:
            kwargs = dict(max_new_tokens=options.max_new_tokens, return_timestamps=False)
            if self.multilingual:
                kwargs.update(language=language or self.language, task=self.task)
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
