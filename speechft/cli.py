"""Command line: parse arguments and call the library. No logic lives here."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .errors import SpeechftError


def _load_adapter(name: str, language: str | None = "en"):
    from .config import ModelConfig
    from .models import load_model
    from .models.adapters import adapter_for

    return adapter_for(load_model(name), ModelConfig(name=name, language=language))


def _decode_options(args) -> dict:
    """Decoder settings from --beams and --prompt (a prompt is Whisper's decoding prompt)."""
    return {"num_beams": args.beams, **({"prompt": args.prompt} if args.prompt else {})}


def _full_encoder_cache(adapter):
    """An uncached, full-precision encoder pass (standalone eval must not depend on a cache)."""
    from .cache import PrefixCache
    from .freeze import encoder_units

    k = len(encoder_units([n for n, _ in adapter.model.named_parameters()], adapter.family))
    return PrefixCache("", adapter, k, enabled=False)


def cmd_run(args) -> int:
    from .config import load_config
    from .recipe import run_recipe

    overrides = list(args.overrides) + (["resume=true"] if args.resume else [])
    run_recipe(load_config(args.recipe, overrides))
    return 0


def cmd_eval(args) -> int:
    from .evaluate import evaluate
    from .io_utils import atomic_write_json
    from .manifest import read_manifest
    from .text import read_terms

    adapter = _load_adapter(args.model, args.language)
    utts = read_manifest(args.manifest)
    terms = read_terms(args.terms) if args.terms else None
    decode = _decode_options(args)
    res = evaluate(adapter, utts, _full_encoder_cache(adapter), terms, batch_size=args.batch_size, **decode)
    if args.out:
        atomic_write_json(args.out, res.to_dict())
    recall = "n/a" if res.term_recall is None else f"{res.term_recall:.4f}"
    print(f"WER {res.wer:.4f}  CER {res.cer:.4f}  term recall {recall}  n={res.n}" + (f"  -> {args.out}" if args.out else ""))
    return 0


def cmd_validate(args) -> int:
    from .validate import Limits, summarize, validate_manifests

    limits = Limits(max_seconds=args.max_seconds, root=Path(args.root) if args.root else None)
    if args.model:
        from .config import DataConfig

        adapter = _load_adapter(args.model)
        # CTC models: also check the text against the character vocabulary.
        limits_for = getattr(adapter, "vocab_limits", adapter.limits)
        limits = limits_for(DataConfig(train="-", dev="-", test="-", max_seconds=args.max_seconds, root=args.root))
    limits.long_audio = args.long_audio
    problems = validate_manifests(args.manifests, limits)
    print(summarize(problems))
    return 1 if any(p.severity == "error" for p in problems) else 0


def prepare_targets(targets: list[str]) -> list[str]:
    """Domains to prepare; a recipe file stands for its `data.prepare` list (recipes/run.sh uses that)."""
    from .config import load_config

    out = []
    for target in targets:
        if target.endswith((".yaml", ".yml")):
            out += [t for t in load_config(target, []).data.prepare if t not in out]
        elif target not in out:
            out.append(target)
    return out


def cmd_prepare(args) -> int:
    from .prepare import prepare

    for target in prepare_targets(args.targets):
        paths = prepare(target, sources=args.sources, data_root=args.data_root, jobs=args.jobs)
        for split, path in paths.items():
            print(f"{target} {split}: {path}")
    return 0


def cmd_synth(args) -> int:
    from .synth import synth_main

    print(synth_main(args.text_file, args.out, args.voice, seed=args.seed, jobs=args.jobs))
    return 0


def cmd_transcribe(args) -> int:
    from .audio import load_audio

    adapter = _load_adapter(args.model, args.language)
    decode = _decode_options(args)
    for path in args.audio:
        text = adapter.transcribe_audio([load_audio(path)], **decode)[0]
        print(f"{path}\t{text}" if len(args.audio) > 1 else text)
    return 0


def cmd_models(args) -> int:
    from .models.registry import format_models_table, list_models

    print(format_models_table(list_models()))
    return 0


def cmd_import_ct2(args) -> int:
    from .models import import_ct2

    print(f"wrote {import_ct2(args.src, args.out)}")
    return 0


def cmd_export(args) -> int:
    from .export import export_ct2
    from .text import read_terms

    terms = read_terms(args.terms) if args.terms else None
    export_ct2(args.model, args.out, args.quantization, manifest=args.manifest, max_wer_gap=args.max_wer_gap,
               terms=terms, language=args.language)
    return 0


def cmd_serve(args) -> int:
    from .serve import serve

    serve(args.model, host=args.host, port=args.port, api_key=args.api_key or os.environ.get("SPEECHFT_API_KEY"),
          max_upload_mb=args.max_upload_mb, workers=args.workers, beams=args.beams)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .config import LONG_AUDIO

    p = argparse.ArgumentParser(prog="speechft", description="Adapt pretrained speech recognisers to a domain's vocabulary.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("run", help="run a recipe: baseline -> freeze -> train -> evaluate -> report")
    s.add_argument("recipe", help="recipe YAML, e.g. recipes/medical/recipe.yaml")
    s.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.max_steps=20")
    s.add_argument("--resume", action="store_true", help="continue the last unfinished run from its last checkpoint")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("eval", help="WER/CER/term recall of a model on a manifest")
    s.add_argument("--model", required=True, help="alias, local folder or hub id")
    s.add_argument("--manifest", required=True)
    s.add_argument("--terms", help="terms file, one term a line")
    s.add_argument("--prompt", help="decoding prompt text (Whisper)")
    s.add_argument("--out", help="write the full result JSON here")
    s.add_argument("--beams", type=int, default=1)
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--language", default="en")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("validate", help="check manifests and list every problem")
    s.add_argument("manifests", nargs="+")
    s.add_argument("--model", help="check against this model's limits (token length, vocabulary)")
    s.add_argument("--max-seconds", type=float, default=30.0)
    s.add_argument("--long-audio", choices=LONG_AUDIO, default="drop",
                   help="as data.long_audio: split checks that longer audio can be cut at its segments")
    s.add_argument("--root", help="audio must stay inside this folder")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("prepare", help="build a domain's audio and manifests (medical, aviation, general, ...)")
    s.add_argument("targets", nargs="+", help="domains, or a recipe.yaml for the domains its data.prepare lists")
    s.add_argument("--sources", default="data_manifests")
    s.add_argument("--data-root", default="data")
    s.add_argument("--jobs", type=int, default=None)
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("synth", help="text (one sentence a line) -> audio + manifest with offline TTS")
    s.add_argument("text_file")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--voice", action="append", default=None, help="engine:voice, repeatable (e.g. flite:slt)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--jobs", type=int, default=None)
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("transcribe", help="print the transcript of audio files")
    s.add_argument("--model", required=True)
    s.add_argument("audio", nargs="+")
    s.add_argument("--prompt")
    s.add_argument("--beams", type=int, default=1)
    s.add_argument("--language", default="en")
    s.set_defaults(func=cmd_transcribe)

    s = sub.add_parser("models", help="list built-in model aliases and their status")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("import-ct2", help="convert a CTranslate2 Whisper folder to a Hugging Face folder")
    s.add_argument("src")
    s.add_argument("out")
    s.set_defaults(func=cmd_import_ct2)

    s = sub.add_parser("export", help="export a model to CTranslate2 and check WER parity")
    s.add_argument("--model", required=True)
    s.add_argument("--format", default="ct2", choices=["ct2"])
    s.add_argument("--quantization", default="int8", choices=["int8", "int8_float32", "float16", "float32"])
    s.add_argument("--out", required=True)
    s.add_argument("--manifest", help="parity-check manifest (without one, parity is not checked)")
    s.add_argument("--max-wer-gap", type=float, default=0.01, help="largest allowed CT2 WER minus HF WER (fraction)")
    s.add_argument("--terms", help="terms file: also report term recall of both models")
    s.add_argument("--language", default="en", help="decoding language of multilingual models")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("serve", help="OpenAI-compatible /v1/audio/transcriptions endpoint")
    s.add_argument("--model", required=True, help="CT2 export (fast path), HF Whisper folder or alias")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: $SPEECHFT_API_KEY)")
    s.add_argument("--max-upload-mb", type=float, default=25.0, help="request body limit in MiB (larger: 413)")
    s.add_argument("--workers", type=int, default=4, help="connection threads (the model runs one request at a time)")
    s.add_argument("--beams", type=int, default=5, help="beam size (5: faster-whisper's default; 1: greedy, faster)")
    s.set_defaults(func=cmd_serve)
    return p


def _relaunch_under_accelerate_if_needed() -> None:
    """Give `accelerate launch --num_processes N` its N processes on a machine without GPUs."""
    from .distributed import RELAUNCHED_ENV, accelerate_relaunch_command

    cmd = accelerate_relaunch_command()
    if cmd:
        print("speechft: accelerate started one process for --num_processes > 1 on a machine without GPUs; "
              "relaunching with its multi-process launcher (gloo backend)", file=sys.stderr, flush=True)
        os.execve(sys.executable, cmd, dict(os.environ, **{RELAUNCHED_ENV: "1"}))


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        _relaunch_under_accelerate_if_needed()
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    if int(os.environ.get("RANK", "0")) > 0:  # other processes of a launch: their own log file, quiet console
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "urllib3", "numba", "matplotlib", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # transformers' generate() warns about Whisper's own generation config on every batch.
    logging.getLogger("transformers").setLevel(logging.ERROR)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        return args.func(args)
    except SpeechftError as e:
        print(f"speechft: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("speechft: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
