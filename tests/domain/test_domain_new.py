"""`speechft new`: a tiny domain from a 30-line document and 5 terms, then prepare and run it.

The document has three "# " sections (three documents), digits, decimals, dosing
abbreviations, headings, bullets, a numbered list and a table; "rivaroxaban" never occurs in
it, so it must come from carrier sentences.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from speechft.cli import main
from speechft.config import load_config
from speechft.domain import files, scaffold
from speechft.domain.abbreviations import abbreviation_table
from speechft.domain.coverage import MIN_TRAIN_OCCURRENCES
from speechft.domain.spoken import unspoken
from speechft.errors import SpeechftError
from speechft.synth import Voice
from speechft.text import count_term, normalize

DOCUMENT = """\
# Cardiology ward round

The patient is a 72 year old man admitted with new atrial fibrillation and a rate of 140.
We gave metoprolol 5 mg IV x2, e.g. at 09:00 and 09:30, and the rate settled to 90.
Dr. Okafor wants the troponin repeated at 3 hours; the first troponin was 0.04 ng/mL.
- Start apixaban 5 mg PO BID from tomorrow.
- Check renal function and weight before the second dose.
- Hold heparin while the apixaban is loading.

| Drug | Dose | Frequency |
|---|---|---|
| Metoprolol | 12.5 mg | BID |
| Apixaban | 2.5 mg | BID |
# Anticoagulation clinic

She has been on warfarin for 5-10 years and her INR today is 3.8, so hold tonight's dose.
We discussed switching to apixaban 2.5 mg BID because of her age and weight of 58 kg.
1. Stop warfarin today.
2. Start apixaban when the INR is below 2.
3. Review in clinic on 12/03/2025 at 14:30.
Her heparin bridge was 1 mg/kg SC q12h for 5 days last time.

# Emergency department

A 45 year old woman arrived with chest pain for about 2 hours and a normal ECG.
The first troponin was negative, so we repeat the troponin at 3 hours before discharge.
Give aspirin 300 mg PO stat and heparin 5000 U SC if the second troponin rises.
Paracetamol 1 g PO q6h PRN pain, max 4 g/day, was charted by the night team.
Blood pressure was 150/90 mmHg and temperature 37.8\u00b0C on arrival.
Metoprolol 25 mg PO was held because her heart rate was only 52 bpm.
"""
TERMS = ["apixaban", "metoprolol", "troponin", "heparin", "rivaroxaban"]
DOMAIN = "cardio"
SPLITS = ("train", "dev", "test")


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "notes.md").write_text(DOCUMENT, encoding="utf-8")
    (tmp_path / "terms.txt").write_text("\n".join(TERMS) + "\n", encoding="utf-8")
    return tmp_path


def _new(root, *extra: str, terms: str = "terms.txt", text: str = "notes.md") -> int:
    return main(["new", DOMAIN, "--terms", str(root / terms), "--text", str(root / text),
                 "--sources", str(root / "data_manifests"), "--recipes", str(root / "recipes"), *extra])


def _sentences(path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]


def test_the_document_has_the_promised_shape():
    lines = DOCUMENT.splitlines()
    assert len(lines) == 30 and sum(line.startswith("# ") for line in lines) == 3
    assert any(line.startswith("- ") for line in lines) and any(line.startswith("|") for line in lines)
    assert re.search(r"\d\.\d", DOCUMENT) and " PO " in DOCUMENT and " BID" in DOCUMENT


def test_new_writes_a_valid_domain(inputs, capsys):
    assert _new(inputs) == 0
    out = capsys.readouterr().out
    data, recipe = inputs / "data_manifests" / DOMAIN, inputs / "recipes" / DOMAIN
    for name in ("train.txt", "dev.txt", "test.txt", "terms.txt", "voices.yaml", "abbreviations.tsv", "lexicon.txt",
                 "coverage.tsv", "sentences.tsv"):
        assert (data / name).is_file(), name
    assert "rivaroxaban" in out and "coverage ->" in out and f"speechft run {recipe / 'recipe.yaml'}" in out
    # the voices spell the documents' acronyms (INR, ECG), the reference keeps them
    lexicon = (data / "lexicon.txt").read_text(encoding="utf-8")
    assert "INR\ti n r" in lexicon and "ECG\te c g" in lexicon

    # test and dev sentences come from documents train never saw (sentences.tsv says where each came from)
    rows = [line.split("\t") for line in (data / "sentences.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    docs = {split: {r[1] for r in rows if r[0] == split} for split in SPLITS}
    assert all(docs.values()) and not docs["train"] & docs["test"] and not docs["train"] & docs["dev"] \
        and not docs["dev"] & docs["test"]
    for split in ("dev", "test"):
        assert _sentences(data / f"{split}.txt") == [r[5] for r in rows if r[0] == split]

    # every term at least MIN_TRAIN_OCCURRENCES times in train; carrier sentences only in train, below their comment line
    train_lines = (data / "train.txt").read_text(encoding="utf-8").splitlines()
    comment = next(i for i, line in enumerate(train_lines) if line.startswith("#"))
    carriers = train_lines[comment + 1:]
    assert carriers and all("rivaroxaban" in c or any(t in c for t in TERMS) for c in carriers)
    train = [normalize(s) for s in _sentences(data / "train.txt")]
    for term in TERMS:
        assert sum(count_term(s, normalize(term)) for s in train) >= MIN_TRAIN_OCCURRENCES, term
    held_out = _sentences(data / "dev.txt") + _sentences(data / "test.txt")
    assert not set(carriers) & set(held_out) and not any("rivaroxaban" in s for s in held_out)
    coverage = {r.split("\t")[0]: r.split("\t")[1:] for r in (data / "coverage.tsv").read_text().splitlines()}
    assert coverage["term"] == ["train", "dev", "test", "templates"] and coverage["rivaroxaban"] == ["0", "0", "0", str(MIN_TRAIN_OCCURRENCES)]

    # no digit and no abbreviation reaches the text any split speaks
    table = abbreviation_table()
    for split in SPLITS:
        for sentence in _sentences(data / f"{split}.txt"):
            assert not any(c.isdigit() for c in sentence) and unspoken(sentence, table) == [], sentence
    assert "zero point zero four nanograms per milliliter" in (data / "train.txt").read_text() + (data / "dev.txt").read_text() \
        + (data / "test.txt").read_text()

    # held-out voices: no speaker in two splits; the plan and the recipe load
    from speechft.prepare import load_plan

    plan = load_plan(data / "voices.yaml")
    speakers = {split: {Voice.parse(v).speaker for v in plan.splits[split].voices} for split in SPLITS}
    assert speakers["test"] == {"heart", "slt"} and "awb" in speakers["dev"]
    assert not speakers["test"] & (speakers["train"] | speakers["dev"]) and not speakers["dev"] & speakers["train"]
    cfg = load_config(recipe / "recipe.yaml")
    assert (cfg.name, cfg.data.train, cfg.data.terms, cfg.data.general) == (
        DOMAIN, f"data/{DOMAIN}/train.jsonl", f"data_manifests/{DOMAIN}/terms.txt", "data/general/test.jsonl")
    assert cfg.data.prepare == [DOMAIN, "general", "everyday", "nonspeech"]
    assert "recipes/medical/recipe.yaml" in (recipe / "recipe.yaml").read_text()
    assert "first run fills in this table" in (recipe / "README.md").read_text()
    assert (recipe / "run.sh").stat().st_mode & 0o111
    assert subprocess.run(["bash", "-n", str(recipe / "run.sh")]).returncode == 0


def test_new_domains_copy_the_medical_settings():
    repo = files.Path(files.__file__).resolve().parents[2]
    medical = yaml.safe_load((repo / "data_manifests" / "medical" / "voices.yaml").read_text())
    train = medical["splits"]["train"]
    assert files.train_augmentation() == {k: v for k, v in train.items() if k != "voices"}
    written = yaml.safe_load(files.voices_yaml("cardio", ["flite:awb"]))["splits"]["train"]
    assert {k: v for k, v in written.items() if k != "voices"} == files.train_augmentation()
    assert medical["splits"]["test"]["voices"] == files.TEST_VOICES and medical["seed"] == files.PLAN_SEED
    new = yaml.safe_load(files.recipe_yaml("cardio", repo / "recipes"))
    old = yaml.safe_load((repo / "recipes" / "medical" / "recipe.yaml").read_text())
    # ... except the export's quantization, which a new domain checks on its own dev, and the
    # WiSE-FT interpolation chosen on a user-made domain's dev.
    assert new["export"].pop("quantization") == "auto" and old["export"].pop("quantization") == "int8"
    assert new["train"].pop("weight_interpolation") == files.NEW_DOMAIN_INTERPOLATION
    assert old["train"].pop("weight_interpolation") == 0.5
    assert {k: v for k, v in new.items() if k not in ("name", "data")} == {k: v for k, v in old.items() if k not in ("name", "data")}


def test_new_then_prepare_and_run_writes_a_full_run_folder(inputs, tiny_whisper_dir, monkeypatch):
    """The recipe `speechft new` wrote runs as it is from the repository root (here: the tmp folder),
    with a tiny model, 2 steps and flite voices only (keeps it to about a minute on 2 cores)."""
    assert _new(inputs) == 0
    plan_path = inputs / "data_manifests" / DOMAIN / "voices.yaml"
    plan = yaml.safe_load(plan_path.read_text())
    for split, voices in (("train", ["flite:rms", "flite:kal16"]), ("dev", ["flite:awb"]), ("test", ["flite:slt"])):
        plan["splits"][split]["voices"] = voices
    plan_path.write_text(yaml.safe_dump(plan))
    monkeypatch.chdir(inputs)
    assert main(["prepare", DOMAIN, "--sources", "data_manifests", "--data-root", "data"]) == 0
    n_train = len(_sentences(inputs / "data_manifests" / DOMAIN / "train.txt"))
    assert len((inputs / "data" / DOMAIN / "train.jsonl").read_text().splitlines()) == n_train
    assert main(["run", f"recipes/{DOMAIN}/recipe.yaml", f"model.name={tiny_whisper_dir}", "data.prepare=[]",
                 "data.general=null", "data.replay=null", "data.nonspeech=null", "data.nonspeech_train=null", "train.max_steps=2",
                 "train.epochs=1", "train.batch_size=1", "eval.num_beams=1",
                 "eval.deployed=false"]) == 0  # the deployed rows have their own tests (tests/test_deployed.py)
    run = (inputs / "runs" / DOMAIN / "latest").resolve()
    for name in ("report.json", "report.md", "config.yaml", "train.log", "chart.png", "model/README.md",
                 "eval/test-before.json", "eval/test-after.json"):
        assert (run / name).is_file(), name
    report = json.loads((run / "report.json").read_text())
    assert report["recipe"] == DOMAIN and report["train"]["steps"] == 2 and report["eval"]["test"]["after"]["n"] > 0


def test_sentence_limits_keep_runs_affordable_and_the_split_honest(inputs, capsys):
    assert _new(inputs, "--max-train", "4", "--max-test", "2") == 0
    out = capsys.readouterr().out
    data = inputs / "data_manifests" / DOMAIN
    rows = [line.split("\t") for line in (data / "sentences.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    assert sum(r[0] == "train" for r in rows) == 4 and sum(r[0] == "test" for r in rows) == 2
    assert len(_sentences(data / "test.txt")) == 2 and "test sentences left out, over the 2 a run affords" in out
    docs = {split: {r[1] for r in rows if r[0] == split} for split in SPLITS}
    assert not docs["train"] & docs["test"] and not docs["train"] & docs["dev"]
    train = [normalize(s) for s in _sentences(data / "train.txt")]  # carriers still top up every term
    for term in TERMS:
        assert sum(count_term(s, normalize(term)) for s in train) >= MIN_TRAIN_OCCURRENCES, term
    assert _new(inputs, "--force", "--max-dev", "-1") == 2
    assert "must be 0 (no limit) or more" in capsys.readouterr().err


def _nothing_written(root) -> bool:
    return all(not (root / top).exists() or not any((root / top).iterdir()) for top in ("data_manifests", "recipes"))


@pytest.mark.parametrize(("terms", "text", "message"), [
    ("# only a comment\n\n", DOCUMENT, "has no term"),
    ("\n".join(TERMS), "# Just a heading\n\n## And another one\n", "no sentence found"),
    ("\n".join(TERMS + ["+++"]), DOCUMENT, "term '+++' occurs 0 time(s)"),
    ("\n".join(TERMS), "Only one document here.\n\nAnd a second block of it.\n", "2 document(s)"),
])
def test_bad_input_is_one_clear_message_and_nothing_is_written(inputs, capsys, terms, text, message):
    (inputs / "bad_terms.txt").write_text(terms, encoding="utf-8")
    (inputs / "bad.md").write_text(text, encoding="utf-8")
    assert _new(inputs, terms="bad_terms.txt", text="bad.md") == 2
    err = capsys.readouterr().err
    assert err.startswith("speechft: error: ") and message in err and "Fix:" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert _nothing_written(inputs)


def test_an_existing_domain_is_refused_without_force_and_kept_whole(inputs, capsys):
    assert _new(inputs) == 0
    data = inputs / "data_manifests" / DOMAIN
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    (inputs / "notes.md").write_text(DOCUMENT.replace("72 year old", "80 year old"), encoding="utf-8")
    capsys.readouterr()
    assert _new(inputs) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"speechft: error: domain '{DOMAIN}' exists") and "--force" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before


def test_force_replaces_the_domain_but_keeps_the_hand_edited_tables(inputs):
    assert _new(inputs) == 0
    data = inputs / "data_manifests" / DOMAIN
    (data / "abbreviations.tsv").write_text("ECG\telectrocardiogram\n", encoding="utf-8")
    (data / "lexicon.txt").write_text("apixaban\tuh PIX uh ban\n", encoding="utf-8")
    assert _new(inputs, "--force") == 0
    assert "a normal electrocardiogram" in (data / "test.txt").read_text()
    assert "ECG\telectrocardiogram" in (data / "abbreviations.tsv").read_text()
    assert (data / "lexicon.txt").read_text() == "apixaban\tuh PIX uh ban\n"
    assert sorted(p.name for p in (inputs / "data_manifests").iterdir()) == [DOMAIN]  # no temporary folder left


def test_real_speech_becomes_an_extra_held_out_test_set(inputs):
    from support import write_manifest, write_tone_wav

    said = "The first troponin was negative, so we repeat the troponin at three hours before discharge."
    write_tone_wav(inputs / "real" / "a.wav", 1.0, 300)
    write_tone_wav(inputs / "real" / "b.wav", 1.0, 400)
    write_manifest(inputs / "real" / "real.jsonl", [{"audio_filepath": "a.wav", "text": said, "duration": 1.0},
                                                    {"audio_filepath": "b.wav", "text": "Start apixaban now.", "duration": 1.0}])
    assert _new(inputs, "--manifest", str(inputs / "real" / "real.jsonl")) == 0
    data = inputs / "data_manifests" / DOMAIN
    real = [json.loads(line) for line in (data / "real_test.jsonl").read_text().splitlines()]
    assert [r["text"] for r in real] == [said, "Start apixaban now."]
    assert all(r["audio_filepath"].startswith("/") for r in real)
    assert all(normalize(said) != normalize(s) for split in SPLITS for s in _sentences(data / f"{split}.txt"))
    assert (data / "coverage.tsv").read_text().splitlines()[0] == "term\ttrain\tdev\ttest\treal\ttemplates"
    run_sh = (inputs / "recipes" / DOMAIN / "run.sh").read_text()
    assert "real_test.jsonl" in run_sh and "real-$which.json" in run_sh
    assert load_config(inputs / "recipes" / DOMAIN / "recipe.yaml").data.general == "data/general/test.jsonl"


def test_a_failure_while_writing_leaves_nothing_behind(inputs, monkeypatch, capsys):
    real_write = scaffold.atomic_write_text

    def fail_on_readme(path, text):
        if path.name == "README.md":
            raise SpeechftError(f"cannot write {path}: the disk is full")
        real_write(path, text)

    monkeypatch.setattr(scaffold, "atomic_write_text", fail_on_readme)
    assert _new(inputs) == 2
    assert "the disk is full" in capsys.readouterr().err
    assert _nothing_written(inputs)


@pytest.mark.parametrize(("name", "message"), [("Cardio-Ward", "is not a short lower-case word"), ("general", "is taken")])
def test_a_bad_domain_name_is_refused(inputs, capsys, name, message):
    assert main(["new", name, "--terms", str(inputs / "terms.txt"), "--text", str(inputs / "notes.md"),
                 "--sources", str(inputs / "data_manifests"), "--recipes", str(inputs / "recipes")]) == 2
    assert message in capsys.readouterr().err and _nothing_written(inputs)
