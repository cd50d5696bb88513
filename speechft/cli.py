"""Command line: parse arguments and call the library. No logic lives here."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .errors import SpeechftError
from .heap import reuse_large_blocks


def _adapter(name: str):
    from .models.adapters import load_adapter

    return load_adapter(name)


def _decode_options(args):
    """DecodeOptions from --beams, --prompt and --language; unset ones come from the model folder's
    shipped decoding (what its report's headline row measured), else greedy without a prompt."""
    from .models.base import DecodeOptions
    from .models.shipped import read_shipped

    shipped = read_shipped(args.model) if Path(args.model).is_dir() else None
    beams = args.beams if args.beams is not None else (shipped.num_beams if shipped else 1)
    prompt = args.prompt if args.prompt is not None else (shipped.prompt if shipped else None)
    return DecodeOptions(num_beams=beams, prompt=prompt or None, language=args.language)


def cmd_run(args) -> int:
    from .config import load_config
    from .recipe import run_recipe

    overrides = list(args.overrides) + (["resume=true"] if args.resume else [])
    run_recipe(load_config(args.recipe, overrides))
    return 0


def cmd_eval(args) -> int:
    from .cache import uncached
    from .evaluate import evaluate
    from .io_utils import atomic_write_json
    from .manifest import read_manifest
    from .text import read_terms

    if Path(args.manifest).is_dir():
        raise SpeechftError(f"--manifest {args.manifest} is a folder. Fix: give a JSON Lines manifest file")
    utts = read_manifest(args.manifest)
    if not utts:
        raise SpeechftError(f"{args.manifest} has no utterances, so there is nothing to score. Fix: give a manifest "
                            "with at least one line")
    adapter = _adapter(args.model)
    if adapter.family == "whisper":
        _refuse_over_window(utts, args.manifest)
    terms = read_terms(args.terms) if args.terms else None
    res = evaluate(adapter, utts, uncached(adapter), terms, batch_size=args.batch_size, options=_decode_options(args))
    if args.out:
        atomic_write_json(args.out, res.to_dict())
    recall = "n/a" if res.term_recall is None else f"{res.term_recall:.4f}"
    print(f"WER {res.wer:.4f}  CER {res.cer:.4f}  term recall {recall}  n={res.n}" + (f"  -> {args.out}" if args.out else ""))
    return 0


def _refuse_over_window(utts, manifest: str) -> None:
    """Whisper scores one 30-s window per utterance: a longer one would be scored on its first 30 s."""
    import soundfile as sf

    from .audio import WHISPER_MAX_SECONDS

    long = []
    for u in utts:
        try:
            seconds = u.duration if u.duration is not None else sf.info(u.audio_filepath).duration
        except Exception:  # noqa: BLE001 - an unreadable file is reported when it is decoded
            continue
        if seconds > WHISPER_MAX_SECONDS + 0.5:
            long.append(f"{u.id or u.audio_filepath} ({seconds:.1f} s)")
    if long:
        raise SpeechftError(f"{manifest}: {len(long)} utterance(s) longer than Whisper's {WHISPER_MAX_SECONDS:.0f}-s window "
                            f"would be scored on their first 30 s only: {', '.join(long[:5])}"
                            f"{', ...' if len(long) > 5 else ''}. Fix: cut them into pieces with `speechft align "
                            f"{manifest} --out DIR`, or transcribe them whole with `speechft transcribe`")


def cmd_validate(args) -> int:
    from .config import DataConfig
    from .validate import Limits, summarize, validate_manifests

    if args.max_wer is not None and not args.model:
        raise SpeechftError("--max-wer compares the transcripts with what a model hears. Fix: add --model, e.g. --model whisper-tiny.en")
    data = DataConfig(train="-", dev="-", test="-", max_seconds=args.max_seconds, root=args.root, long_audio=args.long_audio,
                      min_seconds=args.min_seconds, min_chars_per_second=args.min_chars_per_second,
                      max_chars_per_second=args.max_chars_per_second)
    limits, heard = Limits(max_seconds=args.max_seconds, root=Path(args.root) if args.root else None), None
    if args.model:
        adapter = _adapter(args.model)
        limits = adapter.validation_limits(data)
        if args.max_wer is not None:
            from .cache import uncached
            from .evaluate import evaluate

            heard = lambda utts: evaluate(adapter, utts, uncached(adapter), desc="validate")  # noqa: E731
    limits = limits.with_data_checks(data)
    limits.long_audio, limits.allow_empty_text = args.long_audio, args.allow_empty_text
    problems = validate_manifests(args.manifests, limits, heard=heard, max_wer=args.max_wer or 0.0)
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
    from .prepare import prepare_many

    for target, paths in prepare_many(prepare_targets(args.targets), sources=args.sources, data_root=args.data_root,
                                      jobs=args.jobs).items():
        for split, path in paths.items():
            print(f"{target} {split}: {path}")
    return 0


def cmd_synth(args) -> int:
    from .synth import synth_main

    print(synth_main(args.text_file, args.out, args.voice, seed=args.seed, jobs=args.jobs))
    return 0


def _audio_samples(path: str):
    """A file's 16 kHz samples, refused when there are none or they are not numbers (as the server does)."""
    import numpy as np

    from .audio import load_audio

    audio = load_audio(path)
    if audio.size == 0:
        raise SpeechftError(f"{path} holds no samples. Fix: give a non-empty recording")
    if not np.isfinite(audio).all():
        raise SpeechftError(f"{path} holds NaN or infinite samples. Fix: re-encode the recording")
    return audio


def _transcriber(args):
    """audio -> text for `speechft transcribe`: a CT2 export as it is deployed (faster-whisper),
    any other model through its adapter, audio over 30 s cut at pauses (longform.py)."""
    from .models.ct2.runtime import is_ct2_dir

    if is_ct2_dir(args.model):
        from .models.ct2.runtime import load_ct2, transcribe_deployed
        from .serve.decoding import served_decoding

        model = load_ct2(args.model)
        decoding, _ = served_decoding(args.model, beams=args.beams, prompt=args.prompt).for_request(None, args.language, False)
        return lambda audio: transcribe_deployed(model, audio, decoding)[0]
    from .longform import transcribe_in_clips

    adapter, options = _adapter(args.model), _decode_options(args)
    return lambda audio: transcribe_in_clips(adapter, audio, options)[0]


def cmd_transcribe(args) -> int:
    for path in map(Path, args.audio):  # every file checked before the model loads
        if path.is_dir():
            raise SpeechftError(f"{path} is a folder. Fix: give audio files, e.g. {path}/*.wav")
        if not path.is_file():
            raise SpeechftError(f"audio file not found: {path}. Fix: check the path")
    transcribe = _transcriber(args)
    for path in args.audio:
        text = transcribe(_audio_samples(path)).strip()
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


def cmd_merge(args) -> int:
    from .lora import merge_adapter

    print(f"wrote {merge_adapter(args.base, args.adapter, args.out)}")
    return 0


def cmd_export(args) -> int:
    from .export import export_ct2
    from .text import read_terms

    terms = read_terms(args.terms) if args.terms else None
    export_ct2(args.model, args.out, args.quantization, manifest=args.manifest, max_wer_gap=args.max_wer_gap,
               terms=terms, language=args.language)
    return 0


def cmd_report(args) -> int:
    from .recipe.runs import INCOMPLETE_MARKER
    from .report_html import write_comparison_html, write_report_html

    if args.out and Path(args.out).is_dir():
        raise SpeechftError(f"--out {args.out} is a folder. Fix: give the HTML file to write, e.g. {args.out}/report.html")
    for run in map(Path, args.run_dirs):
        if (run / INCOMPLETE_MARKER).exists():
            raise SpeechftError(f"{run} is a run that did not finish (INCOMPLETE), so it has no report yet. Fix: finish it "
                                "with `speechft run RECIPE --resume`, or give a finished run")
    if len(args.run_dirs) == 1:
        print(f"wrote {write_report_html(args.run_dirs[0], args.out)}")
    else:
        print(f"wrote {write_comparison_html(args.run_dirs, args.out or 'comparison.html')}")
    return 0


def cmd_serve(args) -> int:
    from .serve import DECODING_SWITCHES, serve

    serve(args.model, host=args.host, port=args.port, api_key=args.api_key or os.environ.get("SPEECHFT_API_KEY"),
          max_upload_mb=args.max_upload_mb, workers=args.workers, beams=args.beams, prompt=args.prompt,
          decoding={k: v for k, v in vars(args).items() if k in DECODING_SWITCHES},  # only the switches given
          adapters=dict(args.adapter))
    return 0


def _named_folder(text: str) -> tuple[str, str]:
    """NAME=DIR of --adapter."""
    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=DIR, e.g. medical=runs/medical-lora/latest/adapter")
    return name.strip(), folder.strip()


def _threshold(text: str) -> float | None:
    """A guard threshold: a number, or off/none to disable the guard."""
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number, or 'off'") from None


def cmd_import(args) -> int:
    from .importers import Columns, import_dataset

    columns = Columns(audio=args.audio_column, text=args.text_column, speaker=args.speaker_column, id=args.id_column)
    print(import_dataset(args.source, args.out, split=args.split, columns=columns, fmt=args.format).summary())
    return 0


def cmd_export_dataset(args) -> int:
    from .importers import export_dataset

    print(f"wrote {export_dataset(args.manifest, args.out)}")
    return 0


def cmd_align(args) -> int:
    from .align import align_long_lines
    from .manifest import read_manifest

    missing = [u.audio_filepath for u in read_manifest(args.manifest) if not os.path.isfile(u.audio_filepath)]
    if missing:  # a recording that is not there cannot be aligned: say so rather than copy the line
        raise SpeechftError(f"{args.manifest}: {len(missing)} line(s) name audio that does not exist: "
                            f"{', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}. Fix: correct the paths "
                            "(relative paths are read from the manifest's folder)")

    report = align_long_lines(args.manifest, args.out, model=args.model, max_seconds=args.max_seconds, max_wer=args.max_wer)
    print(report.summary())
    return 0


def cmd_new(args) -> int:
    from .domain.scaffold import new_domain

    made = new_domain(args.domain, args.terms, args.text, manifest=args.manifest, force=args.force, sources=args.sources,
                      recipes=args.recipes, seed=args.seed, tables=args.tables, min_train=args.min_train,
                      abbreviations=args.abbreviations,
                      max_sentences={"train": args.max_train, "dev": args.max_dev, "test": args.max_test})
    print(made.summary())
    return 0


def cmd_lexicon_check(args) -> int:
    from .domain.pronunciation import check_domain, format_checks

    checks = check_domain(args.domain, sources=args.sources, voices=args.voices, model=args.model)
    print(format_checks(checks, f"{args.sources}/{args.domain}"))
    return 1 if any(c.flagged for c in checks) else 0


def _positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive whole number")
    return n


def _positive_float(value: str) -> float:
    x = float(value)
    if not 0 < x < float("inf"):
        raise argparse.ArgumentTypeError(f"{value} is not a number above 0")
    return x


def _port(value: str) -> int:
    n = int(value)
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is no TCP port: use 0-65535 (0: any free port)")
    return n


def build_parser() -> argparse.ArgumentParser:
    from .config import LONG_AUDIO, QUANTIZATIONS, DataConfig
    from .domain.coverage import MIN_TRAIN_OCCURRENCES
    from .domain.split import MAX_SENTENCES

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
    s.add_argument("--prompt", help="decoding prompt text (Whisper; default: the model folder's shipped prompt; '' for none)")
    s.add_argument("--out", help="write the full result JSON here")
    s.add_argument("--beams", type=int, help="beam width (default: the model folder's shipped one, else 1)")
    s.add_argument("--batch-size", type=_positive_int, default=16)
    s.add_argument("--language", help="decoding language of multilingual models (default: the model's)")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("validate", help="check manifests and list every problem")
    s.add_argument("manifests", nargs="+")
    s.add_argument("--model", help="check against this model's limits (token length, vocabulary)")
    s.add_argument("--max-seconds", type=float, default=30.0)
    s.add_argument("--long-audio", choices=LONG_AUDIO, default="drop",
                   help="as data.long_audio: split checks that longer audio can be cut at its segments")
    s.add_argument("--root", help="audio must stay inside this folder")
    s.add_argument("--allow-empty-text", action="store_true",
                   help='a non-speech set: text "" means the model should output nothing')
    s.add_argument("--min-seconds", type=float, default=DataConfig.min_seconds, help="as data.min_seconds: shorter clips are dropped")
    s.add_argument("--min-chars-per-second", type=float, default=DataConfig.min_chars_per_second,
                   help="as data.min_chars_per_second (normalised text; 0 = off)")
    s.add_argument("--max-chars-per-second", type=float, default=DataConfig.max_chars_per_second,
                   help="as data.max_chars_per_second (normalised text; 0 = off)")
    s.add_argument("--max-wer", type=float,
                   help="with --model: list lines the model hears with a higher WER as suspect transcripts (e.g. 0.5)")
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

    s = sub.add_parser("transcribe", help="print the transcript of audio files (any length; a CT2 export as it is deployed)")
    s.add_argument("--model", required=True, help="alias, model folder, hub id, or a CTranslate2 export")
    s.add_argument("audio", nargs="+")
    s.add_argument("--prompt", help="decoding prompt text (Whisper; default: the model folder's shipped prompt; '' for none)")
    s.add_argument("--beams", type=int, help="beam width (default: the model folder's shipped one, else 1)")
    s.add_argument("--language", help="decoding language of multilingual models (default: the model's)")
    s.set_defaults(func=cmd_transcribe)

    s = sub.add_parser("models", help="list built-in model aliases and their status")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("import-ct2", help="convert a CTranslate2 Whisper folder to a Hugging Face folder")
    s.add_argument("src")
    s.add_argument("out")
    s.set_defaults(func=cmd_import_ct2)

    s = sub.add_parser("merge", help="merge a LoRA adapter folder (peft) into its base model: a plain model folder")
    s.add_argument("--base", required=True, help="the base model the adapter was trained on (alias, folder or hub id)")
    s.add_argument("--adapter", required=True, help="adapter folder: a LoRA run's adapter/, or peft's save_pretrained output")
    s.add_argument("--out", required=True, help="where to write the merged model")
    s.set_defaults(func=cmd_merge)

    s = sub.add_parser("export", help="export a model to CTranslate2 and check WER parity")
    s.add_argument("--model", required=True)
    s.add_argument("--format", default="ct2", choices=["ct2"])
    s.add_argument("--quantization", default="int8", choices=QUANTIZATIONS)
    s.add_argument("--out", required=True)
    s.add_argument("--manifest", help="parity-check manifest (without one, parity is not checked)")
    s.add_argument("--max-wer-gap", type=float, default=0.01, help="largest allowed CT2 WER minus HF WER (fraction)")
    s.add_argument("--terms", help="terms file: also report term recall of both models")
    s.add_argument("--language", default="en", help="decoding language of multilingual models")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("report", help="rebuild a run folder's report.html, or compare several runs on one page")
    s.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s), e.g. runs/medical/latest")
    s.add_argument("--out", help="where to write (default: RUN_DIR/report.html; with several runs comparison.html)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("serve", help="OpenAI-compatible /v1/audio/transcriptions endpoint (FastAPI + uvicorn)")
    s.add_argument("--model", required=True, help="CT2 export (fast path), HF Whisper folder or alias")
    s.add_argument("--adapter", action="append", default=[], type=_named_folder, metavar="NAME=DIR",
                   help="a domain model picked by the request's `model` field: a LoRA run's adapter/ (merged onto "
                        "--model at start) or a merged CT2 export; repeatable")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_port, default=8000, help="0: any free port (printed)")
    s.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: $SPEECHFT_API_KEY)")
    s.add_argument("--max-upload-mb", type=float, help="request body limit in MiB (larger: 413; default 25)")
    s.add_argument("--workers", type=int, help="uploads decoded at once (the model runs one request at a time; default 4)")
    s.add_argument("--beams", type=int, help="beam size (default: the folder's shipped one, else 5; 1: greedy, faster)")
    s.add_argument("--prompt", help="initial prompt (default: the folder's shipped one; '' for none); "
                                    "a request's own prompt replaces it")
    # Decoding switches: left unset (absent from args) they keep the deployed defaults.
    unset = argparse.SUPPRESS
    s.add_argument("--no-vad", dest="vad_filter", action="store_false", default=unset,
                   help="do not drop non-speech with Silero VAD before decoding (default: on)")
    s.add_argument("--no-speech-threshold", type=_threshold, default=unset, metavar="P|off",
                   help="skip a window whose no-speech probability is above P (default 0.6)")
    s.add_argument("--log-prob-threshold", type=_threshold, default=unset, metavar="L|off",
                   help="retry hotter below this average log-probability (default -1)")
    s.add_argument("--compression-ratio-threshold", type=_threshold, default=unset, metavar="R|off",
                   help="retry hotter above this gzip compression ratio, i.e. repetition (default 2.4)")
    s.add_argument("--silence-threshold", dest="silence_no_speech_prob", type=_threshold, default=unset, metavar="P|off",
                   help="also drop a decoded segment whose no-speech probability is above P and average "
                        "log-probability below -0.5 (default 0.3; babble that passes the VAD)")
    s.add_argument("--no-temperature-fallback", dest="temperature_fallback", action="store_false", default=unset,
                   help="decode at temperature 0 only, never retry")
    s.add_argument("--no-condition-on-previous-text", dest="condition_on_previous_text", action="store_false",
                   default=unset, help="long audio: do not prompt each window with the previous one's text")
    s.add_argument("--clip-timestamp-tokens", dest="clip_timestamp_tokens", action="store_true", default=unset,
                   help="long audio cut at pauses: let the model place timestamps inside each clip "
                        "(default: each clip decoded without them, as short audio is; segment times the clip's)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("import", help="a dataset (save_to_disk, audiofolder, Parquet, Common Voice, Kaldi, hub id) -> FLAC + manifests")
    s.add_argument("source", help="folder, file or hub id; its form is told by its files (--format to force)")
    s.add_argument("--out", required=True, help="output folder: audio/ and <split>.jsonl")
    s.add_argument("--split", help="import only this split (default: all)")
    s.add_argument("--audio-column", help="column with the audio (default: audio, audio_filepath, file_name, path, ...)")
    s.add_argument("--text-column", help="column with the transcript (default: text, sentence, transcription, ...)")
    s.add_argument("--speaker-column", help="column with the speaker (default: speaker, speaker_id, client_id, ...)")
    s.add_argument("--id-column", help="column with the utterance id (default: id, utt_id, ...; else split-row)")
    s.add_argument("--format", help="force the source's form: disk, audiofolder, parquet, arrow, csv, json, commonvoice, kaldi or hub")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("export-dataset", help="a manifest and its audio as a Hugging Face dataset (save_to_disk)")
    s.add_argument("manifest")
    s.add_argument("--out", required=True, help="output folder (datasets.load_from_disk reads it)")
    s.set_defaults(func=cmd_export_dataset)

    s = sub.add_parser("align", help="cut long recordings with a transcript into pieces of at most --max-seconds")
    s.add_argument("manifest", help="lines longer than --max-seconds without segments are aligned; others are copied")
    s.add_argument("--out", required=True, help="output folder: the manifest, pieces/ and words/")
    s.add_argument("--model", default="whisper-tiny.en", help="aligner: built-in alias, CTranslate2 folder or HF Whisper folder")
    s.add_argument("--max-seconds", type=_positive_float, default=30.0)
    s.add_argument("--max-wer", type=float, default=0.4, help="drop pieces whose hypothesis disagrees with their text more")
    s.set_defaults(func=cmd_align)

    s = sub.add_parser("new", help="a new domain from its documents and terms: data_manifests/DOMAIN/ and recipes/DOMAIN/")
    s.add_argument("domain", help="the new domain's name (lower case, e.g. cardiology)")
    s.add_argument("--terms", required=True, help="the domain's terms, one a line")
    s.add_argument("--text", nargs="+", action="extend", default=[], metavar="FILE_OR_DIR",
                   help="the domain's documents: text, Markdown, Word (.docx), PDF, HTML or subtitle (.srt, .vtt) "
                        "files, or folders of them")
    s.add_argument("--manifest", help="real speech (JSON Lines manifest): an extra held-out test set")
    s.add_argument("--force", action="store_true", help="replace an existing domain (keeps its abbreviations.tsv and lexicon.txt)")
    s.add_argument("--sources", default="data_manifests")
    s.add_argument("--recipes", default="recipes")
    s.add_argument("--seed", type=int, default=0, help="decides which documents go to test and dev")
    s.add_argument("--tables", choices=["rows", "skip"], default="rows", help="table rows: one sentence each, or skipped")
    s.add_argument("--min-train", type=int, default=MIN_TRAIN_OCCURRENCES,
                   help=f"train occurrences per term; carrier sentences add the rest (default {MIN_TRAIN_OCCURRENCES})")
    s.add_argument("--abbreviations", help="an extra abbreviations.tsv (ABBREVIATION<TAB>spoken words)")
    for split, limit in MAX_SENTENCES.items():
        s.add_argument(f"--max-{split}", type=int, default=limit, metavar="N",
                       help=f"at most N {split} sentences from the documents, a seeded sample (default {limit}: a run "
                            "stays within about 12 minutes on 2 cores; 0: all)")
    s.set_defaults(func=cmd_new)

    s = sub.add_parser("lexicon", help="pronunciation lexicon of a domain (data_manifests/DOMAIN/lexicon.txt)")
    lexicon = s.add_subparsers(dest="lexicon_command", required=True)
    s = lexicon.add_parser("check", help="list the terms the TTS voices probably mispronounce (exit 1 if any)")
    s.add_argument("domain")
    s.add_argument("--voices", nargs="+", help="engine:voice specs (default: every voice of the domain's voices.yaml)")
    s.add_argument("--model", default="whisper-tiny.en", help="the pretrained model that listens")
    s.add_argument("--sources", default="data_manifests")
    s.set_defaults(func=cmd_lexicon_check)
    return p


def _relaunch_under_accelerate_if_needed() -> None:
    """Give `accelerate launch --num_processes N` its N processes on a machine without GPUs."""
    if "MASTER_ADDR" not in os.environ or "ACCELERATE_MIXED_PRECISION" not in os.environ:
        return  # not started by Accelerate's launcher: skip importing torch (a CT2 server needs none)
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
    reuse_large_blocks()
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
