"""Crash safety: a run killed with SIGKILL resumes to the same weights and report."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file
from support import comparable_report, kill_after_checkpoint, start_run, write_tiny_recipe

from speechft.cli import main
from speechft.recipe import INCOMPLETE_MARKER
from speechft.train import CHECKPOINT_NAME

def test_sigkill_then_resume_matches_uninterrupted_run(tiny_dataset, tiny_whisper_dir, tmp_path):
    extra = "  checkpoint_every: 3\n"
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir).read_text().replace("  select_by: loss\n", "  select_by: loss\n" + extra)
    recipe = recipe.replace("  epochs: 10\n", "  epochs: 30\n")
    (tmp_path / "recipe.yaml").write_text(recipe)
    rfile = tmp_path / "recipe.yaml"

    # An uninterrupted run (the reference), then a run killed mid-training: `latest` must keep
    # pointing to the finished one. Both in child processes: a run inside the test process would
    # inherit whatever torch thread count earlier tests left, and float sums differ with it.
    work = tmp_path / "work"
    work.mkdir()
    assert subprocess.run([sys.executable, "-m", "speechft", "run", str(rfile)], cwd=work, capture_output=True).returncode == 0
    runs = work / "runs" / "tiny"
    finished = os.readlink(runs / "latest")
    ref = runs / finished
    proc = start_run(rfile, work)
    assert kill_after_checkpoint(proc, runs) == -signal.SIGKILL
    killed = [p for p in runs.iterdir() if (p / INCOMPLETE_MARKER).exists()]
    assert len(killed) == 1
    assert os.readlink(runs / "latest") == finished
    assert not (killed[0] / "report.json").exists() and not (killed[0] / "model").exists()

    # Resume: same weights (bit-identical on CPU) and the same report except timings.
    done = subprocess.run([sys.executable, "-m", "speechft", "run", str(rfile), "--resume"], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stderr
    assert not (killed[0] / INCOMPLETE_MARKER).exists()
    assert os.readlink(runs / "latest") == killed[0].name
    a, b = load_file(ref / "model" / "model.safetensors"), load_file(killed[0] / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] == b[name]).all(), name
    ra = json.loads((ref / "report.json").read_text())
    rb = json.loads((killed[0] / "report.json").read_text())
    assert comparable_report(ra) == comparable_report(rb)



def test_resume_from_a_truncated_checkpoint_names_the_file_and_the_fix(tiny_dataset, tiny_whisper_dir, tmp_path, capsys):
    """A checkpoint cut short (a full disk, a partial copy): `--resume` stops with the file and
    what to do, not a traceback, and writes no model."""
    rfile = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    out = tmp_path / "killed"
    path = out / "checkpoints" / CHECKPOINT_NAME
    path.parent.mkdir(parents=True)
    (out / INCOMPLETE_MARKER).write_text("this run has not finished\n")
    torch.save({"params": {"w": torch.zeros(10_000)}}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert main(["run", str(rfile), f"output_dir={out}", "resume=true", "eval.prompted=false"]) == 2  # as --resume does
    err = capsys.readouterr().err
    assert f"cannot read checkpoint {path}" in err and "Fix: start fresh" in err and "pick another run" in err
    assert "Traceback" not in err
    assert not (out / "model").exists() and (out / INCOMPLETE_MARKER).exists()
