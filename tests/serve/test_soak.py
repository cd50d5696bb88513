"""A bounded soak of `speechft serve` (benchmarks/serve_soak.py, smaller): 40 requests from 8
clients mixing good audio, truncated uploads, wrong content types and clients that disconnect
mid-upload, against the server running as a subprocess. Asserts correctness, not timing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from support import tone

from speechft.export import export_ct2

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_soak.py"
# The random tiny model: greedy, no temperature fallback, no VAD, so every good request runs
# the model and answers in a fraction of a second.
FAST_SWITCHES = ["--beams", "1", "--no-temperature-fallback", "--no-vad"]


def _soak_module():
    spec = importlib.util.spec_from_file_location("serve_soak", SOAK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_soak_of_40_requests_from_8_clients(tiny_whisper_dir, tmp_path, capsys):
    soak = _soak_module()
    export_ct2(tiny_whisper_dir, tmp_path / "ct2", "int8")
    clips = [soak.wav(tone(0.6 + 0.1 * i, 220 + 60 * i, seed=i)) for i in range(4)]
    fig = soak.soak(tmp_path / "ct2", clips, FAST_SWITCHES, requests=40, clients=8, max_seconds=600,
                    log_path=tmp_path / "server.log")
    with capsys.disabled():
        print()
        soak.print_figures(fig)
    assert fig["requests"] == 40 and fig["by_kind"] == {"disconnect": 8, "good": 20, "truncated_audio": 4,
                                                        "truncated_form": 4, "wrong_type": 4}
    assert fig["errors_by_code"] == {"400 invalid_audio": 4, "400 invalid_content_type": 4, "400 invalid_form": 4}
    if fig["problems"]:
        pytest.fail("\n".join(fig["problems"]) + "\n" + (tmp_path / "server.log").read_text()[-3000:])
