"""Home Assistant's path: the real `wyoming-faster-whisper` server loads a folder made by
`export_ct2` and transcribes speech sent through the `wyoming` client library (Transcribe,
AudioStart, AudioChunk..., AudioStop -> Transcript). Loopback only, no downloads."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("wyoming_faster_whisper", reason="pip install wyoming-faster-whisper")

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 90.0  # model load on 2 busy cores
READ_TIMEOUT_S = 60.0
CHUNK_SAMPLES = 1024  # 64 ms of 16 kHz audio per AudioChunk, as a satellite streams it
SAMPLE_RATE = 16000  # Hz
SAMPLE_WIDTH = 2  # bytes: 16-bit PCM, what Home Assistant sends


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def describe(port: int) -> bool:
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info

    async with AsyncTcpClient(HOST, port, connect_timeout=2, read_timeout=10) as client:
        await client.write_event(Describe().event())
        event = await client.read_event()
        return event is not None and Info.is_type(event.type)


async def transcribe(port: int, audio: np.ndarray) -> str:
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    fmt = {"rate": SAMPLE_RATE, "width": SAMPLE_WIDTH, "channels": 1}
    async with AsyncTcpClient(HOST, port, connect_timeout=5, read_timeout=READ_TIMEOUT_S) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(**fmt).event())
        step = CHUNK_SAMPLES * SAMPLE_WIDTH
        for i in range(0, len(pcm), step):
            await client.write_event(AudioChunk(audio=pcm[i : i + step], **fmt).event())
        await client.write_event(AudioStop().event())
        while True:
            event = await client.read_event()
            if event is None:
                raise AssertionError("server closed the connection without a transcript")
            if Transcript.is_type(event.type):
                return Transcript.from_event(event).text


@pytest.fixture(scope="module")
def wyoming_server(tmp_path_factory):
    """wyoming-faster-whisper serving the int8 export of tiny.en on a free loopback port, with
    the options docs/voice-assistants.md gives to decode as `speechft serve` does (the export
    ships no speechft_decoding.json: beam 5, no prompt, VAD on)."""
    from support import flite_export_int8

    model_dir, manifest = flite_export_int8(tmp_path_factory)
    port = free_port()
    log = tmp_path_factory.mktemp("wyoming") / "server.log"
    cmd = [sys.executable, "-m", "wyoming_faster_whisper", "--uri", f"tcp://{HOST}:{port}", "--model", str(model_dir),
           "--data-dir", str(log.parent), "--language", "en", "--stt-library", "faster-whisper", "--beam-size", "5",
           "--vad-filter", "--vad-min-speech-ms", "0",
           "--local-files-only", "--cpu-threads", str(min(os.cpu_count() or 1, 2))]
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"wyoming-faster-whisper exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if asyncio.run(describe(port)):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"wyoming-faster-whisper not ready after {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield port, manifest, model_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_wyoming_transcribes_exported_model(wyoming_server):
    """Its transcripts are right, and the same words `speechft serve` gives for the same clips."""
    from speechft.audio import load_audio
    from speechft.evaluate import score
    from speechft.models.ct2.runtime import load_ct2, transcribe_deployed

    port, manifest, model_dir = wyoming_server
    rows = [json.loads(line) for line in Path(manifest).read_text().splitlines()]
    audios = [load_audio(Path(manifest).parent / row["audio_filepath"]) for row in rows]
    texts = [asyncio.run(transcribe(port, audio)) for audio in audios]
    ids = [row["id"] for row in rows]
    assert score([row["text"] for row in rows], texts, ids).wer <= 0.1, texts
    model = load_ct2(model_dir)
    served = [transcribe_deployed(model, audio)[0] for audio in audios]
    assert score(served, texts, ids).wer == 0, (served, texts)
