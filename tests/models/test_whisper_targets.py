"""Whisper training targets: prompts carry no loss, timestamps follow Whisper's format exactly,
non-speech learns end-of-text alone, and the policy that chooses them is seeded."""

import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from speechft.manifest import Utterance
from speechft.models.base import TrainTarget
from speechft.models.whisper import IGNORE_INDEX, WhisperAdapter
from speechft.train.targets import TargetPolicy


@pytest.fixture
def adapter(tiny_whisper_dir):
    return WhisperAdapter(WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir), WhisperProcessor.from_pretrained(tiny_whisper_dir))


def _ids(adapter, text):
    return adapter.tokenizer.encode(" " + text, add_special_tokens=False)


def test_a_prompted_example_learns_only_its_target(adapter):
    inputs, labels = adapter.make_targets([TrainTarget("give apixaban", prompt="apixaban, heparin"), TrainTarget("stop")])
    prev = adapter.tokenizer.convert_tokens_to_ids("<|startofprev|>")
    prompt = [prev] + _ids(adapter, "apixaban, heparin")
    prefix = adapter.prefix_ids
    target = _ids(adapter, "give apixaban") + [adapter.eot_id]
    seq = prompt + prefix + target
    assert inputs[0, : len(seq) - 1].tolist() == seq[:-1]
    # Exactly: nothing learned on the prompt or the start tokens, every target token learned once.
    expected = [IGNORE_INDEX] * (len(prompt) + len(prefix) - 1) + target
    assert labels[0, : len(expected)].tolist() == expected
    assert (labels[0, len(expected):] == IGNORE_INDEX).all()
    plain = [IGNORE_INDEX] * (len(prefix) - 1) + _ids(adapter, "stop") + [adapter.eot_id]
    assert labels[1, : len(plain)].tolist() == plain and (labels[1, len(plain):] == IGNORE_INDEX).all()


def test_a_timestamp_example_has_the_exact_whisper_label_sequence(adapter):
    _, labels = adapter.make_targets([TrainTarget("hello there. general kenobi.",
                                                  segments=((0.12, 1.5, "hello there."), (2.02, 3.999, "general kenobi.")))])
    ts = adapter.tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1  # <|0.00|>, as faster-whisper counts
    prefix = adapter.decoder_prefix(timestamps=True)
    assert adapter.tokenizer.convert_tokens_to_ids("<|notimestamps|>") not in prefix
    expected = ([IGNORE_INDEX] * (len(prefix) - 1) + [ts + 6] + _ids(adapter, "hello there.") + [ts + 75, ts + 101]
                + _ids(adapter, "general kenobi.") + [ts + 200, adapter.eot_id])
    assert labels[0].tolist() == expected


@pytest.mark.slow
def test_timestamp_ids_are_the_named_tokens_of_the_real_tokenizer(tiny_en_dir):
    adapter = WhisperAdapter(WhisperForConditionalGeneration.from_pretrained(tiny_en_dir), WhisperProcessor.from_pretrained(tiny_en_dir))
    assert adapter.tokenizer.convert_ids_to_tokens([adapter.timestamp_id(0.0), adapter.timestamp_id(1.5), adapter.timestamp_id(31)]) == \
        ["<|0.00|>", "<|1.50|>", "<|30.00|>"]


def test_non_speech_learns_end_of_text_alone(adapter):
    _, labels = adapter.make_targets([TrainTarget(""), TrainTarget("", prompt="apixaban")])
    n = len(adapter.prefix_ids)
    assert labels[0, : n].tolist() == [IGNORE_INDEX] * (n - 1) + [adapter.eot_id]
    assert (labels[1] != IGNORE_INDEX).sum() == 1 and adapter.eot_id in labels[1].tolist()


def test_plain_transcripts_give_the_same_targets_as_before(adapter):
    """Strings and TrainTarget(text) are the same example (recipes without the new options train as before)."""
    a = adapter.make_targets(["give atorvastatin daily", "hi"])
    b = adapter.make_targets([TrainTarget("give atorvastatin daily"), TrainTarget("hi")])
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_a_prompt_that_leaves_no_room_is_dropped(adapter):
    long_text = " ".join(["word"] * 300)
    context, produce = adapter.example_ids(TrainTarget(long_text, prompt=", ".join(["apixaban"] * 100)))
    assert context == adapter.prefix_ids and len(produce) > 300


def test_policy_is_seeded_and_follows_its_rates():
    terms = [f"term{i}" for i in range(20)]
    utts = [Utterance(f"/x/{i}.wav", f"text {i}", 5.0, f"u{i}",
                      segments=[{"start": 0.1, "end": 4.0, "text": f"text {i}"}]) for i in range(400)]
    policy = TargetPolicy(terms, prompt_rate=0.5, timestamp_rate=0.25, seed=3)
    first = policy.targets(utts, epoch=1)
    assert first == TargetPolicy(terms, 0.5, 0.25, seed=3).targets(utts, epoch=1)  # the same on every run and process
    assert first != policy.targets(utts, epoch=2)  # new draws each epoch
    prompted = sum(t.prompt is not None for t in first) / len(first)
    stamped = sum(t.segments is not None for t in first) / len(first)
    assert 0.42 < prompted < 0.58 and 0.18 < stamped < 0.32
    assert all(set(t.prompt.split(", ")) <= set(terms) for t in first if t.prompt)
    assert policy.targets(utts[:3], epoch=None) == [TrainTarget(u.text) for u in utts[:3]]  # the dev loss: plain
    assert TargetPolicy(None, prompt_rate=1.0).targets(utts[:2], epoch=1) == [TrainTarget(u.text) for u in utts[:2]]  # no terms, no prompt
