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


def test_decoder_prefix_is_the_tokenizers_prefix(adapter):
    assert adapter.decoder_prefix() == adapter.tokenizer.prefix_tokens == adapter.prefix_ids
    assert adapter.decoder_prefix(timestamps=True) == adapter.prefix_ids[:-1]  # no <|notimestamps|>


@pytest.mark.slow
@pytest.mark.parametrize("beams", [1, 5])
def test_the_requested_language_is_decoded_with_greedy_and_beam_search(base_dir, monkeypatch, beams):
    """A multilingual model decodes in the language asked for per call, with beams too (the beam
    path used the start tokens fixed when the model was loaded, so `language` was ignored)."""
    from speechft.models.adapters import load_adapter
    from speechft.models.base import DecodeOptions
    from speechft.models.ct2.beam import CT2BeamDecoder

    adapter = load_adapter(str(base_dir))
    assert adapter.multilingual
    seen = []
    monkeypatch.setattr(CT2BeamDecoder, "decode", lambda self, enc, prefix, n, m: seen.append(prefix) or [[]] * enc.shape[0])
    real_generate = adapter.model.generate
    monkeypatch.setattr(adapter.model, "generate", lambda **kw: seen.append(kw["language"]) or real_generate(**{**kw, "max_new_tokens": 1}))
    enc = torch.zeros(1, 1500, adapter.model.config.d_model)
    adapter.transcribe_encoded(enc, DecodeOptions(num_beams=beams, language="de"))
    de = adapter.tokenizer.convert_tokens_to_ids("<|de|>")
    assert (de in seen[0]) if beams > 1 else seen[0] == "de"


def test_loss_on_learned_positions_equals_the_full_cross_entropy(adapter):
    """The output layer runs only where labels are learned; the loss is the usual masked mean."""
    from speechft.models.base import TrainTarget

    torch.manual_seed(0)
    enc = torch.randn(2, 1500, adapter.model.config.d_model)
    targets = [TrainTarget("give atorvastatin daily", prompt="apixaban, heparin"), TrainTarget("stop")]
    loss, n = adapter.loss(enc, adapter.n_layers + 1, targets)  # k = all units: enc is the encoder output
    inputs, labels = adapter.make_targets(targets)
    logits = adapter.model(encoder_outputs=BaseModelOutput(last_hidden_state=enc), decoder_input_ids=inputs, use_cache=False).logits
    full = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)
    assert n == int((labels != IGNORE_INDEX).sum()) and torch.allclose(loss, full, rtol=1e-5, atol=1e-6)


def test_fit_prompt_keeps_whole_terms_in_order_within_the_prompt_budget(adapter):
    from speechft.models.whisper import MAX_PROMPT_TOKENS

    terms = [f"term{i} compound{i}" for i in range(120)]  # far more than 223 tokens
    prompt = adapter.fit_prompt(terms)
    words = prompt.split(" ")
    chosen = [" ".join(words[i : i + 2]) for i in range(0, len(words), 2)]  # every term is two words
    assert chosen == terms[: len(chosen)] and 0 < len(chosen) < len(terms)  # a prefix of whole terms
    ids = adapter.tokenizer.encode(" " + prompt, add_special_tokens=False)
    assert len(ids) <= MAX_PROMPT_TOKENS
    longer = adapter.tokenizer.encode(" " + " ".join(terms[: len(chosen) + 1]), add_special_tokens=False)
    assert len(longer) > MAX_PROMPT_TOKENS  # the next term would not have fit
    # So no engine cuts it: the decoding prompt is <|startofprev|> + every token of the prompt
    # (faster-whisper's hotwords cut only at 224 tokens, its initial_prompt keeps the last 223).
    assert adapter.prompt_ids(prompt).tolist()[1:] == ids
    assert adapter.fit_prompt(["heparin", "warfarin"]) == "heparin warfarin"  # joined by spaces: no comma tokens
    assert adapter.fit_prompt([]) is None


def test_a_term_too_long_for_the_prompt_is_skipped_and_shorter_ones_still_fit(adapter):
    huge = " ".join(f"word{i}" for i in range(400))
    assert adapter.fit_prompt(["heparin", huge, "warfarin"]) == "heparin warfarin"


def test_length_groups_split_only_when_it_saves_padding():
    from speechft.models.whisper import length_groups

    assert length_groups([300, 100, 310, 90]) == [[1, 3], [0, 2]]  # prompted vs not: 1240 -> 820 positions
    assert length_groups([100, 95, 110, 105]) == [[0, 1, 2, 3]]  # similar lengths: one group
    assert length_groups([50]) == [[0]] and length_groups([]) == [[]]


def test_a_batch_decoded_in_length_groups_has_the_loss_of_one_padded_batch(adapter):
    """A long prompt next to short targets: the decoder runs twice, the loss is unchanged."""
    from speechft.models.base import TrainTarget
    from speechft.models.whisper import length_groups

    torch.manual_seed(0)
    enc = torch.randn(3, 1500, adapter.model.config.d_model)
    long_prompt = ", ".join(f"term{i}" for i in range(60))
    targets = [TrainTarget("stop"), TrainTarget("give atorvastatin daily", prompt=long_prompt), TrainTarget("hold it")]
    assert len(length_groups([sum(map(len, adapter.example_ids(t))) for t in targets])) == 2
    loss, n = adapter.loss(enc, adapter.n_layers + 1, targets)
    inputs, labels = adapter.make_targets(targets)
    logits = adapter.model(encoder_outputs=BaseModelOutput(last_hidden_state=enc), decoder_input_ids=inputs, use_cache=False).logits
    full = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)
    assert n == int((labels != IGNORE_INDEX).sum()) and torch.allclose(loss, full, rtol=1e-5, atol=1e-6)
