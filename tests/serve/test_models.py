"""One base model, a LoRA adapter per domain, chosen per request by the OpenAI `model` field."""

from __future__ import annotations

import json

import pytest
from support import get, post, tone, wav_bytes, write_manifest, write_tiny_recipe

from speechft.cli import main
from speechft.serve import make_server

FAST = {"beams": 1, "decoding": {"vad_filter": False, "temperature_fallback": False, "no_speech_threshold": None}}


@pytest.fixture(scope="module")
def two_adapters(tiny_dataset, tiny_whisper_dir, tmp_path_factory):
    """Two LoRA runs of 2 steps on different texts: their adapter/ and merged model/ folders."""
    out = {}
    for name, text in (("cardio", "start the apixaban now"), ("aviation", "cleared for takeoff runway two seven")):
        tmp = tmp_path_factory.mktemp(name)
        rows = [json.loads(line) for line in tiny_dataset["train"].read_text().splitlines()]
        for r in rows:
            r["audio_filepath"], r["text"] = str(tiny_dataset["train"].parent / r["audio_filepath"]), text
        train = write_manifest(tmp / "train.jsonl", rows)
        recipe = write_tiny_recipe(tmp, dict(tiny_dataset, train=train), tiny_whisper_dir).read_text()
        recipe = recipe.replace("freeze:\n  policy: lower\n  layers: 1\n", "freeze:\n  policy: lora\nlora:\n  rank: 4\n  alpha: 32\n")
        (tmp / "recipe.yaml").write_text(recipe)
        run = tmp / "run"
        assert main(["run", str(tmp / "recipe.yaml"), f"output_dir={run}", "train.max_steps=2", "train.lr=0.05",
                     "eval.deployed=false", "eval.ship_prompt=never"]) == 0
        out[name] = run
    return out


def _text(url, audio, model=None):
    fields = {"response_format": "verbose_json", **({"model": model} if model else {})}
    status, body = post(url, fields, audio)
    assert status == 200, body
    return json.loads(body)


def test_each_request_gets_its_own_adapter(two_adapters, tiny_whisper_dir):
    audio = wav_bytes(tone(1.5, 330))
    adapters = {name: str(run / "adapter") for name, run in two_adapters.items()}
    with make_server(tiny_whisper_dir, port=0, adapters=adapters, **FAST) as server:
        ids = [m["id"] for m in json.loads(get(server.url, "/v1/models")[1])["data"]]
        assert ids == [tiny_whisper_dir.name, "cardio", "aviation"]
        got = {name: _text(server.url, audio, name) for name in adapters}
        base = _text(server.url, audio)  # no `model`: the base
        status, body = post(server.url, {"model": "legal"}, audio)
    assert {name: r["decoding"]["model"] for name, r in got.items()} == {"cardio": "cardio", "aviation": "aviation"}
    assert base["decoding"]["model"] == tiny_whisper_dir.name
    assert got["cardio"]["text"] != got["aviation"]["text"]  # different training, different transcripts
    assert status == 400 and json.loads(body)["error"]["code"] == "model_not_found"
    assert "cardio, aviation" in json.loads(body)["error"]["message"]
    # Each adapter's transcript is its own merged model's (the run's model/), served alone.
    for name, run in two_adapters.items():
        with make_server(run / "model", port=0, **FAST) as alone:
            assert _text(alone.url, audio)["text"] == got[name]["text"]


def test_a_peft_adapter_needs_a_model_folder_base(two_adapters, tmp_path):
    from speechft.errors import SpeechftError
    from speechft.export import export_ct2

    ct2 = tmp_path / "ct2"
    export_ct2(two_adapters["cardio"] / "model", ct2, "int8")
    with pytest.raises(SpeechftError, match="cannot be applied to the CTranslate2 model"):
        make_server(ct2, port=0, adapters={"aviation": str(two_adapters["aviation"] / "adapter")})
    with make_server(ct2, port=0, adapters={"cardio": str(ct2)}, **FAST) as server:  # the fast path: merged exports
        assert _text(server.url, wav_bytes(tone(1.0, 300)), "cardio")["decoding"]["backend"] == "ct2"


def test_one_served_model_answers_any_model_name_and_adapters_need_theirs():
    from speechft.serve.errors import APIError
    from speechft.serve.models import ServedModels

    base, cardio = object(), object()
    alone = ServedModels({"tiny": base}, "tiny")
    for name in (None, "", "whisper-1", "whisper-large-v3", "gpt-4o-transcribe"):  # what clients are set up with
        assert alone.pick(name) == ("tiny", base)
    several = ServedModels({"tiny": base, "cardio": cardio}, "tiny")
    assert several.pick("cardio") == ("cardio", cardio) and several.pick("whisper-1") == ("tiny", base)
    with pytest.raises(APIError) as refused:
        several.pick("whisper-large-v3")
    assert refused.value.code == "model_not_found"
