"""Beam search through CTranslate2 on the adapter's encoder output (speechft/models/ct2/beam.py)."""

import tempfile
from pathlib import Path

import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from speechft.models.base import DecodeOptions
from speechft.models.ct2.beam import CT2BeamDecoder
from speechft.models.ct2.convert import convert_to_ct2
from speechft.models.whisper import WhisperAdapter


def _adapter(folder):
    return WhisperAdapter(WhisperForConditionalGeneration.from_pretrained(folder).eval(), WhisperProcessor.from_pretrained(folder))


def _beam_setup(folder, n: int):
    """A tiny model's adapter, its CT2BeamDecoder, n random encoder outputs (seeded) and the start tokens."""
    adapter = _adapter(folder)
    torch.manual_seed(0)
    return adapter, CT2BeamDecoder(adapter), torch.randn(n, 1500, adapter.model.config.d_model), list(adapter.prefix_ids)


@pytest.mark.slow
@pytest.mark.parametrize("prompt", [None, "atorvastatin, apixaban, troponin"])
def test_ct2_greedy_equals_transformers_greedy_on_speech(tiny_en_dir, speech_clips, prompt):
    """Same encoder output, one beam: CTranslate2 must give transformers' tokens exactly, so the
    converted weights, the start tokens, the prompt and the token suppression all agree."""
    adapter = _adapter(tiny_en_dir)
    with torch.no_grad():
        enc = adapter.encode(speech_clips[:4])
    hf = adapter.transcribe_encoded(enc, DecodeOptions(prompt=prompt, num_beams=1))
    prefix = (adapter.prompt_ids(prompt).tolist() if prompt else []) + list(adapter.prefix_ids)
    ids = CT2BeamDecoder(adapter).decode(enc, prefix, num_beams=1, max_new_tokens=128)
    assert [t.strip() for t in adapter.tokenizer.batch_decode(ids, skip_special_tokens=True)] == hf
    assert all(h for h in hf)  # real speech: not a vacuous comparison of empty strings


@pytest.mark.slow
def test_beam_search_decodes_speech(tiny_en_dir, speech_clips, sentences):
    from speechft.evaluate import score

    adapter = _adapter(tiny_en_dir)
    with torch.no_grad():
        enc = adapter.encode(speech_clips)
    beam = score(sentences, adapter.transcribe_encoded(enc, DecodeOptions(num_beams=4)), [str(i) for i in range(len(sentences))])
    assert beam.wer < 0.3  # tiny.en on clean flite speech; a wrong prefix or weights would be far off


def test_decoder_is_reconverted_when_and_only_when_weights_change(tiny_whisper_dir):
    adapter, decoder, enc, prefix = _beam_setup(tiny_whisper_dir, 2)
    first = decoder.decode(enc, prefix, num_beams=2, max_new_tokens=6)
    assert decoder.decode(enc, prefix, num_beams=2, max_new_tokens=6) == first
    assert decoder.conversions == 1  # same weights: the converted copy is reused
    # A fused AdamW step changes weights without bumping tensor versions: the checksum sees it.
    params = [p for n, p in adapter.model.named_parameters() if n.startswith("model.decoder.layers")]
    optimizer = torch.optim.AdamW(params, lr=0.5, fused=True)
    adapter.model.train()
    out = adapter.model(encoder_outputs=(enc,), decoder_input_ids=torch.tensor([prefix, prefix]), use_cache=False)
    out.logits.square().mean().backward()
    optimizer.step()
    adapter.model.eval()
    decoder.decode(enc, prefix, num_beams=2, max_new_tokens=6)
    assert decoder.conversions == 2


def test_weights_held_checks_the_weights_once_per_block(tiny_whisper_dir, monkeypatch):
    """evaluate.transcribe holds the weights over a manifest: one checksum, not one per batch;
    a change made after the block is still seen."""
    from speechft.models.ct2 import beam

    adapter, decoder, enc, prefix = _beam_setup(tiny_whisper_dir, 2)
    calls = []
    real = beam.weights_checksum
    monkeypatch.setattr(beam, "weights_checksum", lambda model: calls.append(1) or real(model))
    with decoder.weights_held():
        held = [decoder.decode(enc, prefix, num_beams=2, max_new_tokens=6) for _ in range(3)]
    assert len(calls) == 1 and held[0] == held[1] == held[2]
    decoder.decode(enc, prefix, num_beams=2, max_new_tokens=6)
    assert len(calls) == 2  # outside a block every decode checks
    with torch.no_grad():
        next(p for n, p in adapter.model.named_parameters() if n.startswith("model.decoder.layers")).add_(1.0)
    with decoder.weights_held():
        decoder.decode(enc, prefix, num_beams=2, max_new_tokens=6)
    assert decoder.conversions == 2  # the new block checked and saw the change


def test_beam_search_in_memory_sized_calls_gives_the_tokens_of_one_call(tiny_whisper_dir, monkeypatch):
    """The batch is split so each generate call's cross-attention caches fit the budget, the calls
    run concurrently on the replicas, and the tokens are those of the whole batch in one call, in order."""
    from speechft.models.ct2 import beam

    adapter, decoder, enc, prefix = _beam_setup(tiny_whisper_dir, 5)
    whole = decoder.decode(enc, prefix, num_beams=3, max_new_tokens=6)
    per_beam = adapter.model.config.decoder_layers * 2 * 1500 * adapter.model.config.d_model * 4
    replicas = decoder._current("cpu").num_workers
    monkeypatch.setattr(beam, "CROSS_ATTENTION_BUDGET_BYTES", per_beam * 3 * 2 * replicas)  # two utterances a call
    assert beam.utterances_per_call(enc.shape, adapter.model.config.decoder_layers, 3, replicas) == 2
    calls = []
    real_generate = decoder._current("cpu").generate
    monkeypatch.setattr(decoder, "_current", lambda device: type("M", (), {"num_workers": replicas,
        "generate": staticmethod(lambda feats, prefixes, **kw: calls.append(len(prefixes)) or real_generate(feats, prefixes, **kw))})())
    assert decoder.decode(enc, prefix, num_beams=3, max_new_tokens=6) == whole
    assert sorted(calls) == [1, 2, 2]  # three calls within the budget, split evenly


def test_one_thread_replicas_leave_torch_on_its_threads(tiny_whisper_dir):
    """Loading a CTranslate2 model sets the OpenMP thread count that torch reads too: without
    the guard, the recipe's encoder and training ran on one core after the first beam search."""
    from speechft.models.ct2.runtime import load_ct2

    old = torch.get_num_threads()
    torch.set_num_threads(3)  # not what any replica uses
    try:
        adapter, decoder, enc, prefix = _beam_setup(tiny_whisper_dir, 2)
        decoder.decode(enc, prefix, num_beams=2, max_new_tokens=3)  # loads the one-thread replicas
        assert torch.get_num_threads() == 3
        with tempfile.TemporaryDirectory() as tmp:
            convert_to_ct2(tiny_whisper_dir, Path(tmp) / "ct2", "float32")
            load_ct2(Path(tmp) / "ct2", threads=1, workers=2)  # as the deployed rows load an export
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(old)
