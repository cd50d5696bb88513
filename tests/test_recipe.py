"""End to end: `speechft run` on a tiny random Whisper and a tiny manifest set."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from support import write_manifest, write_tiny_recipe
from speechft.cli import main
from speechft.config import load_config
from speechft.evaluate import score
from speechft.recipe import INCOMPLETE_MARKER, load_sets
from speechft.recipe.runner import choose_quantization
from speechft.report import render_markdown
from speechft.validate import Limits

REPORT_KEYS = {"recipe", "model", "freeze", "trainable_params", "total_params", "train", "eval"}
SUMMARY_KEYS = {"wer", "cer", "term_recall", "n"}


@pytest.fixture(scope="module")
def finished_run(tiny_dataset, tiny_whisper_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    recipe = write_tiny_recipe(tmp, tiny_dataset, tiny_whisper_dir)
    out = tmp / "out"
    assert main(["run", str(recipe), f"output_dir={out}", "eval.deployed=true"]) == 0
    return out


def test_run_writes_every_output(finished_run):
    for name in ("report.json", "report.md", "report.html", "chart.png", "config.yaml", "train.log", "model/config.json",
                 "eval/test-after.json", "model/model.safetensors", "model/README.md", "model/preprocessor_config.json",
                 "model/speechft_decoding.json", "model-ct2/model.bin", "model-ct2/speechft_decoding.json"):
        assert (finished_run / name).is_file(), name
    assert not (finished_run / INCOMPLETE_MARKER).exists()


def test_report_schema(finished_run):
    report = json.loads((finished_run / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert {"seconds", "steps", "epochs"} <= set(report["train"])
    assert report["train"]["precision"] == "fp32"  # the Trainer's own: CPU training autocasts only when asked
    headline = report["headline"]
    assert headline in ("after", "after+prompted")
    assert set(report["eval"]) == {"test", "general", "dev", "long"}  # dev: where the shipped decoding was chosen
    assert set(report["eval"]["test"]) == {"before", "prompted", "after", "after+prompted", "deployed"}
    assert set(report["eval"]["general"]) == {"before", headline}  # as shipped only; eval.prompted_sets: [test] by default
    assert set(report["eval"]["dev"]) == {"after", "after+prompted", "deployed-int8"}  # + export.quantization=auto's trial
    assert set(report["eval"]["long"]) == {"deployed", "deployed+timestamps"}  # as served, and the model's own timestamps
    for set_name, by_cond in report["eval"].items():
        for cond, res in by_cond.items():
            assert SUMMARY_KEYS <= set(res) and res["n"] == (1 if set_name == "long" else 4)
            # Every summary is exactly the score of its per-utterance file, and its interval holds it.
            rows = json.loads((finished_run / "eval" / f"{set_name}-{cond}.json").read_text())["utterances"]
            again = score([r["ref"] for r in rows], [r["hyp"] for r in rows], [r["id"] for r in rows])
            assert (res["wer"], res["cer"]) == (again.wer, again.cer)
            assert res["ci"]["wer"][0] <= res["wer"] <= res["ci"]["wer"][1]
    change = report["changes"]["test"]
    assert change["to"] == headline and change["wer_ci"][0] <= change["wer"] <= change["wer_ci"][1]
    # export.quantization=auto (the default): the int8 trial's dev gap is what the report says it is,
    # and the export is what choose_quantization makes of it (the tiny recipe allows a gap of 1000).
    choice, dev = report["export"]["quantization_choice"], report["eval"]["dev"]
    assert choice["int8_dev_gap"] == pytest.approx(dev["deployed-int8"]["wer"] - dev[headline]["wer"])
    assert report["export"]["quantization"] == choice["chosen"] == choose_quantization(choice["int8_dev_gap"], 1000.0) == "int8"
    assert choice["allowed_dev_gap"] == 500.0  # half of export.max_wer_gap
    assert not any(p.name.startswith(".model-ct2") for p in finished_run.iterdir())  # the trial export is gone
    shipped = json.loads((finished_run / "model" / "speechft_decoding.json").read_text())
    assert shipped == report["shipped"] and (shipped["prompt"] is not None) == (headline == "after+prompted")
    assert 0 < report["trainable_params"] < report["total_params"]
    assert set(report["stage_seconds"]) >= {"baseline eval", "train", "final eval", "deployed eval"}
    md = (finished_run / "report.md").read_text()
    assert "| test | before |" in md and f"| test | **{headline}** (shipped) |" in md


def test_train_loss_goes_down(finished_run):
    history = json.loads((finished_run / "report.json").read_text())["train"]["history"]
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]


def test_frozen_weights_bit_identical(finished_run, tiny_whisper_dir):
    before = load_file(tiny_whisper_dir / "model.safetensors")
    after = load_file(finished_run / "model" / "model.safetensors")
    frozen = [n for n in before if n.startswith(("model.encoder.conv", "model.encoder.embed_positions", "model.encoder.layers.0."))]
    assert frozen
    for n in frozen:
        assert torch.equal(before[n], after[n]), n
    assert not torch.equal(before["model.encoder.layers.1.fc1.weight"], after["model.encoder.layers.1.fc1.weight"])


def test_eval_is_deterministic(finished_run, tiny_dataset, tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"eval{i}.json"
        assert main(["eval", "--model", str(finished_run / "model"), "--manifest", str(tiny_dataset["test"]),
                     "--terms", str(tiny_dataset["terms"]), "--out", str(out)]) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    res = json.loads(outs[0])
    assert {"wer", "cer", "term_recall", "n", "utterances"} <= set(res) and res["n"] == 4


def test_invalid_manifest_stops_before_training(tiny_dataset, tiny_whisper_dir, tmp_path, capsys):
    bad = write_manifest(tmp_path / "bad.jsonl", [{"audio_filepath": "nope.wav", "text": "x", "id": "gone"}, {"text": "no audio"}])
    data = dict(tiny_dataset, train=bad)
    recipe = write_tiny_recipe(tmp_path, data, tiny_whisper_dir)
    out = tmp_path / "out"
    assert main(["run", str(recipe), f"output_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert "id=gone" in err and "missing key" in err and "nothing was trained" in err
    assert not (out / "model").exists() and not (out / "report.json").exists()
    assert (out / INCOMPLETE_MARKER).exists()


def test_unknown_key_is_named(tiny_dataset, tiny_whisper_dir, tmp_path, capsys):
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    assert main(["run", str(recipe), "train.epochz=3"]) == 2
    assert "train.epochz" in capsys.readouterr().err


def test_skip_invalid_trains_on_the_rest_and_reports_why(tiny_dataset, tiny_whisper_dir, tmp_path):
    rows = [json.loads(line) for line in tiny_dataset["train"].read_text().splitlines()]
    for r in rows:
        r["audio_filepath"] = str(tiny_dataset["train"].parent / r["audio_filepath"])
    rows.append({"audio_filepath": str(tmp_path / "gone.wav"), "text": "lost", "id": "gone"})
    rows.append({"audio_filepath": rows[0]["audio_filepath"], "text": "?!", "id": "punct"})
    train = write_manifest(tmp_path / "train.jsonl", rows)
    recipe = write_tiny_recipe(tmp_path, dict(tiny_dataset, train=train), tiny_whisper_dir)
    out = tmp_path / "out"
    assert main(["run", str(recipe), f"output_dir={out}", "data.skip_invalid=true", "train.epochs=1"]) == 0
    skipped = json.loads((out / "report.json").read_text())["skipped"]
    assert skipped["count"] == 2
    assert set(skipped["reasons"]) == {"file not found", "text is empty after normalisation"}
    assert "left out: 2" in (out / "report.md").read_text()


def test_plain_accelerate_launch_runs_two_processes_on_cpu(finished_run, tiny_dataset, tiny_whisper_dir, tmp_path):
    """`accelerate launch --num_processes 2` alone starts one process on a GPU-less machine;
    speechft relaunches it through Accelerate's multi-process launcher, and the report is the
    single-process report: same fields, same WER of the same evaluation sets."""
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    out = tmp_path / "out2"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--num_processes", "2",
                           "--main_process_port", "29517", "-m", "speechft", "run", str(recipe), f"output_dir={out}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "relaunching" in done.stderr
    single, double = (json.loads((d / "report.json").read_text()) for d in (finished_run, out))
    assert double["processes"] == 2 and single["processes"] == 1
    # finished_run also decodes through faster-whisper (eval.deployed): its export, long set and deployed rows
    assert set(double) == set(single) - {"export"}
    assert set(double["eval"]) == set(single["eval"]) - {"long"}
    for name in ("test", "general"):
        assert set(double["eval"][name]) == set(single["eval"][name]) - {"deployed"}
        assert double["eval"][name]["before"] == single["eval"][name]["before"]  # the same model, sharded evaluation


def test_long_audio_split_replaces_lines_by_pieces_and_reports_it(tiny_dataset, bad_corpus, tmp_path):
    rows = [json.loads(line) for line in (bad_corpus / "long.jsonl").read_text().splitlines()[:2]]  # with segments, without
    rows.append({"audio_filepath": "tone.wav", "text": "a short tone", "id": "short"})
    for r in rows:
        r["audio_filepath"] = str(bad_corpus / r["audio_filepath"])
    train = write_manifest(tmp_path / "train.jsonl", rows)
    base = [f"data.train={train}", f"data.dev={tiny_dataset['dev']}", f"data.test={tiny_dataset['test']}"]

    sets, skipped, split = load_sets(load_config(None, base), Limits())  # default: drop, as before
    assert [u.id for u in sets["train"]] == ["short"] and skipped["count"] == 2 and split["utterances"] == 0
    assert not (tmp_path / "pieces").exists()

    sets, skipped, split = load_sets(load_config(None, base + ["data.long_audio=split"]), Limits())
    assert [u.id for u in sets["train"]] == ["bursts-part1", "bursts-part2", "bursts-part3", "short"]
    assert split == {"utterances": 1, "pieces": 3}
    assert skipped == {"count": 1, "reasons": {"longer than the model's 30 s window; dropped": 1}}
    assert {os.path.dirname(u.audio_filepath) for u in sets["train"][:3]} == {str((tmp_path / "pieces").resolve())}
    report = {"recipe": "x", "model": "m", "family": "whisper", "freeze": "encoder", "trainable_params": 1, "total_params": 2,
              "train": {"steps": 1, "epochs": 1, "seconds": 1.0}, "eval": {}, "skipped": skipped, "split": split}
    assert "long audio split (data.long_audio: split): 1 utterance(s) into 3 pieces" in render_markdown(report)


def test_failed_data_preparation_stops_the_run_with_the_fix(tiny_dataset, tiny_whisper_dir, tmp_path, capsys):
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    assert main(["run", str(recipe), f"output_dir={tmp_path / 'out'}", "data.prepare=[nosuch-domain]"]) == 2
    err = capsys.readouterr().err
    assert "data preparation (nosuch-domain) failed" in err and "Fix: run `speechft prepare nosuch-domain`" in err
    assert "Traceback" not in err


def _replay_manifest(tiny_dataset, tmp_path, speaker="spkreplay", n=6):
    rows = [{"audio_filepath": str(tiny_dataset["train"].parent / f"train/{i % 8}.wav"), "text": f"everyday sentence {i}",
             "id": f"replay-{i}", "speaker": speaker} for i in range(n)]
    return write_manifest(tmp_path / "replay.jsonl", rows)


def test_replay_is_mixed_into_training_and_reported(tiny_dataset, tiny_whisper_dir, tmp_path):
    replay = _replay_manifest(tiny_dataset, tmp_path)
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    out = tmp_path / "out"
    assert main(["run", str(recipe), f"output_dir={out}", f"data.replay={replay}", "data.replay_size=4", "train.epochs=1"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["replay"] == {"manifest": str(replay), "utterances": 4}
    assert report["train"]["steps"] == 3  # (8 train + 4 replay) / batch 4: replay is trained on
    assert "spkreplay" in report["voices"]["replay"]
    assert "replay" not in report["eval"]  # replay is never an evaluation set
    assert "replay against forgetting: 4 everyday utterance(s)" in (out / "report.md").read_text()


def test_replay_subset_is_spread_over_the_file(tiny_dataset, tmp_path):
    replay = _replay_manifest(tiny_dataset, tmp_path, n=6)
    base = [f"data.train={tiny_dataset['train']}", f"data.dev={tiny_dataset['dev']}", f"data.test={tiny_dataset['test']}",
            f"data.replay={replay}"]
    sets, _, _ = load_sets(load_config(None, base + ["data.replay_size=3"]), Limits())
    assert [u.id for u in sets["replay"]] == ["replay-0", "replay-2", "replay-4"]
    sets, _, _ = load_sets(load_config(None, base), Limits())  # replay_size 0: all of it
    assert len(sets["replay"]) == 6


def test_replay_spoken_by_a_test_speaker_is_refused(tiny_dataset, tiny_whisper_dir, tmp_path, capsys):
    replay = _replay_manifest(tiny_dataset, tmp_path, speaker="spktest")
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    assert main(["run", str(recipe), f"output_dir={tmp_path / 'out'}", f"data.replay={replay}"]) == 2
    err = capsys.readouterr().err
    assert "spktest" in err and "Fix: a replay manifest spoken by other voices" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "model").exists()


def test_negative_replay_size_is_named(tiny_dataset, tiny_whisper_dir, tmp_path, capsys):
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    assert main(["run", str(recipe), "data.replay_size=-1"]) == 2
    assert "data.replay_size=-1" in capsys.readouterr().err


def test_packing_trains_on_fewer_clips_and_reports_them(tiny_dataset, tiny_whisper_dir, tmp_path):
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    out = tmp_path / "out"
    assert main(["run", str(recipe), f"output_dir={out}", "data.pack_seconds=3", "train.epochs=1"]) == 0
    report = json.loads((out / "report.json").read_text())
    clips = report["packed"]["clips"]
    assert report["packed"]["utterances"] == 8 and 2 <= clips < 8  # 8 clips of 1.0-1.7 s into 3 s windows
    assert report["train"]["steps"] == -(-clips // 4)  # batches of 4 clips
    assert report["voices"]["train"] == ["spktrain"]  # the voices of the split, not of the clips
    assert all(s["n"] == 4 for s in report["eval"]["test"].values())  # evaluation is never packed
    assert f"8 utterances in {clips} clips" in (out / "report.md").read_text()
    assert list((tiny_dataset["train"].parent / "packed").glob("pack-*.wav"))  # written beside the train manifest


def test_pack_seconds_beyond_the_window_is_named(tiny_dataset, tiny_whisper_dir, tmp_path, capsys):
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    assert main(["run", str(recipe), "data.pack_seconds=45"]) == 2
    err = capsys.readouterr().err
    assert "data.pack_seconds=45" in err and "Traceback" not in err


def test_a_term_list_too_long_for_the_prompt_ships_whole_terms_that_fit(tiny_dataset, tiny_whisper_dir, tmp_path):
    from transformers import AutoTokenizer

    from speechft.models.whisper import MAX_PROMPT_TOKENS

    terms = [f"pharmaceutical{i} compound{i}" for i in range(150)]  # ~1,000 tokens
    (tmp_path / "terms.txt").write_text("\n".join(terms) + "\n", encoding="utf-8")
    recipe = write_tiny_recipe(tmp_path, tiny_dataset, tiny_whisper_dir)
    out = tmp_path / "out"
    assert main(["run", str(recipe), f"output_dir={out}", f"data.terms={tmp_path / 'terms.txt'}", "train.epochs=1",
                 "eval.ship_prompt=always"]) == 0
    prompt = json.loads((out / "model" / "speechft_decoding.json").read_text())["prompt"]
    words = prompt.split(" ")
    held = [" ".join(words[i : i + 2]) for i in range(0, len(words), 2)]  # every term is two words
    assert set(held) <= set(terms) and 0 < len(held) < len(terms)
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    assert len(tokenizer.encode(" " + prompt, add_special_tokens=False)) <= MAX_PROMPT_TOKENS  # no engine cuts it
    report = json.loads((out / "report.json").read_text())
    assert {"before", "after"} <= set(report["eval"]["dev"])  # dev decoded to choose which terms go first


def test_auto_quantization_keeps_int8_only_within_half_the_allowed_gap():
    assert choose_quantization(-0.002, 0.01) == "int8"  # int8 decoded dev better
    assert choose_quantization(0.005, 0.01) == "int8"
    assert choose_quantization(0.0051, 0.01) == "float32"
    assert choose_quantization(0.0164, 0.01) == "float32"  # the held-out dental domain's dev
    assert choose_quantization(None, 0.01) == "float32"  # nothing measured: the exact engine
