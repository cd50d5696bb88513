"""Long audio through an exported model: faster-whisper's loop over the whole recording, the
recording cut at pauses into clips of up to one window, and one clip per stretch of speech
between pauses, with the model's timestamp tokens or, as `transcribe_deployed` does with VAD
on, each clip one window without them.

Joins a manifest's utterances (use dev: its voices are held out) into 1-3 minute recordings as
the report's `long` set does, decodes them each way with the folder's shipped beams and prompt,
and prints WER, term recall and the mean sentence boundary error of each, beside the same
sentences decoded one by one. Quality, not speed: the seconds are printed for information.

    python benchmarks/long_audio_modes.py --model runs/medical/latest/model-ct2 \\
        --manifest data/medical/dev.jsonl --terms data_manifests/medical/terms.txt
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from speechft.audio import load_audio
from speechft.evaluate import score
from speechft.longform import build_recordings, timing_summary
from speechft.manifest import read_manifest
from speechft.models.ct2.runtime import DeployedDecoding, ct2_language, load_ct2, speech_clips, transcribe_deployed
from speechft.models.shipped import read_shipped
from speechft.text import read_terms


def whole_recording(model, audio, decoding: DeployedDecoding) -> tuple[str, list]:
    """The previous behaviour: faster-whisper's VAD and loop over the whole recording."""
    segments, _ = model.transcribe(audio, language=ct2_language(model, decoding.language),
                                   **decoding.transcribe_kwargs(audio.size / 16000))
    segments = list(segments)
    return " ".join(s.text.strip() for s in segments if s.text.strip()), segments


def merged_clips(model, audio, decoding: DeployedDecoding) -> tuple[str, list]:
    """The stretches of speech between pauses merged into clips of up to one window (several
    sentences per clip: the model's timestamp tokens separate them)."""
    return transcribe_deployed(model, audio, decoding.replace(clip_timestamp_tokens=True),
                               clips=speech_clips(audio, decoding.vad_speech_pad_ms, merge=True))


def clip_per_pause_with_timestamp_tokens(model, audio, decoding: DeployedDecoding) -> tuple[str, list]:
    """One clip per stretch of speech, the model placing timestamp tokens inside each clip."""
    return transcribe_deployed(model, audio, decoding.replace(clip_timestamp_tokens=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an exported CTranslate2 folder (a run's model-ct2)")
    parser.add_argument("--manifest", required=True, help="utterances to join (dev: held-out voices)")
    parser.add_argument("--terms", help="terms file, for term recall")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    shipped = read_shipped(args.model)
    decoding = DeployedDecoding(beams=shipped.num_beams if shipped else 5, prompt=shipped.prompt if shipped else None)
    terms = read_terms(args.terms) if args.terms else None
    utts = read_manifest(args.manifest)
    model = load_ct2(args.model)
    with tempfile.TemporaryDirectory(prefix="speechft-long-") as tmp:
        recordings = build_recordings(sorted(utts, key=lambda u: u.id), Path(tmp), args.seed)
        print(f"{len(recordings)} recordings of {', '.join(f'{r.duration:.0f}' for r in recordings)} s from {len(utts)} utterances")
        start = time.perf_counter()
        clips = [transcribe_deployed(model, load_audio(u.audio_filepath), decoding)[0] for u in utts]
        one_by_one = score([u.text for u in utts], clips, [u.id for u in utts], terms)
        print(f"one by one:        WER {one_by_one.wer:.4f}  recall {one_by_one.term_recall}  ({time.perf_counter() - start:.0f} s)")
        timestamp_begin = model.hf_tokenizer.token_to_id("<|notimestamps|>") + 1
        for name, decode in (("whole recording", whole_recording), ("pauses, merged", merged_clips),
                             ("clip per pause, timestamp tokens", clip_per_pause_with_timestamp_tokens),
                             ("clip per pause (served)", transcribe_deployed)):
            start = time.perf_counter()
            outs = [decode(model, load_audio(r.audio_filepath), decoding) for r in recordings]
            res = score([r.text for r in recordings], [t for t, _ in outs], [r.id for r in recordings], terms)
            timing = timing_summary(recordings, [s for _, s in outs], timestamp_begin)
            print(f"{name + ':':31} WER {res.wer:.4f}  recall {res.term_recall}  segments {timing['segments']}  "
                  f"timestamped {timing['timestamped_share']:.2f}  boundary error {timing['boundary_error_s']:.2f} s  "
                  f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
