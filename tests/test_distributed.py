"""Two CPU processes (gloo) give the weights and the WER of one process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("_dist_worker.py")


def _run(cmd, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tiny_dataset, tiny_whisper_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    args = [str(tiny_whisper_dir), str(tiny_dataset["train"]), str(tiny_dataset["dev"]), str(tiny_dataset["test"])]
    _run([sys.executable, str(WORKER), *args, str(tmp / "cache1"), str(tmp / "single")], tmp)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
          *args, str(tmp / "cache2"), str(tmp / "double")], tmp)
    return tmp


def test_two_processes_train_like_one(runs):
    single, double = load_file(runs / "single.safetensors"), load_file(runs / "double.safetensors")
    assert json.loads((runs / "double.json").read_text())["world"] == 2
    diff = max(float((single[n] - double[n]).abs().max()) for n in single)
    assert diff < 1e-5, diff
    s, d = (json.loads((runs / f"{x}.json").read_text()) for x in ("single", "double"))
    assert s["steps"] == d["steps"] > 0


def test_distributed_eval_gives_the_same_wer(runs):
    s, d = (json.loads((runs / f"{x}.json").read_text()) for x in ("single", "double"))
    assert d["hyps"] == s["hyps"]
    assert d["wer"] == s["wer"]
