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
    assert main(["eval", "--model", str(tmp_path / "missing"), "--manifest", str(tmp_path / "m.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("speechft: error: model folder not found") and "Traceback" not in err


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
