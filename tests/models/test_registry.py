"""Built-in aliases, name resolution, family detection and fast offline failures."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from speechft.errors import SpeechftError
from speechft.models import list_models, load_model, resolve_model
from speechft.models import registry
from speechft.models.registry import BUILTIN_MODELS, BuiltinModel, format_models_table



def test_list_models_shows_both_aliases_usable_offline():
    rows = {r.alias: r for r in list_models()}
    assert {"whisper-tiny.en", "whisper-base"} <= rows.keys()
    for alias in ("whisper-tiny.en", "whisper-base"):
        assert rows[alias].package_installed and rows[alias].offline, alias
    table = format_models_table(list(rows.values()))
    assert "whisper-tiny.en" in table and "whisper-base" in table and "offline" in table.splitlines()[0]


def test_models_home_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SPEECHFT_HOME", str(tmp_path / "home"))
    assert registry.converted_path("whisper-base") == tmp_path / "home" / "models" / "whisper-base"
    monkeypatch.delenv("SPEECHFT_HOME")
    assert registry.converted_path("whisper-base") == Path("~/.cache/speechft/models/whisper-base").expanduser()


def test_resolve_local_folder_and_hub_id(tmp_path):
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve_model("openai/whisper-tiny") == "openai/whisper-tiny"
    with pytest.raises(SpeechftError, match="not found"):
        resolve_model(str(tmp_path / "missing"))


def test_resolve_refuses_a_ct2_folder(random_ct2_dir):
    with pytest.raises(SpeechftError, match="import-ct2"):
        resolve_model(str(random_ct2_dir))


def _no_network(monkeypatch) -> None:
    """Failing fast means not waiting on the network: any connection attempt fails the test."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the hub must not be contacted here")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_offline_hub_id_fails_fast_naming_the_offline_aliases(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _no_network(monkeypatch)
    with pytest.raises(SpeechftError) as excinfo:
        load_model("openai/whisper-tiny")
    assert "whisper-tiny.en" in str(excinfo.value) and "whisper-base" in str(excinfo.value)


def test_unreachable_hub_fails_fast_without_offline_flag(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    probes = []
    monkeypatch.setattr(registry, "_hub_reachable", lambda: probes.append(1) or False)  # the probe's answer
    _no_network(monkeypatch)  # and nothing else tries the hub after it
    with pytest.raises(SpeechftError, match="cannot be reached"):
        load_model("openai/whisper-tiny")
    assert probes == [1]


def test_missing_package_names_the_extra(monkeypatch):
    missing = BuiltinModel("whisper-gone", "test", ("speechft_no_such_package",), ("no-such-package",), lambda: ([], Path()))
    monkeypatch.setitem(BUILTIN_MODELS, "whisper-gone", missing)
    with pytest.raises(SpeechftError, match=r"pip install 'speechft\[models\]'"):
        resolve_model("whisper-gone")
    row = next(r for r in list_models() if r.alias == "whisper-gone")
    assert not row.offline
    assert "pip install 'speechft[models]'" in format_models_table([row])


@pytest.mark.parametrize(
    "model_type, architectures, family",
    [
        ("whisper", ["WhisperForConditionalGeneration"], "whisper"),
        ("wav2vec2", ["Wav2Vec2ForCTC"], "ctc"),
        ("hubert", ["HubertForCTC"], "ctc"),
        ("wavlm", None, "ctc"),
        ("data2vec-audio", ["Data2VecAudioForCTC"], "ctc"),
    ],
)
def test_family_detection(model_type, architectures, family):
    assert registry._detect_family(SimpleNamespace(model_type=model_type, architectures=architectures)) == family


def test_unsupported_family_is_refused():
    with pytest.raises(SpeechftError, match="unsupported model type 'bert'"):
        registry._detect_family(SimpleNamespace(model_type="bert", architectures=["BertModel"]))


def test_load_tiny_ctc_folder(tmp_path):
    from transformers import (
        Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Processor,
    )

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate("abcdefgh")}}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    processor = Wav2Vec2Processor(Wav2Vec2FeatureExtractor(), Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json")))
    config = Wav2Vec2Config(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    folder = tmp_path / "ctc"
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    loaded = load_model(str(folder))
    assert loaded.family == "ctc" and loaded.source == str(folder)
    assert type(loaded.model).__name__ == "Wav2Vec2ForCTC"


# ---- conversion into SPEECHFT_HOME, with a fake alias backed by the tiny random CT2 model -------


@pytest.fixture
def fake_alias(monkeypatch, random_ct2_dir, tmp_path):
    """Register 'whisper-random' (one model.bin) and 'whisper-random-split' (two parts)."""
    data = (random_ct2_dir / "model.bin").read_bytes()
    split = tmp_path / "split"
    split.mkdir()
    for i, chunk in enumerate((data[: len(data) // 3], data[len(data) // 3 :]), start=1):
        (split / f"model.bin.part{i}").write_bytes(chunk)
    single = BuiltinModel("whisper-random", "", ("numpy",), ("numpy",), lambda: ([random_ct2_dir / "model.bin"], random_ct2_dir))
    parts = BuiltinModel(
        "whisper-random-split", "", ("numpy",), ("numpy",),
        lambda: (sorted(split.glob("model.bin.part*")), random_ct2_dir),
    )
    monkeypatch.setitem(BUILTIN_MODELS, single.alias, single)
    monkeypatch.setitem(BUILTIN_MODELS, parts.alias, parts)
    monkeypatch.setenv("SPEECHFT_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "models"


def test_concurrent_first_use_converts_once_atomically(fake_alias):
    results, errors = [], []

    def worker():
        try:
            results.append(resolve_model("whisper-random"))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and set(results) == {str(fake_alias / "whisper-random")}
    # Only the finished folder and its lock file: no temp or staging folders left.
    assert sorted(p.name for p in fake_alias.iterdir()) == [".whisper-random.lock", "whisper-random"]
    row = next(r for r in list_models() if r.alias == "whisper-random")
    assert row.converted and row.size_mb > 0


def test_split_model_bin_is_reassembled(fake_alias):
    import torch
    from safetensors.torch import load_file

    whole, split = (Path(resolve_model(a)) for a in ("whisper-random", "whisper-random-split"))
    a, b = load_file(whole / "model.safetensors"), load_file(split / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not any(".ct2." in p.name for p in fake_alias.iterdir())


@pytest.mark.slow
def test_load_builtin_alias(tiny_en_dir):
    loaded = load_model("whisper-tiny.en")
    assert loaded.family == "whisper" and Path(loaded.source) == tiny_en_dir
    assert type(loaded.processor).__name__ == "WhisperProcessor"
    row = next(r for r in list_models() if r.alias == "whisper-tiny.en")
    assert row.converted and row.offline and row.size_mb > 100
    assert row.parameters == sum(p.numel() for p in loaded.model.parameters())
