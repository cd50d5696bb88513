"""The command line: arguments parse into the library's types; user mistakes are one clean line."""

import pytest

from speechft.cli import build_parser, main
from speechft.config import QUANTIZATIONS


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_export_offers_every_quantization_the_converter_supports(quantization):
    args = build_parser().parse_args(["export", "--model", "m", "--out", "o", "--quantization", quantization])
    assert args.quantization == quantization


def test_serve_leaves_unset_options_to_the_server_defaults():
    args = build_parser().parse_args(["serve", "--model", "m"])
    assert (args.beams, args.workers, args.max_upload_mb) == (None, None, None)


def test_a_user_mistake_is_one_line_without_traceback(tmp_path, capsys):
    _manifest(tmp_path, [1.0])
    assert main(["eval", "--model", str(tmp_path / "missing"), "--manifest", str(tmp_path / "m.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("speechft: error: model folder not found") and "Traceback" not in err


def _manifest(folder, seconds: list[float], name: str = "m.jsonl"):
    """A manifest of tone clips of these lengths (duration fields left out: read from the files)."""
    import json

    import soundfile as sf

    from support import tone

    lines = []
    for i, s in enumerate(seconds):
        sf.write(str(folder / f"c{i}.wav"), tone(s, 300), 16000)
        lines.append(json.dumps({"audio_filepath": f"c{i}.wav", "text": "a test", "id": f"c{i}"}))
    (folder / name).write_text("".join(line + "\n" for line in lines))
    return folder / name


def test_eval_refuses_what_it_cannot_score_before_loading_a_model(tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["eval", "--model", "whisper-tiny.en", "--manifest", str(tmp_path / "empty.jsonl")]) == 2
    assert "has no utterances, so there is nothing to score" in capsys.readouterr().err
    assert main(["eval", "--model", "m", "--manifest", str(tmp_path)]) == 2
    assert "is a folder. Fix: give a JSON Lines manifest file" in capsys.readouterr().err
    for argv, message in ((["eval", "--model", "m", "--manifest", "m.jsonl", "--batch-size", "0"],
                           "--batch-size: 0 is not a positive whole number"),
                          (["serve", "--model", "m", "--port", "99999"], "99999 is no TCP port")):
        with pytest.raises(SystemExit) as exited:  # argparse: usage and the reason, exit status 2
            main(argv)
        assert exited.value.code == 2 and message in capsys.readouterr().err


def test_eval_refuses_utterances_longer_than_whispers_window(tmp_path, capsys, tiny_whisper_dir):
    manifest = _manifest(tmp_path, [2.0, 31.5])
    assert main(["eval", "--model", str(tiny_whisper_dir), "--manifest", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "1 utterance(s) longer than Whisper's 30-s window would be scored on their first 30 s only: c1 (31.5 s)" in err
    assert "speechft align" in err and "Traceback" not in err


def test_transcribe_checks_every_file_before_the_model_and_refuses_empty_or_nan_audio(tmp_path, capsys, monkeypatch,
                                                                                      tiny_whisper_dir):
    import numpy as np
    import soundfile as sf

    import speechft.cli as cli

    sf.write(str(tmp_path / "ok.wav"), np.zeros(1600, np.float32), 16000)
    monkeypatch.setattr(cli, "_transcriber", lambda args: pytest.fail("the model loaded before the files were checked"))
    assert main(["transcribe", "--model", "m", str(tmp_path / "ok.wav"), str(tmp_path / "nope.wav")]) == 2
    assert "audio file not found" in capsys.readouterr().err
    assert main(["transcribe", "--model", "m", str(tmp_path)]) == 2
    assert "is a folder. Fix: give audio files" in capsys.readouterr().err
    monkeypatch.undo()
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0, np.float32), 16000)
    sf.write(str(tmp_path / "nan.wav"), np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    for name, message in (("empty.wav", "holds no samples"), ("nan.wav", "holds NaN or infinite samples")):
        assert main(["transcribe", "--model", str(tiny_whisper_dir), str(tmp_path / name)]) == 2
        assert message in capsys.readouterr().err


def test_transcribe_decodes_long_audio_in_clips_and_a_ct2_export_as_deployed(tmp_path, capsys, monkeypatch,
                                                                             tiny_whisper_dir):
    import numpy as np
    import soundfile as sf

    from speechft import longform
    from speechft.export import export_ct2
    from speechft.models.ct2 import runtime

    sf.write(str(tmp_path / "long.wav"), np.zeros(40 * 16000, np.float32), 16000)
    calls = []
    real = longform.transcribe_in_clips
    monkeypatch.setattr(runtime, "speech_clips", lambda audio: [1.0, 12.0, 25.0, 39.0])
    monkeypatch.setattr(longform, "transcribe_in_clips", lambda adapter, audio, options: calls.append(audio.size)
                        or real(adapter, audio, options))
    assert main(["transcribe", "--model", str(tiny_whisper_dir), "--beams", "1", str(tmp_path / "long.wav")]) == 0
    assert calls == [40 * 16000]  # the whole recording, cut at pauses, not its first 30 s
    export_ct2(tiny_whisper_dir, tmp_path / "ct2", "int8")
    deployed = []
    monkeypatch.setattr(runtime, "transcribe_deployed", lambda model, audio, decoding: deployed.append(decoding.beams)
                        or ("from the export", []))
    assert main(["transcribe", "--model", str(tmp_path / "ct2"), "--beams", "2", str(tmp_path / "long.wav")]) == 0
    assert deployed == [2] and capsys.readouterr().out.strip().endswith("from the export")


def test_eval_and_transcribe_default_to_the_model_folders_shipped_decoding(tmp_path):
    from speechft.cli import _decode_options
    from speechft.models.shipped import ShippedDecoding, write_shipped

    write_shipped(tmp_path, ShippedDecoding(num_beams=5, prompt="apixaban, heparin", note="chosen on dev", feature_padding="logmel"))
    parse = build_parser().parse_args
    base = ["eval", "--model", str(tmp_path), "--manifest", "m.jsonl"]
    opts = _decode_options(parse(base))
    assert (opts.num_beams, opts.prompt) == (5, "apixaban, heparin")  # exactly the report's headline decoding
    opts = _decode_options(parse(base + ["--beams", "1", "--prompt", ""]))
    assert (opts.num_beams, opts.prompt) == (1, None)  # flags override; '' turns the prompt off
    opts = _decode_options(parse(["transcribe", "--model", str(tmp_path / "none"), "a.wav"]))
    assert (opts.num_beams, opts.prompt) == (1, None)  # no shipped decoding: greedy, no prompt


def test_export_never_replaces_the_model_or_a_users_files(tmp_path, capsys, tiny_whisper_dir):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_whisper_dir, model)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    (tmp_path / "a-file").write_text("mine")
    for out, message in ((model, "is the model folder"), (model / "ct2", "lies inside it"),
                         (tmp_path / "notes", "other files in it"), (tmp_path / "a-file", "is a file")):
        assert main(["export", "--model", str(model), "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert (model / "config.json").is_file() and (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    assert (tmp_path / "a-file").read_text() == "mine"
    assert main(["export", "--model", str(model), "--out", str(tmp_path / "ct2")]) == 0
    assert main(["export", "--model", str(model), "--out", str(tmp_path / "ct2")]) == 0  # an earlier export is replaced


def test_align_and_report_refuse_mistakes_up_front(tmp_path, capsys):
    import json

    (tmp_path / "m.jsonl").write_text(json.dumps({"audio_filepath": "gone.wav", "text": "a test"}) + "\n")
    assert main(["align", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert "1 line(s) name audio that does not exist" in capsys.readouterr().err and not (tmp_path / "o").exists()
    with pytest.raises(SystemExit):
        main(["align", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "o"), "--max-seconds", "0"])
    assert "0 is not a number above 0" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "INCOMPLETE").write_text("")
    assert main(["report", str(tmp_path / "run")]) == 2
    assert "did not finish (INCOMPLETE)" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "run"), "--out", str(tmp_path)]) == 2
    assert "is a folder. Fix: give the HTML file" in capsys.readouterr().err
