"""`speechft import` / `export-dataset`: every source form, built here, imported and checked.

Each test builds its source in tmp_path (datasets' save_to_disk, an audiofolder, a Common
Voice-style folder with ffmpeg MP3s, a Kaldi dir with segments and a pipe), imports it and
checks that the manifest validates, texts and speakers survive, durations agree within
0.01 s, and a second import does no work.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from support import tone
from speechft.cli import main
from speechft.errors import SpeechftError
from speechft.importers import Columns, detect_format, import_dataset
from speechft.manifest import read_manifest
from speechft.validate import validate_manifest

TEXTS = ["give atorvastatin daily", "start apixaban now", "check the troponin", "hold the metformin",
         "order an echocardiogram", "stop the heparin"]
DURATION_TOLERANCE = 0.01  # s


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[dict]:
    """Six WAV clips (one at 44.1 kHz stereo, to be converted) with text, speaker and exact duration."""
    folder = tmp_path_factory.mktemp("clips")
    out = []
    for i, text in enumerate(TEXTS):
        sr, channels = (44100, 2) if i == 3 else (16000, 1)
        path = folder / f"clip{i}.wav"
        sf.write(str(path), tone(1.0 + 0.1 * i, 200 + 40 * i, seed=i, sr=sr, channels=channels), sr, subtype="PCM_16")
        out.append({"path": path, "text": text, "speaker": f"spk{i % 2}", "id": f"utt{i}", "seconds": sf.info(str(path)).duration})
    return out


def _check(manifest: Path, expected: list[dict], speakers: bool = True) -> None:
    """The manifest validates and carries the expected texts, speakers and durations (by text)."""
    usable, problems = validate_manifest(manifest)
    assert [p.message for p in problems if p.severity == "error"] == []
    utts = read_manifest(manifest)
    assert len(usable) == len(utts) == len(expected)
    by_text = {u.text: u for u in utts}
    assert set(by_text) == {e["text"] for e in expected}
    for e in expected:
        u = by_text[e["text"]]
        assert abs(u.duration - e["seconds"]) <= DURATION_TOLERANCE, (u.id, u.duration, e["seconds"])
        assert abs(sf.info(u.audio_filepath).duration - e["seconds"]) <= DURATION_TOLERANCE
        assert sf.info(u.audio_filepath).samplerate == 16000 and sf.info(u.audio_filepath).channels == 1
        if speakers:
            assert u.speaker == e["speaker"]
    raw = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert all(not os.path.isabs(r["audio_filepath"]) for r in raw)  # relative to the manifest's folder
    assert all(set(r) <= {"audio_filepath", "text", "duration", "id", "speaker"} for r in raw)


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def _import_twice(source, out: Path, **kwargs):
    """Import, then import again: the second finds every file and changes nothing."""
    first = import_dataset(source, out, **kwargs)
    before = _mtimes(out)
    second = import_dataset(source, out, **kwargs)
    for split in second.splits.values():
        assert split.written == 0 and split.reused == split.utterances and not split.manifest_changed
    assert _mtimes(out) == before
    return first


def _hf_dataset(clips, rows=None):
    from datasets import Audio, Dataset

    rows = rows if rows is not None else clips
    return Dataset.from_dict({"audio": [str(c["path"]) for c in rows], "text": [c["text"] for c in rows],
                              "speaker": [c["speaker"] for c in rows], "id": [c["id"] for c in rows]}).cast_column("audio", Audio())


def test_save_to_disk_dataset(clips, tmp_path):
    src = tmp_path / "ds"
    _hf_dataset(clips).save_to_disk(str(src))
    assert detect_format(src) == "disk"
    result = _import_twice(src, tmp_path / "out")
    split = result.splits["train"]
    assert split.written == len(clips) and split.failed == []
    _check(split.manifest, clips)
    assert {u.id for u in read_manifest(split.manifest)} == {c["id"] for c in clips}


def test_save_to_disk_dataset_dict_and_split(clips, tmp_path):
    from datasets import DatasetDict

    src = tmp_path / "dd"
    DatasetDict({"train": _hf_dataset(clips, clips[:4]), "test": _hf_dataset(clips, clips[4:])}).save_to_disk(str(src))
    result = import_dataset(src, tmp_path / "all")
    assert set(result.manifests) == {"train", "test"}
    _check(result.manifests["train"], clips[:4])
    _check(result.manifests["test"], clips[4:])
    only = import_dataset(src, tmp_path / "one", split="test")
    assert set(only.manifests) == {"test"} and not (tmp_path / "one" / "train.jsonl").exists()
    with pytest.raises(SpeechftError, match="no split 'dev'. Splits: train, test"):
        import_dataset(src, tmp_path / "bad", split="dev")


def test_audiofolder_with_metadata_csv(clips, tmp_path):
    src = tmp_path / "af"
    src.mkdir()
    with open(src / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "transcription", "speaker_id"])
        for c in clips:
            shutil.copy(c["path"], src / c["path"].name)
            w.writerow([c["path"].name, c["text"], c["speaker"]])
    assert detect_format(src) == "audiofolder"
    result = _import_twice(src, tmp_path / "out")
    _check(result.manifests["train"], clips)
    assert {u.id for u in read_manifest(result.manifests["train"])} == {c["path"].stem for c in clips}


def test_common_voice_folder_with_mp3_clips(clips, tmp_path):
    src = tmp_path / "cv-corpus" / "en"
    (src / "clips").mkdir(parents=True)
    header = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accents", "variant", "locale", "segment"]
    for split, rows in (("train", clips[:4]), ("dev", clips[4:]), ("validated", clips)):
        with open(src / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("\t".join(header) + "\n")
            for c in rows:
                name = f"common_voice_en_{c['id']}.mp3"
                if not (src / "clips" / name).exists():
                    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(c["path"]), "-ar", "48000",
                                    "-codec:a", "libmp3lame", "-b:a", "64k", str(src / "clips" / name)], check=True)
                f.write("\t".join([c["speaker"], name, c["text"], "2", "0", "", "", "", "", "en", ""]) + "\n")
    assert detect_format(src) == "commonvoice"
    result = _import_twice(src, tmp_path / "out")
    assert set(result.manifests) == {"train", "dev"}  # the release's own split; validated.tsv on request
    _check(result.manifests["train"], clips[:4])
    _check(result.manifests["dev"], clips[4:])
    validated = import_dataset(src, tmp_path / "out", split="validated").splits["validated"]
    assert validated.written == 0  # the same clips: converted once
    _check(validated.manifest, clips)


def _kaldi_dir(clips, root: Path) -> tuple[Path, list[dict]]:
    """Two recordings made of the clips with 0.5 s gaps, one a plain path and one an ffmpeg pipe,
    cut back into utterances by `segments`."""
    data = root / "data" / "train"
    data.mkdir(parents=True)
    gap = np.zeros(8000, np.float32)
    expected, scp, seg, text, utt2spk = [], [], [], [], []
    for r, group in enumerate((clips[:3], clips[3:])):
        parts, t = [], 0.0
        for c in group:
            x, sr = sf.read(str(c["path"]), dtype="float32", always_2d=True)
            x = x.mean(axis=1)
            if sr != 16000:
                from speechft.audio import resample

                x = resample(x, sr)
            utt = f"{c['speaker']}-rec{r}-{c['id']}"
            seg.append(f"{utt} rec{r} {t:.3f} {t + x.size / 16000:.3f}")
            text.append(f"{utt} {c['text']}")
            utt2spk.append(f"{utt} {c['speaker']}")
            expected.append({**c, "seconds": round(x.size / 16000, 3)})
            parts += [x, gap]
            t += x.size / 16000 + 0.5
        wav = root / "audio" / f"rec{r}.flac"
        wav.parent.mkdir(exist_ok=True)
        sf.write(str(wav), np.concatenate(parts), 16000, subtype="PCM_16")
        scp.append(f"rec{r} {wav}" if r == 0 else f"rec{r} ffmpeg -loglevel error -i {wav} -f wav - |")
    for name, lines in (("wav.scp", scp), ("segments", seg), ("text", text), ("utt2spk", utt2spk)):
        (data / name).write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")
    return data, expected


def test_kaldi_dir_with_segments_and_a_pipe(clips, tmp_path):
    data, expected = _kaldi_dir(clips, tmp_path)
    assert detect_format(data) == "kaldi"
    result = _import_twice(data, tmp_path / "out")
    assert list(result.manifests) == ["train"]  # named after the data dir
    _check(result.manifests["train"], expected)
    assert {u.id for u in read_manifest(result.manifests["train"])} == {ln.split()[0] for ln in (data / "text").read_text().splitlines()}


def test_kaldi_dir_without_text_is_refused(clips, tmp_path):
    data, _ = _kaldi_dir(clips, tmp_path)
    (data / "text").unlink()
    with pytest.raises(SpeechftError, match="has no `text` file"):
        import_dataset(data, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_parquet_and_csv_tables(clips, tmp_path):
    from datasets import Audio, Dataset, Features, Value

    features = Features({"audio": Audio(), "sentence": Value("string"), "client_id": Value("string")})
    Dataset.from_dict({"audio": [{"bytes": c["path"].read_bytes(), "path": c["path"].name} for c in clips],
                       "sentence": [c["text"] for c in clips], "client_id": [c["speaker"] for c in clips]},
                      features=features).to_parquet(str(tmp_path / "train.parquet"))  # Common Voice's column names
    _check(_import_twice(tmp_path / "train.parquet", tmp_path / "pq").manifests["train"], clips)
    table = tmp_path / "table"
    (table / "wavs").mkdir(parents=True)
    with open(table / "list.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["wav", "text", "speaker"])
        for c in clips:
            shutil.copy(c["path"], table / "wavs" / c["path"].name)
            w.writerow([f"wavs/{c['path'].name}", c["text"], c["speaker"]])  # relative to the table
    assert detect_format(table / "list.csv") == "csv"
    _check(_import_twice(table / "list.csv", tmp_path / "csv").manifests["train"], clips)


def test_undecodable_rows_are_listed_and_skipped(clips, tmp_path):
    from datasets import Audio, Dataset

    audio = [{"bytes": c["path"].read_bytes(), "path": c["path"].name} for c in clips]
    audio[2] = {"bytes": b"this is not audio at all " * 40, "path": "broken.wav"}
    Dataset.from_dict({"audio": audio, "text": [c["text"] for c in clips], "id": [c["id"] for c in clips]}) \
        .cast_column("audio", Audio()).save_to_disk(str(tmp_path / "src"))
    split = import_dataset(tmp_path / "src", tmp_path / "out").splits["train"]
    assert split.utterances == len(clips) - 1
    assert [(f.index, f.id) for f in split.failed] == [(2, "utt2")]
    assert "cannot decode" in split.failed[0].reason
    assert "1 row(s) skipped" in split.summary() and "row 2 id=utt2" in split.summary()
    _check(split.manifest, [c for i, c in enumerate(clips) if i != 2], speakers=False)


def test_no_decodable_row_is_an_error_and_writes_no_manifest(tmp_path):
    from datasets import Audio, Dataset

    Dataset.from_dict({"audio": [{"bytes": b"junk" * 100, "path": f"{i}.wav"} for i in range(3)], "text": ["a b"] * 3}) \
        .cast_column("audio", Audio()).save_to_disk(str(tmp_path / "src"))
    with pytest.raises(SpeechftError, match=r"none of its 3 row\(s\) can be used:\n  row 0 id=0: cannot decode"):
        import_dataset(tmp_path / "src", tmp_path / "out")
    assert not list(tmp_path.glob("out/*.jsonl"))


def test_missing_column_names_the_columns_that_exist(clips, tmp_path):
    _hf_dataset(clips).save_to_disk(str(tmp_path / "src"))
    with pytest.raises(SpeechftError, match=r"--text-column 'transcript' is not a column. Columns: audio, text, speaker, id"):
        import_dataset(tmp_path / "src", tmp_path / "out", columns=Columns(text="transcript"))
    _hf_dataset(clips).rename_column("text", "words").save_to_disk(str(tmp_path / "src2"))
    with pytest.raises(SpeechftError, match=r"no text column .* Columns: audio, words, speaker, id. Fix: name it with --text-column"):
        import_dataset(tmp_path / "src2", tmp_path / "out")
    chosen = import_dataset(tmp_path / "src2", tmp_path / "out", columns=Columns(text="words"))
    assert chosen.splits["train"].utterances == len(clips)
    assert not (tmp_path / "out" / "audio").exists() or len(list((tmp_path / "out" / "audio").iterdir())) == len(clips)


def test_empty_dataset_and_unknown_forms_are_errors(tmp_path):
    from datasets import Dataset

    Dataset.from_dict({"audio": [], "text": []}).save_to_disk(str(tmp_path / "empty"))
    with pytest.raises(SpeechftError, match="nothing to import from split 'train': it has no rows"):
        import_dataset(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "notes.txt").write_text("hello")
    with pytest.raises(SpeechftError, match="(?s)no dataset form speechft knows.*kaldi: a Kaldi data dir"):
        import_dataset(tmp_path / "odd", tmp_path / "out")
    with pytest.raises(SpeechftError, match="--format 'tfrecord' is unknown. Fix: use one of disk, audiofolder"):
        import_dataset(tmp_path / "empty", tmp_path / "out", fmt="tfrecord")
    with pytest.raises(SpeechftError, match="dataset source not found"):
        import_dataset(tmp_path / "missing", tmp_path / "out")
    assert not list(tmp_path.glob("out/*.jsonl"))


def test_hub_id_offline_fails_fast_naming_the_local_forms(tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("an offline import must not try the network")

    monkeypatch.setattr(socket, "create_connection", no_network)  # fast: it does not even probe the hub
    with pytest.raises(SpeechftError, match="(?s)dataset hub cannot be reached.*save_to_disk.*audiofolder.*Common Voice.*Kaldi"):
        import_dataset("someorg/speech-set", tmp_path / "out")


def test_cli_import_prints_the_summary_and_errors_without_traceback(clips, tmp_path, capsys):
    _hf_dataset(clips).save_to_disk(str(tmp_path / "src"))
    assert main(["import", str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--id-column", "id"]) == 0
    assert f"train: {len(clips)} utterances" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--speaker-column", "who"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("speechft: error:") and "Columns: audio, text, speaker, id" in err and "Traceback" not in err


def test_recipe_names_a_dataset_directly(clips, tmp_path, monkeypatch):
    from datasets import DatasetDict

    from speechft.config import load_config
    from speechft.importers import sources
    from speechft.recipe import load_sets
    from speechft.validate import Limits

    src = tmp_path / "corpus"
    DatasetDict({"train": _hf_dataset(clips, clips[:2]), "dev": _hf_dataset(clips, clips[2:4]),
                 "test": _hf_dataset(clips, clips[4:])}).save_to_disk(str(src))
    monkeypatch.chdir(tmp_path)  # the data folder is ./data, as when recipes run from the repository root
    overrides = [f"data.{s}=hf:{src}:{s}" for s in ("train", "dev", "test")]
    sets, _, _ = load_sets(load_config(None, overrides), Limits())
    assert {s: sorted(u.text for u in utts) for s, utts in sets.items()} == {
        "train": sorted(TEXTS[:2]), "dev": sorted(TEXTS[2:4]), "test": sorted(TEXTS[4:])}
    imported = list((tmp_path / "data" / "imported").glob("corpus-*"))
    assert len(imported) == 1 and sorted(p.name for p in imported[0].glob("*.jsonl")) == ["dev.jsonl", "test.jsonl", "train.jsonl"]
    cfg = load_config(None, overrides)
    monkeypatch.setattr(sources, "import_dataset", lambda *a, **k: pytest.fail("an unchanged source is imported again"))
    load_sets(cfg, Limits())
    assert Path(cfg.data.train).resolve() == imported[0] / "train.jsonl"  # later stages (packing, export) read the imported file
    # Changed content -> a new fingerprint -> imported again, into its own folder.
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    DatasetDict({"train": _hf_dataset(clips, clips[:3]), "dev": _hf_dataset(clips, clips[3:4]),
                 "test": _hf_dataset(clips, clips[4:])}).save_to_disk(str(src))
    sets, _, _ = load_sets(load_config(None, overrides), Limits())
    assert len(sets["train"]) == 3 and len(list((tmp_path / "data" / "imported").glob("corpus-*"))) == 2


def test_export_dataset_then_import_round_trip_with_the_same_wer(tiny_dataset, tiny_whisper_dir, tmp_path, capsys):
    from datasets import Audio, load_from_disk

    manifest = tiny_dataset["test"]
    assert main(["export-dataset", str(manifest), "--out", str(tmp_path / "hf")]) == 0
    ds = load_from_disk(str(tmp_path / "hf"))
    assert isinstance(ds.features["audio"], Audio) and set(ds.column_names) == {"audio", "text", "duration", "id", "speaker"}
    assert ds.cast_column("audio", Audio(decode=False))[0]["audio"]["bytes"]  # embedded: independent of the manifest's folder
    assert main(["import", str(tmp_path / "hf"), "--out", str(tmp_path / "back")]) == 0
    original, back = read_manifest(manifest), read_manifest(tmp_path / "back" / "train.jsonl")
    assert [(u.id, u.text, u.speaker) for u in back] == [(u.id, u.text, u.speaker) for u in original]
    assert all(abs(a.duration - b.duration) <= DURATION_TOLERANCE for a, b in zip(original, back))
    capsys.readouterr()
    results = []
    for m in (manifest, tmp_path / "back" / "train.jsonl"):
        out = tmp_path / f"eval-{len(results)}.json"
        assert main(["eval", "--model", str(tiny_whisper_dir), "--manifest", str(m), "--batch-size", "4", "--out", str(out)]) == 0
        results.append(json.loads(out.read_text()))
    assert results[0]["wer"] == results[1]["wer"]
    hyps = [[u.get("hyp") for u in r["utterances"]] for r in results]
    assert hyps[0] == hyps[1]  # the same audio samples: the same hypotheses, not just the same score


# ---- layouts and faults seen on users' data --------------------------------------------------------
def _write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",", bom: bool = False) -> None:
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)


def test_csv_cells_are_read_as_written(clips, tmp_path):
    # pandas would read speaker "0012" as 12 (merging three speakers) and the transcript "NA" as missing
    speakers, texts = ["0012", "012", "12", "12.0"], ["007", "NA", "None", "null"]
    rows = [[str(c["path"]), text, speaker, f"000{i}"] for i, (c, text, speaker) in enumerate(zip(clips, texts, speakers))]
    _write_csv(tmp_path / "list.csv", ["path", "text", "speaker", "id"], rows)
    utts = read_manifest(import_dataset(tmp_path / "list.csv", tmp_path / "out").manifests["train"])
    assert [(u.id, u.text, u.speaker) for u in utts] == [(f"000{i}", t, s) for i, (t, s) in enumerate(zip(texts, speakers))]


def test_a_folder_of_tables_reads_its_tables_not_its_audio(clips, tmp_path):
    table = tmp_path / "table"
    (table / "wavs").mkdir(parents=True)
    for c in clips:
        shutil.copy(c["path"], table / "wavs" / c["path"].name)
    rows = [[f"wavs/{c['path'].name}", c["text"], c["speaker"]] for c in clips]
    _write_csv(table / "list.tsv", ["wav", "text", "speaker"], rows, delimiter="\t")  # a folder of TSVs: tab-separated
    assert detect_format(table) == "csv"
    _check(_import_twice(table, tmp_path / "out").manifests["train"], clips)


def test_nemo_manifest_offsets_cut_each_rows_stretch(clips, tmp_path):
    pieces = [sf.read(str(c["path"]), dtype="float32")[0] for c in clips[:3]]
    sf.write(str(tmp_path / "long.wav"), np.concatenate(pieces), 16000, subtype="PCM_16")
    lines, offset = [], 0.0
    for c, x in zip(clips, pieces):
        lines.append(json.dumps({"audio_filepath": "long.wav", "offset": offset, "duration": x.size / 16000, "text": c["text"]}))
        offset += x.size / 16000
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    utts = read_manifest(_import_twice(tmp_path / "manifest.jsonl", tmp_path / "out").manifests["train"])
    whole = sf.read(str(tmp_path / "long.wav"), dtype="float32")[0]
    start = 0
    for u, x in zip(utts, pieces):
        got = sf.read(u.audio_filepath, dtype="float32")[0]
        assert abs(u.duration - x.size / 16000) <= DURATION_TOLERANCE and got.size == x.size
        assert np.abs(got - whole[start:start + x.size]).max() < 1e-3  # this row's stretch, not the whole file
        start += x.size


def test_audiofolder_splits_by_subfolder_never_by_words_in_file_names(clips, tmp_path):
    src = tmp_path / "af"
    names = {"train": ["my_test_clip.wav", "speaker2_dev.wav", "plain.wav", "take_train_4.wav"], "test": ["a.wav", "b.wav"]}
    expected = {}
    for (split, files), chunk in zip(names.items(), (clips[:4], clips[4:])):
        (src / split).mkdir(parents=True)
        for name, c in zip(files, chunk):
            shutil.copy(c["path"], src / split / name)
        _write_csv(src / split / "metadata.csv", ["file_name", "text", "speaker"],
                   [[name, c["text"], c["speaker"]] for name, c in zip(files, chunk)], bom=split == "test")
        expected[split] = chunk
    assert detect_format(src) == "audiofolder"
    result = _import_twice(src, src / "imported")  # an --out inside the source is not read back as data
    assert set(result.manifests) == {"train", "test"}
    for split, chunk in expected.items():
        _check(result.manifests[split], chunk)
    shutil.copytree(src / "train", tmp_path / "nested" / "data" / "train")  # split folders one level down
    shutil.copytree(src / "test", tmp_path / "nested" / "data" / "test")
    assert detect_format(tmp_path / "nested") == "audiofolder"
    nested = import_dataset(tmp_path / "nested", tmp_path / "nested-out")
    assert set(nested.manifests) == {"train", "test"}
    _check(nested.manifests["test"], expected["test"])
    flat = tmp_path / "flat"  # one folder: one split, whatever words the file names hold
    flat.mkdir()
    for name, c in zip(names["train"], clips):
        shutil.copy(c["path"], flat / name)
    _write_csv(flat / "metadata.csv", ["file_name", "text", "speaker"], [[n, c["text"], c["speaker"]] for n, c in zip(names["train"], clips)])
    result = _import_twice(flat, flat / "imported")
    assert set(result.manifests) == {"train"}
    _check(result.manifests["train"], clips[:4])


def test_common_voice_tsvs_saved_with_a_bom_keep_their_speakers_and_a_parent_folder_is_named(clips, tmp_path):
    src = tmp_path / "cv-corpus-17" / "en"
    (src / "clips").mkdir(parents=True)
    rows = []
    for c in clips[:2]:
        shutil.copy(c["path"], src / "clips" / c["path"].name)
        rows.append([c["speaker"], c["path"].name, c["text"]])
    _write_csv(src / "train.tsv", ["client_id", "path", "sentence"], rows, delimiter="\t", bom=True)
    _check(import_dataset(src, tmp_path / "out").manifests["train"], clips[:2])
    with pytest.raises(SpeechftError, match=r"holds a Common Voice release in .*en\. Fix: import that folder"):
        import_dataset(src.parent, tmp_path / "out2")


def test_kaldi_ids_twice_in_a_table_are_refused(clips, tmp_path):
    data, _ = _kaldi_dir(clips, tmp_path)
    first = (data / "text").read_text().splitlines()[0]
    (data / "text").write_text((data / "text").read_text() + first.split()[0] + " another transcript\n")
    with pytest.raises(SpeechftError, match=r"text:\d+: id '.*' is also on line 1\. Fix: give each line its own id"):
        import_dataset(data, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_audiofolder_without_metadata_says_the_transcripts_are_missing(clips, tmp_path):
    (tmp_path / "af").mkdir()
    shutil.copy(clips[0]["path"], tmp_path / "af" / "a.wav")
    with pytest.raises(SpeechftError, match="has audio files but no metadata.csv or metadata.jsonl, so no transcripts"):
        import_dataset(tmp_path / "af", tmp_path / "out")


def test_a_failing_output_stops_the_import_and_blames_the_output(clips, tmp_path, monkeypatch, capsys):
    from speechft.importers import write

    _hf_dataset(clips).save_to_disk(str(tmp_path / "src"))

    def disk_full(path, samples):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(write, "_write_flac", disk_full)
    with pytest.raises(SpeechftError, match=r"cannot write .*\.flac \(\[Errno 28\] No space left on device\)\. Fix: free space"):
        import_dataset(tmp_path / "src", tmp_path / "out")
    assert not list(tmp_path.glob("out/*.jsonl"))
    (tmp_path / "a-file").write_text("x")
    assert main(["import", str(tmp_path / "src"), "--out", str(tmp_path / "a-file")]) == 2
    err = capsys.readouterr().err
    assert "is a file. Fix: give a folder" in err and "Traceback" not in err


def test_manifests_an_import_did_not_write_are_named(clips, tmp_path):
    from datasets import DatasetDict

    DatasetDict({"train": _hf_dataset(clips, clips[:3]), "test": _hf_dataset(clips, clips[3:])}).save_to_disk(str(tmp_path / "v1"))
    import_dataset(tmp_path / "v1", tmp_path / "out")
    _hf_dataset(clips, clips[:3]).save_to_disk(str(tmp_path / "v2"))  # the source lost its test split
    result = import_dataset(tmp_path / "v2", tmp_path / "out")
    assert result.other_manifests == ["test.jsonl"]
    assert "not from this import (left as they were): test.jsonl" in result.summary()
