"""CTCAdapter (wav2vec2 family): exact unit-by-unit forward, training through the real Trainer,
freezing, the activation cache, vocabulary extension, hotword beam search and bad input.

Everything is built here: a tiny random Wav2Vec2ForCTC (hidden 32, 2 blocks, 3 conv layers:
80 samples a frame), a character tokenizer written to tmp_path, and "speech" in which every
character is a 20 ms tone of its own pitch, so the mapping is learnable in seconds.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import (
    AutoModelForCTC,
    AutoProcessor,
    Data2VecAudioConfig,
    Data2VecAudioForCTC,
    HubertConfig,
    HubertForCTC,
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2Processor,
    WavLMConfig,
    WavLMForCTC,
)

from speechft.cache import PrefixCache
from speechft.config import load_config
from speechft.errors import SpeechftError
from speechft.evaluate import score, transcribe
from speechft.manifest import read_manifest
from speechft.models.base import DecodeOptions
from speechft.models.ctc import CTCAdapter, ctc_beam_decode, ctc_greedy_decode
from speechft.train import Trainer
from speechft.validate import validate_manifest

SR = 16000  # Hz
CHARS = "ABCDEFGH'"  # the tiny model's characters (upper case, like wav2vec2-base-960h)
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "|"]
CHAR_SECONDS = 0.02  # each character (and each space) is one 20 ms tone: 4 frames
TEXTS = ["bad cab", "face", "deaf bee", "fade", "head gag", "bag", "cafe bead", "hedge"]
RF_SAMPLES = 10 + 2 * 5 + 2 * 20  # receptive field of conv_kernel (10,3,3) / conv_stride (5,4,4)
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "conv_dim": (32, 32, 32), "conv_kernel": (10, 3, 3), "conv_stride": (5, 4, 4),
        "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4, "pad_token_id": 0}
NO_NOISE = {"hidden_dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, "feat_proj_dropout": 0.0,
            "final_dropout": 0.0, "layerdrop": 0.0, "mask_time_prob": 0.0}  # for the over-fitting run
FP16_REL = 1e-2  # the cache stores fp16: cached and uncached losses agree to about this


# ---- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def processor(tmp_path_factory) -> Wav2Vec2Processor:
    folder = tmp_path_factory.mktemp("ctc_vocab")
    vocab = {t: i for i, t in enumerate(SPECIALS + list(CHARS))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True, return_attention_mask=False)
    return Wav2Vec2Processor(feature_extractor=fe, tokenizer=Wav2Vec2CTCTokenizer(str(folder / "vocab.json")))


def make_adapter(processor, seed: int = 0, **config) -> CTCAdapter:
    torch.manual_seed(seed)
    cfg = Wav2Vec2Config(vocab_size=len(SPECIALS) + len(CHARS), **{**TINY, **config})
    return CTCAdapter(Wav2Vec2ForCTC(cfg).eval(), copy.deepcopy(processor))


def tone_speech(text: str, seed: int = 0) -> np.ndarray:
    """One windowed tone per character of the upper-cased text (space included)."""
    rng = np.random.default_rng(seed)
    n = int(CHAR_SECONDS * SR)
    t = np.arange(n) / SR
    window = np.hanning(n)
    pitch = {c: 300.0 + 350.0 * i for i, c in enumerate(" " + CHARS + "RZ")}
    x = np.concatenate([window * np.sin(2 * np.pi * pitch[c] * t) for c in text.upper()])
    return (0.4 * x + 0.005 * rng.standard_normal(x.size)).astype(np.float32)


def write_set(folder: Path, rows: list[tuple[str, np.ndarray]], name: str = "set") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (text, audio) in enumerate(rows):
        sf.write(str(folder / f"{name}{i}.wav"), audio, SR, subtype="PCM_16")
        lines.append({"audio_filepath": f"{name}{i}.wav", "text": text, "duration": round(audio.size / SR, 4), "id": f"{name}-{i}"})
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def train_set(tmp_path_factory):
    path = write_set(tmp_path_factory.mktemp("ctc_data"), [(t, tone_speech(t, i)) for i, t in enumerate(TEXTS)], "train")
    return read_manifest(path)


def recipe(*overrides: str):
    base = ["data.train=unused", "data.dev=unused", "data.test=unused", "train.batch_size=8", "eval.batch_size=8", "train.select_by=loss",
            "train.checkpoint_every=0", "train.early_stopping_patience=1000", "train.seed=0", "train.warmup_ratio=0.0"]
    return load_config(None, base + list(overrides))


def params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# ---- the forward, unit by unit -----------------------------------------------------------------
FAMILIES = [
    ("wav2vec2, group-norm CNN", Wav2Vec2ForCTC, Wav2Vec2Config, {}),
    ("wav2vec2, layer-norm CNN, pre-LN", Wav2Vec2ForCTC, Wav2Vec2Config, {"feat_extract_norm": "layer", "do_stable_layer_norm": True}),
    ("hubert", HubertForCTC, HubertConfig, {}),
    ("wavlm", WavLMForCTC, WavLMConfig, {"num_buckets": 32, "max_bucket_distance": 64}),
    ("data2vec-audio", Data2VecAudioForCTC, Data2VecAudioConfig, {"num_conv_pos_embeddings": 5}),
]


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # WavLM's own attention call
@pytest.mark.parametrize("name,model_cls,config_cls,extra", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_prefix_depth_reproduces_the_models_forward(processor, name, model_cls, config_cls, extra):
    """prefix(k) + rest(k) == the model's own batch-of-one forward, for every k, in a padded batch."""
    torch.manual_seed(0)
    model = model_cls(config_cls(vocab_size=len(SPECIALS) + len(CHARS), **{**TINY, **extra})).eval()
    adapter = CTCAdapter(model, processor)
    audios = [tone_speech(t, i) for i, t in enumerate(["bad", "cafe bead", "ace"])]
    fe = processor.feature_extractor
    with torch.no_grad():
        ref = [model(fe(a, sampling_rate=SR, return_tensors="pt").input_values).logits[0] for a in audios]
        for k in range(adapter.n_units + 1):
            logits, lengths = adapter._logits(adapter.collate(adapter.prefix_batch(audios, k)), k, augment=False)
            for i, r in enumerate(ref):
                assert int(lengths[i]) == r.shape[0]
                torch.testing.assert_close(logits[i, : r.shape[0]], r, atol=1e-5, rtol=1e-5)


def test_loss_equals_the_models_own_ctc_loss(processor):
    adapter = make_adapter(processor)
    audio, text = tone_speech("bad cab"), "bad cab"
    labels = torch.tensor([adapter.target_ids(text)])
    adapter.model.config.ctc_loss_reduction = "sum"
    iv = processor.feature_extractor(audio, sampling_rate=SR, return_tensors="pt").input_values
    with torch.no_grad():
        hf = adapter.model(iv, labels=labels).loss / labels.numel()
        ours, n = adapter.loss(adapter.collate(adapter.prefix_batch([audio], 3)), 3, [text])
    assert n == labels.numel() == 7  # B A D | C A B
    torch.testing.assert_close(ours, hf, atol=1e-5, rtol=1e-5)


# ---- training ----------------------------------------------------------------------------------
def test_overfits_eight_utterances_through_the_trainer(processor, train_set, tmp_path):
    adapter = make_adapter(processor, **NO_NOISE)
    # lower:1 trains block 1 and the head on the cached output of block 0 (one step an epoch).
    cfg = recipe("freeze.policy=lower:1", "train.epochs=160", "train.lr=4e-3")
    trainer = Trainer(adapter, cfg, tmp_path / "cache")
    assert adapter.prepare_for_training([u.text for u in train_set]) == {"added": [], "unused": ["'"]}
    before = trainer.dev_loss(train_set)
    trainer.fit(train_set, train_set)
    after = trainer.dev_loss(train_set)
    hyps = transcribe(adapter, train_set, trainer.cache_for(trainer.plan.frozen_units), batch_size=8)
    result = score([u.text for u in train_set], hyps, [u.id for u in train_set])
    print(f"CTC loss {before:.3f} -> {after:.3f}; CER {result.cer:.3f}; hyps {hyps}")
    assert after <= 0.2 * before
    assert result.cer < 0.1


@pytest.mark.parametrize("policy,frozen_prefixes,trainable", [
    ("feature_encoder", ["wav2vec2.feature_extractor."], None),
    ("lower:1", ["wav2vec2.feature_extractor.", "wav2vec2.feature_projection.", "wav2vec2.masked_spec_embed",
                 "wav2vec2.encoder.pos_conv_embed.", "wav2vec2.encoder.layer_norm.", "wav2vec2.encoder.layers.0."],
     {"lm_head.weight", "lm_head.bias"}),
])
def test_frozen_parameters_stay_bit_identical(processor, train_set, tmp_path, policy, frozen_prefixes, trainable):
    adapter = make_adapter(processor)
    names = [n for n, _ in adapter.model.named_parameters()]
    trainer = Trainer(adapter, recipe(f"freeze.policy={policy}", "train.epochs=3", "train.lr=1e-2", "train.batch_size=4"), tmp_path / "c")
    start = params(adapter.model)
    trainer.fit(train_set, train_set[:2])
    expected = {n for n in names if not any(n.startswith(p) for p in frozen_prefixes)}
    if trainable is not None:  # lower:1 of 2 blocks: block 1 and the head, nothing else
        assert expected == trainable | {n for n in names if n.startswith("wav2vec2.encoder.layers.1.")}
    assert trainer.plan.trainable == expected
    end = params(adapter.model)
    for n in names:
        if n in expected:
            continue
        assert torch.equal(start[n], end[n]), f"{n} changed although frozen"
    assert not torch.equal(start["lm_head.weight"], end["lm_head.weight"])


def test_cached_and_uncached_losses_agree(processor, train_set, tmp_path):
    """fp16 storage: equal within FP16_REL relative, at every prefix depth and over the first steps."""
    adapter = make_adapter(processor)
    utts, texts = train_set[:4], [u.text for u in train_set[:4]]
    with torch.no_grad():
        for k in range(adapter.n_units + 1):
            on = adapter.loss(adapter.collate(PrefixCache(tmp_path / "c", adapter, k).get(utts)), k, texts)[0]
            off = adapter.loss(adapter.collate(PrefixCache("", adapter, k, enabled=False).get(utts)), k, texts)[0]
            assert float(on) == pytest.approx(float(off), rel=FP16_REL)
    histories = []
    for cache in ("true", "false"):  # train mode: SpecAugment, dropout and LayerDrop draw the same numbers
        run = make_adapter(processor, mask_time_prob=0.3, mask_time_length=2)
        trainer = Trainer(run, recipe("freeze.policy=lower:1", "train.epochs=2", "train.batch_size=4", f"train.cache={cache}",
                                      "train.lr=1e-3"), tmp_path / "c2")
        histories.append([h["train_loss"] for h in trainer.fit(train_set, train_set[:2]).history])
    assert histories[0] == pytest.approx(histories[1], rel=FP16_REL)


def test_spec_augment_acts_only_in_training(processor):
    adapter = make_adapter(processor, mask_time_prob=0.5, mask_time_length=2, mask_feature_prob=0.3, mask_feature_length=4)
    batch = adapter.collate(adapter.prefix_batch([tone_speech(TEXTS[0])], 1))
    with torch.no_grad():
        evals = {float(adapter.loss(batch, 1, [TEXTS[0]])[0]) for _ in range(2)}
        adapter.model.train()
        np.random.seed(0)
        trains = {float(adapter.loss(batch, 1, [TEXTS[0]])[0]) for _ in range(3)}
    assert len(evals) == 1 and len(trains) > 1 and all(np.isfinite(list(trains)))


# ---- vocabulary --------------------------------------------------------------------------------
def test_new_symbol_extends_the_head_and_the_saved_model_reloads(processor, train_set, tmp_path):
    adapter = make_adapter(processor, **NO_NOISE)
    old = params(adapter.model)
    texts = [u.text for u in train_set] + ["zebra"]  # Z and R are new, E/B/A are known
    report = adapter.prepare_for_training(texts)
    assert report == {"added": ["R", "Z"], "unused": ["'"]}
    assert adapter.model.lm_head.out_features == adapter.model.config.vocab_size == 16
    assert torch.equal(adapter.model.lm_head.weight[:14], old["lm_head.weight"])
    assert torch.equal(adapter.model.lm_head.bias[:14], old["lm_head.bias"])
    assert adapter.prepare_for_training(texts)["added"] == []  # idempotent
    assert adapter.target_ids("zebra")[0] == adapter.tokenizer.convert_tokens_to_ids("Z") == 15

    rows = [(t, tone_speech(t, i)) for i, t in enumerate(["zebra", "bad cab"])]
    utts = read_manifest(write_set(tmp_path / "data", rows, "z"))
    new_rows = adapter.model.lm_head.weight[14:].detach().clone()
    trainer = Trainer(adapter, recipe("freeze.policy=feature_encoder", "train.epochs=2", "train.batch_size=2"), tmp_path / "c")
    trainer.fit(utts, utts)
    assert not torch.equal(adapter.model.lm_head.weight[14:], new_rows)  # the new rows are trained
    adapter.save(tmp_path / "model")
    model = AutoModelForCTC.from_pretrained(tmp_path / "model").eval()
    proc = AutoProcessor.from_pretrained(tmp_path / "model")
    ids = proc.tokenizer.convert_tokens_to_ids(["Z", "|", "B"])
    assert ids == [15, 4, 6] and proc.tokenizer.decode(ids) == "Z B"
    reloaded = CTCAdapter(model, proc)
    audios = [r[1] for r in rows]
    assert reloaded.labels == adapter.labels
    assert reloaded.transcribe_audio(audios) == adapter.transcribe_audio(audios)


def test_lower_case_vocabulary_stays_lower_case(tmp_path):
    vocab = {t: i for i, t in enumerate(SPECIALS + list("abcdefgh'"))}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    proc = Wav2Vec2Processor(feature_extractor=Wav2Vec2FeatureExtractor(), tokenizer=Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json")))
    torch.manual_seed(0)
    adapter = CTCAdapter(Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=len(vocab), **TINY)), proc)
    assert adapter.target_text("Bad, CAB!") == "bad cab"
    assert adapter.target_ids("Bad CAB") == [vocab[c] for c in "bad|cab"]


# ---- decoding ----------------------------------------------------------------------------------
def _spelled_logits(word: str, labels: list[str], near_miss: dict[int, str], margin: float = 0.5) -> np.ndarray:
    """One confident frame per character with blanks between; at positions in `near_miss` the
    acoustics prefer the wrong letter by `margin` logits."""
    rows = []
    for i, c in enumerate(word):
        frame = np.full(len(labels), -5.0, dtype=np.float32)
        frame[labels.index(c)] = 5.0
        if i in near_miss:
            frame[labels.index(near_miss[i])] = 5.0 + margin
        blank = np.full(len(labels), -5.0, dtype=np.float32)
        blank[labels.index("")] = 5.0
        rows += [frame, blank]
    return np.stack(rows)


def test_hotword_beam_search_fixes_a_near_miss_term():
    labels = ["", " ", "'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    logits = _spelled_logits("ATORVASTATIN", labels, {10: "E"})  # acoustics say ATORVASTATEN
    assert ctc_greedy_decode(logits, labels) == "ATORVASTATEN"
    assert ctc_beam_decode(logits, labels, beam_width=8) == "ATORVASTATEN"
    assert ctc_beam_decode(logits, labels, beam_width=8, hotwords=["ATORVASTATIN"]) == "ATORVASTATIN"
    # A clear acoustic difference still wins over the hotword bonus.
    clear = _spelled_logits("ATORVASTATIN", labels, {10: "E"}, margin=30.0)
    assert ctc_beam_decode(clear, labels, beam_width=8, hotwords=["ATORVASTATIN"], hotword_weight=1.0) == "ATORVASTATEN"


def test_kenlm_language_model_is_used_when_given(tmp_path):
    pytest.importorskip("kenlm")
    labels = ["", " ", "'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    arpa = tmp_path / "lm.arpa"
    arpa.write_text("\\data\\\nngram 1=4\nngram 2=2\n\n\\1-grams:\n-1.0\t<s>\t-0.3\n-1.0\t</s>\n-5.0\t<unk>\n"
                    "-0.3\tATORVASTATIN\t-0.3\n\n\\2-grams:\n-0.1\t<s> ATORVASTATIN\n-0.1\tATORVASTATIN </s>\n\n\\end\\\n")
    logits = _spelled_logits("ATORVASTATIN", labels, {10: "E"})
    assert ctc_beam_decode(logits, labels, beam_width=8, kenlm_model=str(arpa), lm_alpha=1.0) == "ATORVASTATIN"


def test_decoding_options_and_zero_training_baseline(processor):
    adapter = make_adapter(processor)
    eval_cfg = recipe("eval.num_beams=3").eval
    assert adapter.decode_options(eval_cfg) == DecodeOptions(num_beams=3)
    assert adapter.zero_training_baselines(["Bad", "cafe"], eval_cfg) == {"hotwords": DecodeOptions(num_beams=3, hotwords=("Bad", "cafe"))}
    batch = adapter.collate(adapter.prefix_batch([tone_speech("bad"), tone_speech("fade")], 2))
    greedy = adapter.transcribe_hidden(batch, 2, DecodeOptions(num_beams=1, max_new_tokens=5))
    beam = adapter.transcribe_hidden(batch, 2, DecodeOptions(num_beams=4))
    hot = adapter.transcribe_hidden(batch, 2, adapter.decode_options(eval_cfg).replace(hotwords=("bad",)))
    assert len(greedy) == len(beam) == len(hot) == 2
    assert all(set(t) <= set(CHARS + " ") for t in greedy + beam + hot)  # never <s>, </s>, <unk>
    # A Whisper-only option is refused, not silently dropped; a misspelt one is an error too.
    with pytest.raises(SpeechftError, match="prompt do not apply to ctc"):
        adapter.transcribe_hidden(batch, 2, DecodeOptions(prompt="atorvastatin"))
    with pytest.raises(SpeechftError, match="unknown decoding option.*hotword. Fix"):
        adapter.decode_options(eval_cfg).replace(hotword=("bad",))


# ---- bad input ---------------------------------------------------------------------------------
def test_bad_input_gives_problems_not_crashes(processor, tmp_path, caplog):
    adapter = make_adapter(processor)
    short = tone_speech("a")[: RF_SAMPLES - 20]  # shorter than one CNN frame
    rows = [("?! ...", tone_speech("bad")), ("zzz", tone_speech("zzz")), ("bad", short), ("cafe", tone_speech("cafe"))]
    path = write_set(tmp_path, rows, "bad")
    data_cfg = recipe().data
    limits = adapter.validation_limits(data_cfg)
    assert limits.min_seconds == pytest.approx(RF_SAMPLES / SR) and limits.vocab == set(CHARS.lower())
    usable, problems = validate_manifest(path, limits)
    assert [u.id for u in usable] == ["bad-3"]
    found = {(p.line, p.field): p.problem for p in problems}
    assert "empty after normalisation" in found[(1, "text")]
    assert found[(2, "text")] == "text has only symbols outside the model vocabulary"
    assert "receptive field" in found[(3, "duration")]
    assert all(p.severity == "error" for p in problems)
    # Training limits leave the vocabulary to prepare_for_training.
    assert adapter.limits(data_cfg).vocab is None
    assert (2, "text") not in {(p.line, p.field) for p in validate_manifest(path, adapter.limits(data_cfg))[1]}
    # Had they reached the model: a finite loss at every depth, and a warning for too few frames.
    audios, texts = [r[1] for r in rows], ["?! ...", "zzz", "bad", "bad cab fade " * 5]
    adapter.model.train()
    with caplog.at_level(logging.WARNING, logger="speechft.models.ctc"):
        for k in (0, 1, 3, adapter.n_units):
            loss, n = adapter.loss(adapter.collate(adapter.prefix_batch(audios, k)), k, texts)
            assert torch.isfinite(loss) and n == 3 + 64
            loss.backward()
    assert "fewer frames than their transcript needs" in caplog.text
    assert all(torch.isfinite(p.grad).all() for p in adapter.model.parameters() if p.grad is not None)


# ---- recipes -----------------------------------------------------------------------------------
RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("domain", ["medical", "aviation", "legal", "finance", "telephony"])
def test_wav2vec2_recipes_load(domain):
    cfg = load_config(RECIPES / domain / "recipe-wav2vec2.yaml")
    assert cfg.model.name == "facebook/wav2vec2-base-960h" and cfg.model.family in ("auto", "ctc")
    assert cfg.name == f"{domain}-wav2vec2" and cfg.data.train == f"data/{domain}/train.jsonl"
    assert cfg.freeze.policy in ("feature_encoder", "lower")


# ---- the runner, end to end --------------------------------------------------------------------
def test_recipe_runs_end_to_end_with_a_ctc_model(processor, tmp_path, monkeypatch):
    """Load from a local folder, validate, hotword baseline, extend the vocabulary, train 2 steps, report."""
    from speechft.recipe import run_recipe

    monkeypatch.setenv("SPEECHFT_HOME", str(tmp_path / "home"))
    adapter = make_adapter(processor)
    adapter.save(tmp_path / "tiny")
    data = tmp_path / "data"
    train = write_set(data, [(t, tone_speech(t, i)) for i, t in enumerate(TEXTS[:4] + ["zebra"])], "train")
    test = write_set(data, [(t, tone_speech(t, 9 + i)) for i, t in enumerate(TEXTS[4:])], "test")
    (data / "terms.txt").write_text("cafe\nhedge\n", encoding="utf-8")
    cfg = load_config(None, [f"data.train={train}", f"data.dev={test}", f"data.test={test}", f"data.terms={data / 'terms.txt'}",
                             f"model.name={tmp_path / 'tiny'}", "freeze.policy=lower:1", "train.max_steps=2", "train.batch_size=4",
                             "train.epochs=1", f"output_dir={tmp_path / 'run'}", "eval.batch_size=4",
                             "data.max_chars_per_second=0"])  # tone "speech": far faster than anyone talks
    run = run_recipe(cfg)
    report = json.loads((run / "report.json").read_text())
    assert report["family"] == "ctc" and set(report["eval"]["test"]) == {"before", "hotwords", "after"}
    assert np.isfinite(report["train"]["history"][0]["train_loss"])
    reloaded = AutoProcessor.from_pretrained(run / "model")
    assert {"R", "Z"} <= set(reloaded.tokenizer.get_vocab())
