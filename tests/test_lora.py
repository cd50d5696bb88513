"""LoRA (freeze.policy=lora, peft): the exact trainable set, the cached prefix, merging, weight
interpolation as a scaled delta, `speechft merge`, a recipe run's adapter/ and model/, resume
after SIGKILL, and two processes."""

import json
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support import comparable_report, kill_after_checkpoint, start_run, write_tiny_recipe
from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

from speechft.cache import model_fingerprint
from speechft.cli import main
from speechft.config import load_config
from speechft.errors import SpeechftError
from speechft.freeze import apply_freeze, plan_freeze, trainable_summary
from speechft.lora import LoraWhisperAdapter, attach_lora, lora_targets
from speechft.manifest import read_manifest
from speechft.models.adapters import load_adapter
from speechft.models.whisper import WhisperAdapter
from speechft.recipe import INCOMPLETE_MARKER
from speechft.train import Trainer

ATTN = ("q_proj", "k_proj", "v_proj", "out_proj")


def _cfg(data, *overrides):
    return load_config(None, [f"data.train={data['train']}", f"data.dev={data['dev']}", f"data.test={data['test']}",
                              "freeze.policy=lora", *overrides])


def _adapter(model_dir) -> WhisperAdapter:
    return WhisperAdapter(WhisperForConditionalGeneration.from_pretrained(model_dir), WhisperProcessor.from_pretrained(model_dir))


def _lora_recipe(tmp_path, data, model_dir, lora="  rank: 4\n  alpha: 8\n", train_extra=""):
    """The tiny recipe of test_recipe with freeze.policy: lora and a lora section."""
    text = write_tiny_recipe(tmp_path, data, model_dir).read_text()
    text = text.replace("freeze:\n  policy: lower\n  layers: 1\n", f"freeze:\n  policy: lora\nlora:\n{lora}")
    text = text.replace("  select_by: loss\n", "  select_by: loss\n" + train_extra)
    (tmp_path / "recipe.yaml").write_text(text)
    return tmp_path / "recipe.yaml"


def _expected_modules(encoder_blocks, decoder_blocks) -> set[str]:
    enc = {f"model.encoder.layers.{i}.{m}" for i in encoder_blocks for m in [f"self_attn.{p}" for p in ATTN] + ["fc1", "fc2"]}
    dec = {f"model.decoder.layers.{i}.{m}" for i in decoder_blocks
           for m in [f"self_attn.{p}" for p in ATTN] + ["encoder_attn.q_proj", "encoder_attn.out_proj", "fc1", "fc2"]}
    return enc | dec


def test_trainable_set_is_exactly_the_adapters_of_the_named_stacks(tiny_dataset, tiny_whisper_dir):
    adapter = _adapter(tiny_whisper_dir)
    fingerprints = [model_fingerprint(adapter, k) for k in range(3)]
    cfg = _cfg(tiny_dataset, "lora.encoder_from=1", "lora.rank=4")
    lora = attach_lora(adapter, cfg)
    assert isinstance(lora, LoraWhisperAdapter) and lora.model is adapter.model
    plan = apply_freeze(lora.model, cfg.freeze, lora.family)
    modules = _expected_modules([1], [0, 1])
    assert plan.trainable == {f"{m}.lora_{ab}.default.weight" for m in modules for ab in "AB"}
    for name, p in lora.model.named_parameters():
        assert p.requires_grad == (name in plan.trainable), name
    # The stem and encoder block 0 carry no adapter: they are the cached prefix, under the same cache key as before.
    assert (plan.frozen_units, plan.n_units) == (2, 3)
    assert [model_fingerprint(lora, k) for k in range(3)] == fingerprints
    summary = trainable_summary(lora.model, plan)
    assert "LoRA adapter modules: " in summary and all(m in summary for m in modules)
    assert "base_layer" not in summary


def test_decoder_only_lora_caches_the_whole_encoder_and_patterns_pick_modules(tiny_dataset, tiny_whisper_dir):
    names = [n for n, m in _adapter(tiny_whisper_dir).model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert set(lora_targets(names, _cfg(tiny_dataset).lora)) == _expected_modules([], [0, 1])
    picked = lora_targets(names, _cfg(tiny_dataset, "lora.target_modules=[self_attn.*]", "lora.encoder_from=0").lora)
    assert set(picked) == {f"model.{s}.layers.{i}.self_attn.{p}" for s in ("encoder", "decoder") for i in (0, 1) for p in ATTN}
    cfg = _cfg(tiny_dataset)
    lora = attach_lora(_adapter(tiny_whisper_dir), cfg)
    plan = plan_freeze([n for n, _ in lora.model.named_parameters()], cfg.freeze, "whisper")
    assert plan.encoder_fully_frozen  # as with freeze.policy=encoder: the encoder output is cached


@pytest.mark.parametrize("override, message", [
    ("lora.target_modules=[gate_proj]", "'gate_proj' names no linear module"),
    ("lora.target_modules=[encoder_attn.k_proj]", "training loss reads their weights directly"),
    ("lora.encoder_from=2", "the encoder has 2 blocks"),
])
def test_a_lora_section_that_does_not_fit_the_model_is_named(tiny_dataset, tiny_whisper_dir, override, message):
    with pytest.raises(SpeechftError, match=message):
        attach_lora(_adapter(tiny_whisper_dir), _cfg(tiny_dataset, override))


def test_lora_refuses_gradual_ctc_and_an_empty_choice(tiny_dataset):
    with pytest.raises(SpeechftError, match="gradual unfreezing of LoRA"):
        _cfg(tiny_dataset, "freeze.policy=gradual", "lora.encoder_from=1")
    with pytest.raises(SpeechftError, match="gradual unfreezing of LoRA"):
        _cfg(tiny_dataset, "freeze.policy=gradual", "freeze.gradual_start=lora")
    with pytest.raises(SpeechftError, match="nothing to adapt"):
        _cfg(tiny_dataset, "lora.decoder=false")
    with pytest.raises(SpeechftError, match="supports Whisper"):
        attach_lora(types.SimpleNamespace(family="ctc"), _cfg(tiny_dataset))
    assert _cfg(tiny_dataset, "lora.encoder_from=null").lora.encoder_from == -1


def _lora_fit(tiny_dataset, tiny_whisper_dir, tmp_path, *overrides):
    cfg = _cfg(tiny_dataset, "lora.rank=4", "lora.alpha=8", "lora.dropout=0.1", "train.epochs=2", "train.batch_size=2",
               "train.lr=1e-2", "train.select_by=loss", "train.checkpoint_every=0", *overrides)
    lora = attach_lora(_adapter(tiny_whisper_dir), cfg)
    Trainer(lora, cfg, tmp_path / "cache", plan=apply_freeze(lora.model, cfg.freeze, lora.family)).fit(
        read_manifest(tiny_dataset["train"]), read_manifest(tiny_dataset["dev"]))
    return lora


def _deltas(lora: LoraWhisperAdapter) -> dict[str, torch.Tensor]:
    """{adapted module: its LoRA delta}, computed here from lora_A, lora_B and alpha/rank."""
    out = {}
    for name, module in lora.model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
            out[name] = (b @ a * module.scaling["default"]).detach()
    return out


def test_merge_is_base_plus_delta_and_interpolation_scales_the_delta(tiny_dataset, tiny_whisper_dir, tmp_path):
    base = load_file(tiny_whisper_dir / "model.safetensors")
    trained = _lora_fit(tiny_dataset, tiny_whisper_dir, tmp_path)
    mixed = _lora_fit(tiny_dataset, tiny_whisper_dir, tmp_path, "train.weight_interpolation=0.25")
    deltas = _deltas(trained)
    assert deltas and all(float(d.abs().max()) > 0 for d in deltas.values())
    for name, p in mixed.model.named_parameters():
        if ".lora_A." in name:  # the down-projections are not pulled back towards their random start
            assert torch.equal(p, dict(trained.model.named_parameters())[name]), name
    trained.save(tmp_path / "trained")
    mixed.save(tmp_path / "mixed")
    merged = {"trained": load_file(tmp_path / "trained" / "model.safetensors"), "mixed": load_file(tmp_path / "mixed" / "model.safetensors")}
    assert merged["trained"].keys() == base.keys()
    for module, delta in deltas.items():
        key = f"{module}.weight"
        torch.testing.assert_close(merged["trained"][key], base[key] + delta, rtol=0, atol=1e-6)
        torch.testing.assert_close(merged["mixed"][key], base[key] + 0.25 * delta, rtol=0, atol=1e-6)
    adapted = {f"{m}.weight" for m in deltas}
    for key in base.keys() - adapted:  # everything else is the pretrained weight, bit for bit
        assert torch.equal(merged["mixed"][key], base[key]), key
    trained.merge()  # in place, as the recipe does before writing model/: the same weights as the merged copy
    assert trained.peft_model is None
    state = trained.model.state_dict()
    for key, t in merged["trained"].items():
        assert torch.equal(state[key], t), key


def _foreign_adapter(model, folder, **kwargs):
    """An adapter made by the peft library itself, with a non-zero delta."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(3)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "fc1"],
                                                  init_lora_weights=False, **kwargs))
    peft_model.save_pretrained(folder)
    return peft_model


def test_speechft_merge_takes_an_adapter_made_by_peft(tiny_whisper_dir, tmp_path, capsys):
    peft_model = _foreign_adapter(WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir), tmp_path / "ad",
                                  task_type="SEQ_2_SEQ_LM")
    expected = peft_model.merge_and_unload().state_dict()
    out = tmp_path / "merged"
    assert main(["merge", "--base", str(tiny_whisper_dir), "--adapter", str(tmp_path / "ad"), "--out", str(out)]) == 0
    got = load_file(out / "model.safetensors")
    assert got.keys() <= expected.keys() and "model.decoder.layers.0.fc1.weight" in got
    for key, t in got.items():
        torch.testing.assert_close(t, expected[key], rtol=0, atol=1e-6)
    assert not torch.equal(got["model.decoder.layers.0.fc1.weight"], load_file(tiny_whisper_dir / "model.safetensors")["model.decoder.layers.0.fc1.weight"])
    assert isinstance(load_adapter(str(out)), WhisperAdapter)
    assert (out / "preprocessor_config.json").is_file()  # the same folder layout as a run's model/


def _other_whisper(**changes):
    cfg = dict(vocab_size=51864, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
               encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80, max_source_positions=1500, max_target_positions=448)
    return WhisperForConditionalGeneration(WhisperConfig(**{**cfg, **changes}))


@pytest.mark.parametrize("other, message", [
    (None, "does not exist"),
    ({"d_model": 48}, "size mismatch"),  # another width
    ({"decoder_layers": 3}, "match no module of the model"),  # another depth
])
def test_speechft_merge_names_a_missing_or_foreign_adapter(tiny_whisper_dir, tmp_path, capsys, other, message):
    folder = tmp_path / "adapter"
    if other is not None:
        _foreign_adapter(_other_whisper(**other), folder)
    out = tmp_path / "merged"
    assert main(["merge", "--base", str(tiny_whisper_dir), "--adapter", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("speechft:")]  # not transformers' progress bars
    assert len(lines) == 1 and lines[0].startswith("speechft: error: ") and message in lines[0] and "Fix:" in lines[0]
    assert "Traceback" not in err and not out.exists()


@pytest.fixture(scope="module")
def lora_run(tiny_dataset, tiny_whisper_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lora_run")
    out = tmp / "out"
    recipe = _lora_recipe(tmp, tiny_dataset, tiny_whisper_dir, train_extra="  weight_interpolation: 0.5\n")
    assert main(["run", str(recipe), f"output_dir={out}", "train.epochs=3"]) == 0
    return out


def test_recipe_writes_the_adapter_alone_and_the_merged_model(lora_run, tiny_whisper_dir, tiny_dataset, tmp_path):
    for name in ("adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/README.md",
                 "model/model.safetensors", "model/config.json", "model/preprocessor_config.json", "model/README.md", "report.json"):
        assert (lora_run / name).is_file(), name
    assert not (lora_run / INCOMPLETE_MARKER).exists()
    card = (lora_run / "adapter" / "README.md").read_text()
    assert f"base_model: {tiny_whisper_dir}" in card and "| test |" in card.replace("|  test", "| test")
    report = json.loads((lora_run / "report.json").read_text())
    saved = load_file(lora_run / "adapter" / "adapter_model.safetensors")
    assert report["freeze"] == "lora" and report["trainable_params"] == sum(t.numel() for t in saved.values())
    # model/ is a plain transformers folder (no peft names) that the one loader reads ...
    merged = load_file(lora_run / "model" / "model.safetensors")
    base = load_file(tiny_whisper_dir / "model.safetensors")
    assert merged.keys() == base.keys()
    assert isinstance(load_adapter(str(lora_run / "model")), WhisperAdapter)
    # ... the encoder (no adapters by default) and the embeddings are the pretrained weights, bit for bit ...
    for key in base:
        if key.startswith("model.encoder.") or "embed" in key or "layer_norm" in key:
            assert torch.equal(merged[key], base[key]), key
    assert not torch.equal(merged["model.decoder.layers.0.fc1.weight"], base["model.decoder.layers.0.fc1.weight"])
    # ... and `speechft merge` of adapter/ onto the base gives model/ again.
    assert main(["merge", "--base", str(tiny_whisper_dir), "--adapter", str(lora_run / "adapter"), "--out", str(tmp_path / "m")]) == 0
    again = load_file(tmp_path / "m" / "model.safetensors")
    for key in merged:
        torch.testing.assert_close(again[key], merged[key], rtol=0, atol=1e-6)


def test_sigkill_then_resume_of_a_lora_run_is_bit_identical(tiny_dataset, tiny_whisper_dir, tmp_path):
    """As test_resume.py for the default policy: LoRA with dropout (random state) and weight interpolation."""
    rfile = _lora_recipe(tmp_path, tiny_dataset, tiny_whisper_dir, lora="  rank: 4\n  alpha: 8\n  dropout: 0.1\n",
                         train_extra="  checkpoint_every: 3\n  weight_interpolation: 0.5\n")
    rfile.write_text(rfile.read_text().replace("  epochs: 10\n", "  epochs: 30\n"))
    work = tmp_path / "work"
    work.mkdir()
    runs = work / "runs" / "tiny"
    # The reference runs in a child process too (test_resume.py says why).
    assert subprocess.run([sys.executable, "-m", "speechft", "run", str(rfile)], cwd=work, capture_output=True).returncode == 0
    ref = runs / os.readlink(runs / "latest")
    proc = start_run(rfile, work)
    assert kill_after_checkpoint(proc, runs) == -signal.SIGKILL
    killed = [p for p in runs.iterdir() if (p / INCOMPLETE_MARKER).exists()]
    assert len(killed) == 1 and not (killed[0] / "adapter").exists()
    done = subprocess.run([sys.executable, "-m", "speechft", "run", str(rfile), "--resume"], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stderr
    for rel in ("adapter/adapter_model.safetensors", "model/model.safetensors"):
        a, b = load_file(ref / rel), load_file(killed[0] / rel)
        assert a.keys() == b.keys()
        for name in a:
            assert torch.equal(a[name], b[name]), (rel, name)
    ra, rb = (json.loads((d / "report.json").read_text()) for d in (ref, killed[0]))
    assert comparable_report(ra) == comparable_report(rb)


def test_two_processes_train_the_adapters_like_one(tiny_dataset, tiny_whisper_dir, tmp_path):
    """Gradients of the LoRA tensors are summed over processes: one and two processes with the
    same global batch give the same adapters (no dropout: its masks depend on the split)."""
    rfile = _lora_recipe(tmp_path, tiny_dataset, tiny_whisper_dir, lora="  rank: 4\n  alpha: 8\n  dropout: 0.0\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    common = [str(rfile), "train.epochs=3", "eval.prompted=false"]
    runs = {"single": [sys.executable, "-m", "speechft", "run"],
            "double": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "speechft", "run"]}
    for name, cmd in runs.items():
        done = subprocess.run([*cmd, *common, f"output_dir={tmp_path / name}"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    single, double = (load_file(tmp_path / n / "adapter" / "adapter_model.safetensors") for n in runs)
    assert single.keys() == double.keys()
    assert max(float((single[n] - double[n]).abs().max()) for n in single) < 1e-5
    assert json.loads((tmp_path / "double" / "report.json").read_text())["processes"] == 2
