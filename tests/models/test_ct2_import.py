"""CT2 -> HF Whisper import: exact round trips, parity with ctranslate2 on real weights,
and one clear error per kind of bad input."""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from speechft.errors import SpeechftError
from speechft.models.ct2.format import read_ct2_model
from speechft.models.ct2.to_hf import N_TIMESTAMP_TOKENS, import_ct2
from speechft.models.registry import BUILTIN_MODELS
from speechft.text import normalize

MAX_LOGPROB_DIFF = 1e-3  # HF fp32 vs CT2 fp32 on the same weights: only kernel rounding differs
MAX_WER = 0.3
BASE_CLIPS = 5
SUPPRESSED = -1e30  # CT2 reports suppressed tokens as a logit of -FLT_MAX


def _assert_same_ct2_tensors(a_path: Path, b_path: Path, same_converter: bool = True) -> None:
    """Every weight bit-identical. Scalar flags too, except that a newer ctranslate2 may
    add flags (e.g. decoder/scale_alibi) that an older converter did not write."""
    a, b = read_ct2_model(a_path), read_ct2_model(b_path)
    assert (a.spec, a.revision, a.aliases) == (b.spec, b.revision, b.aliases)
    only_one = a.variables.keys() ^ b.variables.keys()
    assert not only_one if same_converter else all({**a.variables, **b.variables}[n].ndim == 0 for n in only_one)
    for name in a.variables.keys() & b.variables.keys():
        value, other = a.variables[name], b.variables[name]
        assert value.dtype == other.dtype and value.shape == other.shape, name
        assert value.tobytes() == other.tobytes(), f"{name} differs"


# ---- round trip with a tiny random model ------------------------------------------------------


def test_round_trip_is_exact(random_whisper, random_ct2_dir, ct2_convert, tmp_path):
    from transformers import WhisperForConditionalGeneration

    hf_src, model = random_whisper
    out = import_ct2(random_ct2_dir, tmp_path / "imported")
    imported, info = WhisperForConditionalGeneration.from_pretrained(out, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    source, result = model.state_dict(), imported.state_dict()
    assert source.keys() == result.keys()
    for name, tensor in source.items():
        assert result[name].dtype == torch.float32
        assert torch.equal(tensor.half().float(), result[name]), name
    assert imported.proj_out.weight.data_ptr() == imported.model.decoder.embed_tokens.weight.data_ptr()

    # Back to CT2 with ctranslate2's own converter: bit-identical to the source model.bin.
    back = ct2_convert(out, tmp_path / "back", "float16")
    _assert_same_ct2_tensors(random_ct2_dir / "model.bin", back / "model.bin")
    config, original = (json.loads((d / "config.json").read_text()) for d in (back, random_ct2_dir))
    for key in ("suppress_ids", "suppress_ids_begin", "alignment_heads"):
        assert config[key] == original[key], key


def test_freshly_initialised_model_with_aliased_tensors(random_whisper, ct2_convert, tmp_path):
    """Default init has many equal tensors (unit layer norms, zero biases) that CT2 stores
    once and aliases; the importer must resolve every alias."""
    from safetensors.torch import load_file
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(1)
    model = WhisperForConditionalGeneration(random_whisper[1].config)
    model.save_pretrained(tmp_path / "hf")
    shutil.copyfile(random_whisper[0] / "tokenizer.json", tmp_path / "hf" / "tokenizer.json")
    src = ct2_convert(tmp_path / "hf", tmp_path / "ct2", "float16")
    assert len(read_ct2_model(src / "model.bin").aliases) > 10
    imported = load_file(import_ct2(src, tmp_path / "imported") / "model.safetensors")
    for name, tensor in model.state_dict().items():
        if name != "proj_out.weight":
            assert torch.equal(tensor.half().float(), imported[name]), name


@pytest.mark.parametrize("quantization, dtype", [("float32", torch.float32), ("bfloat16", torch.bfloat16)])
def test_float32_and_bfloat16_models_import_exactly(quantization, dtype, random_whisper, ct2_convert, tmp_path):
    from safetensors.torch import load_file

    src = ct2_convert(random_whisper[0], tmp_path / quantization, quantization)
    imported = load_file(import_ct2(src, tmp_path / "imported") / "model.safetensors")
    for name, tensor in random_whisper[1].state_dict().items():
        if name != "proj_out.weight":  # tied, stored once
            assert torch.equal(tensor.to(dtype).float(), imported[name]), name


def test_imported_folder_is_a_complete_hf_whisper(random_ct2_dir, tmp_path):
    from transformers import WhisperProcessor

    out = import_ct2(random_ct2_dir, tmp_path / "imported")
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", "normalizer.json", "preprocessor_config.json"} <= names
    config = json.loads((out / "config.json").read_text())
    assert (config["d_model"], config["encoder_layers"], config["decoder_attention_heads"]) == (32, 2, 2)
    assert (config["num_mel_bins"], config["vocab_size"], config["max_target_positions"]) == (80, 51864, 448)
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["suppress_tokens"] == [1, 2, 7, 50359]
    assert gen["begin_suppress_tokens"] == [220, 50256]
    assert gen["alignment_heads"] == [[1, 0], [1, 1]]
    assert (gen["decoder_start_token_id"], gen["eos_token_id"], gen["no_timestamps_token_id"]) == (50257, 50256, 50362)
    assert gen["is_multilingual"] is False
    # .en: lang_to_id would make transformers detect a language and emit its token.
    assert "lang_to_id" not in gen and "forced_decoder_ids" not in gen

    processor = WhisperProcessor.from_pretrained(out)
    tok = processor.tokenizer
    assert processor.feature_extractor.feature_size == 80
    assert len(tok) == 51864
    vocabulary = json.loads((random_ct2_dir / "vocabulary.json").read_text())
    assert tok.convert_ids_to_tokens(list(range(len(vocabulary)))) == vocabulary
    first_ts = tok.convert_tokens_to_ids("<|0.00|>")
    assert first_ts == gen["no_timestamps_token_id"] + 1
    assert tok.convert_ids_to_tokens(first_ts + N_TIMESTAMP_TOKENS - 1) == "<|30.00|>"
    assert "<|startoftranscript|>" in tok.all_special_tokens and "<|en|>" in tok.all_special_tokens
    assert tok.decode([50257, 50362, 31373, first_ts + 5, 995, 50256], skip_special_tokens=True) == "hello world"
    assert tok.normalize("The colour is £5") == "the color is £5"


# ---- bad input: one clear error each, nothing left behind --------------------------------------


def _header(spec: str) -> bytes:
    name = spec.encode() + b"\0"
    return struct.pack("<IH", 6, len(name)) + name


@pytest.fixture
def bad_sources(random_whisper, random_ct2_dir, ct2_convert, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """name -> (CT2 folder, a phrase the error must contain)."""
    root = tmp_path_factory.mktemp("bad")
    hf_folder = root / "hf_folder"
    shutil.copytree(random_whisper[0], hf_folder)

    truncated = root / "truncated"
    shutil.copytree(random_ct2_dir, truncated)
    data = (random_ct2_dir / "model.bin").read_bytes()
    (truncated / "model.bin").write_bytes(data[: len(data) // 2])

    other_spec = root / "other_spec"
    shutil.copytree(random_ct2_dir, other_spec)
    (other_spec / "model.bin").write_bytes(_header("TransformerSpec") + data[len(_header("WhisperSpec")) :])

    int8 = ct2_convert(random_whisper[0], root / "int8", "int8")
    return {
        "not_ct2": (hf_folder, "not a CTranslate2 model folder"),
        "missing": (root / "nowhere", "not found"),
        "truncated": (truncated, "truncated"),
        "int8": (int8, "quantized"),
        "other_spec": (other_spec, "not Whisper"),
    }


@pytest.mark.parametrize("case", ["not_ct2", "missing", "truncated", "int8", "other_spec"])
def test_bad_input_is_refused_cleanly(case, bad_sources, tmp_path):
    src, phrase = bad_sources[case]
    parent = tmp_path / "out_parent"
    parent.mkdir()
    (parent / "keep.txt").write_text("user file")
    with pytest.raises(SpeechftError, match=phrase) as excinfo:
        import_ct2(src, parent / "model")
    assert "Fix:" in str(excinfo.value) or case == "other_spec"
    assert sorted(p.name for p in parent.iterdir()) == ["keep.txt"]


def test_existing_output_is_kept_unless_overwrite(random_ct2_dir, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    with pytest.raises(SpeechftError, match="already exists"):
        import_ct2(random_ct2_dir, out)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    import_ct2(random_ct2_dir, out, overwrite=True)
    assert (out / "model.safetensors").is_file() and not (out / "mine.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


# ---- real weights: parity with ctranslate2 and sane transcripts --------------------------------


def _wer(references: list[str], hypotheses: list[str]) -> float:
    import jiwer

    return jiwer.wer([normalize(r) for r in references], [normalize(h) for h in hypotheses])


def _features(processor, clips) -> torch.Tensor:
    return processor.feature_extractor(clips, sampling_rate=16000, return_tensors="pt").input_features


def _hf_greedy(model, **inputs) -> list[list[int]]:
    """Greedy ids without the prompt and the final <|endoftext|> (as CT2 returns them)."""
    with torch.inference_mode():
        out = model.generate(do_sample=False, num_beams=1, **inputs)
    eot = model.generation_config.eos_token_id
    return [[t for t in row.tolist() if t != eot] for row in out]


@pytest.mark.slow
def test_tiny_en_matches_ctranslate2(tiny_en_dir, tiny_en_ct2_dir, speech_clips, sentences):
    """Same features into both engines: same greedy tokens, and teacher-forced log-probs
    (HF forward on CT2's tokens vs CT2's per-step `return_logits_vocab`) within 1e-3."""
    import ctranslate2
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(tiny_en_dir).eval()
    processor = WhisperProcessor.from_pretrained(tiny_en_dir)
    features = _features(processor, speech_clips)  # built once, fed to both
    gen = model.generation_config
    prompt = [gen.decoder_start_token_id, gen.no_timestamps_token_id]

    ct2_model = ctranslate2.models.Whisper(str(tiny_en_ct2_dir), device="cpu", compute_type="float32")
    results = ct2_model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features.numpy())),
        [prompt] * len(speech_clips), beam_size=1, return_logits_vocab=True,
    )
    ct2_ids = [r.sequences_ids[0] for r in results]
    with torch.inference_mode():  # run the encoder once for both HF passes below
        encoded = model.model.encoder(features)
    hf_ids = _hf_greedy(model, encoder_outputs=encoded)
    assert hf_ids == ct2_ids

    # Teacher forcing: decoder input = prompt + CT2 tokens; step j predicts token j (or EOT).
    eot = gen.eos_token_id
    longest = max(len(ids) for ids in ct2_ids)
    decoder_input = torch.tensor([prompt + ids + [eot] * (longest - len(ids)) for ids in ct2_ids])
    with torch.inference_mode():
        logits = model(encoder_outputs=encoded, decoder_input_ids=decoder_input).logits.double()
    max_diff = 0.0
    for row, result in enumerate(results):
        steps = np.array(result.logits[0], dtype=np.float64)  # [n_tokens + 1, vocab], suppressed = -FLT_MAX
        assert steps.shape[0] == len(ct2_ids[row]) + 1
        allowed = torch.from_numpy(steps > SUPPRESSED)
        hf = logits[row, len(prompt) - 1 : len(prompt) - 1 + steps.shape[0]].masked_fill(~allowed, -torch.inf)
        ct2 = torch.from_numpy(steps).masked_fill(~allowed, -torch.inf)
        diff = (hf.log_softmax(-1) - ct2.log_softmax(-1))[allowed].abs().max().item()
        max_diff = max(max_diff, diff)
    print(f"tiny.en max |log-prob diff| HF vs CT2 over {len(speech_clips)} clips: {max_diff:.2e}")
    assert max_diff < MAX_LOGPROB_DIFF

    texts = processor.batch_decode(hf_ids, skip_special_tokens=True)
    assert all(t < eot for ids in hf_ids for t in ids), "special or timestamp tokens in the transcript"
    assert not any("<|" in t for t in texts)
    assert _wer(sentences, texts) < MAX_WER, texts


@pytest.mark.slow
def test_tiny_en_reexport_is_bit_identical(tiny_en_dir, tiny_en_ct2_dir, ct2_convert, tmp_path):
    """Real weights survive CT2 -> HF -> CT2 unchanged."""
    back = ct2_convert(tiny_en_dir, tmp_path / "back", "float16")
    # The packaged model.bin was written by an older ctranslate2 than the installed one.
    _assert_same_ct2_tensors(tiny_en_ct2_dir / "model.bin", back / "model.bin", same_converter=False)


@pytest.mark.slow
def test_base_transcribes_english_like_ctranslate2(base_dir, speech_clips, sentences):
    """Language forced to English: clean English text, and the same greedy tokens as CT2 on
    the packaged (split) model.bin. Half the clips: base is ~3x slower than tiny."""
    import ctranslate2
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(base_dir).eval()
    processor = WhisperProcessor.from_pretrained(base_dir)
    gen = model.generation_config
    assert gen.is_multilingual and gen.lang_to_id["<|en|>"] == 50259
    assert gen.task_to_id == {"transcribe": 50359, "translate": 50358}
    clips, sentences = speech_clips[:BASE_CLIPS], sentences[:BASE_CLIPS]
    features = _features(processor, clips)
    start = time.perf_counter()
    hf_ids = _hf_greedy(model, input_features=features, language="en", task="transcribe")
    print(f"base HF greedy, {len(clips)} clips: {time.perf_counter() - start:.1f} s")
    texts = processor.batch_decode(hf_ids, skip_special_tokens=True)
    assert not any("<|" in t for t in texts)
    assert _wer(sentences, texts) < MAX_WER, texts

    # CT2 reference: the packaged split model.bin, reassembled in memory.
    parts, assets = BUILTIN_MODELS["whisper-base"].locate()
    files = {"model.bin": b"".join(p.read_bytes() for p in parts)}
    files.update({name: (assets / name).read_bytes() for name in ("config.json", "vocabulary.txt")})
    ct2_model = ctranslate2.models.Whisper("whisper-base", device="cpu", compute_type="float32", files=files)
    prompt = [gen.decoder_start_token_id, gen.lang_to_id["<|en|>"], gen.task_to_id["transcribe"], gen.no_timestamps_token_id]
    results = ct2_model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features.numpy())),
        [prompt] * len(clips), beam_size=1,
    )
    assert hf_ids == [r.sequences_ids[0] for r in results]
