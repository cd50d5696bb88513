"""The server decodes the way the deployed model should (`transcribe_deployed`): one window
without timestamps up to 30 s, faster-whisper's long-form loop beyond (on clips cut at pauses); the hallucination
guards and VAD on by default; the folder's shipped beams and prompt unless told otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import FLITE_SENTENCES, SR, flite_manifest, get, post, tone, wav_bytes

from speechft.export import export_ct2
from speechft.models.shipped import ShippedDecoding, write_shipped
from speechft.serve import make_server

SHIPPED_PROMPT = "atorvastatin, apixaban, troponin"
# Ten sentences with 1 s pauses: ~43 s, so the long-form loop crosses at least one window edge.
LONG_SENTENCES = FLITE_SENTENCES + [
    "The train to the city leaves at half past eight every morning.",
    "We had dinner at a small restaurant near the river.",
    "She reads a book before going to bed every night.",
    "The children are playing football in the garden.",
    "The museum is closed on Mondays but open late on Fridays.",
]
PAUSE_S = 1.0
LONG_FORM_SLACK = 0.05  # long-form WER may exceed clip-by-clip WER by this much (a few words)


@pytest.fixture
def spy(monkeypatch):
    """Records the keyword arguments of every faster-whisper `transcribe` call, then decodes."""
    from faster_whisper import WhisperModel

    calls, real = [], WhisperModel.transcribe

    def transcribe(self, audio, **kwargs):
        calls.append(kwargs)
        return real(self, audio, **kwargs)

    monkeypatch.setattr(WhisperModel, "transcribe", transcribe)
    return calls


@pytest.fixture(scope="module")
def shipped_export(tiny_whisper_dir, tmp_path_factory) -> Path:
    """The random tiny model as a recipe leaves it (shipping beams 2 and a prompt), exported:
    `speechft export` carries speechft_decoding.json into the export folder."""
    import shutil

    root = tmp_path_factory.mktemp("shipped")
    model = shutil.copytree(tiny_whisper_dir, root / "model")
    write_shipped(model, ShippedDecoding(num_beams=2, prompt=SHIPPED_PROMPT, note="test"))
    export_ct2(model, root / "model-ct2", "int8")
    return root / "model-ct2"


def _verbose(url: str, audio: bytes, **fields) -> dict:
    status, body = post(url, {"response_format": "verbose_json", **fields}, audio)
    assert status == 200, body
    return json.loads(body)


def test_the_shipped_prompt_is_used_unless_the_request_sends_its_own(shipped_export, spy):
    fast = {"temperature_fallback": False}  # the random model: keep each decode short
    with make_server(shipped_export, port=0, decoding=fast) as server:
        health = json.loads(get(server.url, "/health")[1])
        assert health["beam_size"] == 2 and health["decoding"]["prompt_source"] == "shipped"
        assert _verbose(server.url, wav_bytes(1.0))["decoding"]["prompt"] == "shipped"
        assert _verbose(server.url, wav_bytes(1.0), prompt="Metformin.")["decoding"]["prompt"] == "request"
    assert [(c["hotwords"], c["beam_size"]) for c in spy] == [(SHIPPED_PROMPT, 2), ("Metformin.", 2)]
    spy.clear()
    with make_server(shipped_export, port=0, prompt="", beams=1, decoding=fast) as server:  # --prompt '' --beams 1
        decoding = _verbose(server.url, wav_bytes(1.0))["decoding"]
        assert decoding["prompt"] == "none" and decoding["beams"] == 1
        assert _verbose(server.url, wav_bytes(1.0), prompt="Metformin.")["decoding"]["prompt"] == "request"
    assert [(c["hotwords"], c["beam_size"]) for c in spy] == [(None, 1), ("Metformin.", 1)]


def test_short_audio_is_one_window_and_long_audio_goes_long_form_in_clips_cut_at_pauses(shipped_export, spy, tmp_path):
    pause = np.zeros(int(PAUSE_S * SR), np.float32)
    speech = np.concatenate([part for clip in _flite(tmp_path, LONG_SENTENCES) for part in (clip, pause)])
    with make_server(shipped_export, port=0, beams=1, decoding={"temperature_fallback": False}) as server:
        short = _verbose(server.url, wav_bytes(tone(5.0, 300)))
        long = _verbose(server.url, wav_bytes(speech))
        words = _verbose(server.url, wav_bytes(speech), **{"timestamp_granularities[]": "word"})
        no_speech = _verbose(server.url, wav_bytes(np.zeros(31 * SR, np.float32)))  # no speech: nothing to decode
    assert short["decoding"]["long_form"] is False and long["decoding"]["long_form"] is True
    # Each clip of the long audio is one window without timestamp tokens, as the short audio is;
    # with word timestamps the model places them (faster-whisper seeks on them).
    assert [c["without_timestamps"] for c in spy] == [True, True, False] and no_speech["text"] == ""
    assert all(c["no_speech_threshold"] == 0.6 and c["log_prob_threshold"] == -1.0
               and c["compression_ratio_threshold"] == 2.4 for c in spy)
    # Long audio: Silero VAD cuts it at the pauses, one clip per sentence, decoded in turn.
    assert spy[0]["vad_filter"] and not spy[1]["vad_filter"] and spy[2]["clip_timestamps"] == spy[1]["clip_timestamps"]
    clips = spy[1]["clip_timestamps"]
    assert len(clips) == 2 * len(LONG_SENTENCES) and clips == sorted(clips) and clips[-1] <= speech.size / SR + 0.5
    assert all(0 < end - start <= 30.0 for start, end in zip(clips[::2], clips[1::2]))
    # The shipped prompt precedes every window, so the previous text is not added (no room for both).
    assert all(c["hotwords"] == SHIPPED_PROMPT and not c["condition_on_previous_text"] for c in spy)
    assert spy[2]["word_timestamps"] is True and words["words"]
    # A segment per clip, its times the clip's.
    assert [(s["start"], s["end"]) for s in long["segments"]] == [(round(a, 2), round(b, 2)) for a, b in zip(clips[::2], clips[1::2])]


def _flite(folder: Path, sentences: list[str]) -> list[np.ndarray]:
    from speechft.audio import load_audio
    from speechft.manifest import read_manifest

    return [load_audio(u.audio_filepath) for u in read_manifest(flite_manifest(folder, sentences))]


def _long_form_vs_clips(url: str, clips: list[np.ndarray], label: str) -> None:
    """Send the joined recording and each clip alone; compare WERs and check the timestamps."""
    from speechft.evaluate import score

    pause = np.zeros(int(PAUSE_S * SR), np.float32)
    joined = np.concatenate([part for clip in clips for part in (clip, pause)])
    long = _verbose(url, wav_bytes(joined))
    one_by_one = [json.loads(post(url, file=wav_bytes(clip))[1])["text"] for clip in clips]
    ids = [f"s{i}" for i in range(len(clips))]
    clip_wer = score(LONG_SENTENCES, one_by_one, ids).wer
    long_wer = score([" ".join(LONG_SENTENCES)], [long["text"]], ["long"]).wer
    print(f"\n{label}: {joined.size / SR:.1f} s long-form WER {long_wer:.4f} vs clip by clip {clip_wer:.4f} "
          f"({len(long['segments'])} segments)")
    assert long["decoding"]["long_form"] is True and long["duration"] > 30
    assert long_wer <= clip_wer + LONG_FORM_SLACK and long_wer < 0.15, long["text"]
    starts = [s["start"] for s in long["segments"]]
    assert starts == sorted(starts) and all(s["start"] < s["end"] <= long["duration"] + 0.5 for s in long["segments"])


@pytest.mark.slow
def test_long_recording_scores_like_its_sentences_one_by_one(tiny_en_ct2_dir, tiny_en_dir, tmp_path_factory):
    """A >30 s recording of ten flite sentences with pauses, decoded by the real tiny.en: the
    CT2 export through faster-whisper's long-form loop, the HF folder through transformers'
    (the blind 30 s cut this replaces scored ~19% WER on such a clip, ~1% clip by clip)."""
    clips = _flite(tmp_path_factory.getbasetemp() / "long_form_clips", LONG_SENTENCES)
    with make_server(tiny_en_ct2_dir, port=0) as server:  # the deployed defaults
        _long_form_vs_clips(server.url, clips, "CT2 tiny.en, beam 5, VAD")
    with make_server(tiny_en_dir, port=0, beams=1) as server:  # greedy: transformers' beams are slow on a CPU
        _long_form_vs_clips(server.url, clips, "HF tiny.en, greedy")


def _non_speech() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(4 * SR) / SR
    return {
        "silence 1 s": np.zeros(SR, np.float32),
        "silence 5 s": np.zeros(5 * SR, np.float32),
        "white noise 3 s": (0.1 * rng.standard_normal(3 * SR)).astype(np.float32),
        "mains hum 4 s": (0.1 * np.sin(2 * np.pi * 50 * t) + 0.05 * np.sin(2 * np.pi * 100 * t)).astype(np.float32),
    }


@pytest.mark.slow
def test_non_speech_gets_no_words_with_the_default_guards(tiny_en_ct2_dir):
    """Whisper answers silence and noise with words ("you", "."); VAD and the guards do not."""
    from speechft.models.ct2.runtime import ct2_transcribe

    with make_server(tiny_en_ct2_dir, port=0) as server:
        texts = {name: json.loads(post(server.url, file=wav_bytes(x))[1])["text"] for name, x in _non_speech().items()}
        unguarded = {name: ct2_transcribe(server.backend.model, x)[0] for name, x in _non_speech().items()}
    print(f"\nwithout VAD and guards (the parity options): {unguarded}")
    assert texts == {name: "" for name in texts}
    assert any(unguarded.values())  # the guards are what keeps the words out


@pytest.mark.slow
def test_the_hf_path_gives_non_speech_no_words_with_vad_on(tiny_en_dir):
    """Serving the HF folder itself: VAD gates audio without speech, as the CT2 path's VAD does."""
    with make_server(tiny_en_dir, port=0, beams=1) as server:
        texts = {name: json.loads(post(server.url, file=wav_bytes(x))[1])["text"] for name, x in _non_speech().items()}
    with make_server(tiny_en_dir, port=0, beams=1, decoding={"vad_filter": False}) as server:
        ungated = {name: json.loads(post(server.url, file=wav_bytes(x))[1])["text"] for name, x in _non_speech().items()}
    print(f"\nHF path without VAD: {ungated}")
    assert texts == {name: "" for name in texts}
    assert any(ungated.values())  # the gate is what keeps the words out


def test_segments_the_model_thinks_are_silence_and_is_unsure_of_are_dropped(monkeypatch):
    """faster-whisper keeps a window unless no-speech > 0.6 AND log-prob < -1; babble passes that
    with words. The deployed decoding also drops segments above 0.3 no-speech and below -0.5."""
    from types import SimpleNamespace

    import ctranslate2

    from speechft.models.ct2 import runtime

    def segment(text, no_speech, logprob):
        return SimpleNamespace(text=text, no_speech_prob=no_speech, avg_logprob=logprob)

    decoded = [segment(" Yes, that's it.", 0.68, -0.97),  # babble: dropped
               segment(" A.", 0.52, -0.23),  # sure of its words: kept
               segment(" The patient is stable.", 0.05, -0.9),  # speech: kept
               segment(" No, no.", 0.45, -0.9),  # babble the default threshold catches too: dropped
               segment(" Right.", 0.25, -0.9)]  # below the no-speech bar: kept
    model = SimpleNamespace(transcribe=lambda audio, **kwargs: (iter(decoded), None))
    monkeypatch.setattr(runtime, "ct2_language", lambda model, language: "en")
    monkeypatch.setattr(ctranslate2, "set_random_seed", lambda seed: None)
    audio = np.zeros(SR, np.float32)
    text, segments = runtime.transcribe_deployed(model, audio)
    assert text == "A. The patient is stable. Right." and segments == [decoded[1], decoded[2], decoded[4]]
    off = runtime.DeployedDecoding(silence_no_speech_prob=None)
    assert runtime.transcribe_deployed(model, audio, off)[1] == decoded


def test_a_prompt_reaches_every_window_and_short_clips_see_the_initial_prompt_sequence(tiny_en_ct2_dir):
    """faster-whisper builds the same decoder prompt from `hotwords` as from `initial_prompt` for
    one window, so short clips decode as the report measured; long audio keeps it on every window."""
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

    from speechft.models.ct2.runtime import DeployedDecoding

    model = WhisperModel(str(tiny_en_ct2_dir), device="cpu", compute_type="int8")
    tok = Tokenizer(model.hf_tokenizer, False, task="transcribe", language="en")
    prompt = "apixaban, heparin, troponin"
    as_initial = model.get_prompt(tok, tok.encode(" " + prompt), without_timestamps=True)
    as_hotwords = model.get_prompt(tok, [], without_timestamps=True, hotwords=prompt)
    assert as_initial == as_hotwords
    short, long = DeployedDecoding(prompt=prompt).transcribe_kwargs(5.0), DeployedDecoding(prompt=prompt).transcribe_kwargs(90.0)
    assert short["hotwords"] == long["hotwords"] == prompt and short["without_timestamps"] and not long["without_timestamps"]
    assert not long["condition_on_previous_text"]  # the terms and the previous text would not both fit
    assert DeployedDecoding().transcribe_kwargs(90.0)["condition_on_previous_text"]
