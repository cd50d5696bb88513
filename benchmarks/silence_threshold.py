"""Choosing the deployed decoding's silence threshold without looking at test.

Makes the non-speech *dev* clips (speechft/synth/nonspeech.py: their own seed, train's babble
sentences, never test's), decodes them with an exported model and with the pretrained model,
and decodes speech dev sets with the exported model, all with the silence threshold off. Then
prints, for a grid of thresholds (drop a segment whose no-speech probability is above P and
whose average log-probability is below L), how many non-speech clips still get words from each
model and what the dropped segments cost each speech set's WER. Quality, not speed.

    python benchmarks/silence_threshold.py --model runs/aviation/latest/model-ct2 \\
        --speech data/aviation/dev.jsonl data/general/dev.jsonl
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from speechft.audio import load_audio
from speechft.deployed import pretrained_export
from speechft.evaluate import score
from speechft.manifest import read_manifest
from speechft.models.ct2.runtime import (SILENCE_LOG_PROB, SILENCE_NO_SPEECH_PROB, DeployedDecoding, is_unsure_silence,
                                         load_ct2, transcribe_deployed)
from speechft.models.shipped import read_shipped
from speechft.synth.nonspeech import nonspeech_clips

NO_SPEECH_PROBS = (0.2, 0.3, 0.4, 0.5, 0.6)
LOG_PROBS = (-0.3, -0.4, -0.5, -0.6, -0.7)


def decode(model, utts, decoding: DeployedDecoding) -> list[list]:
    """faster-whisper segments (with words) of each utterance, the silence threshold off."""
    decoding = decoding.replace(silence_no_speech_prob=None)
    return [[s for s in transcribe_deployed(model, load_audio(u.audio_filepath), decoding)[1] if s.text.strip()]
            for u in utts]


def kept(segments: list, p: float, lp: float) -> list:
    """The segments the silence threshold (P, L) keeps: the served test, other numbers."""
    threshold = DeployedDecoding(silence_no_speech_prob=p, silence_log_prob=lp)
    return [s for s in segments if not is_unsure_silence(s, threshold)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an exported CTranslate2 folder (a run's model-ct2)")
    parser.add_argument("--pretrained", default="whisper-tiny.en", help="the model it was adapted from")
    parser.add_argument("--speech", nargs="+", default=[], help="speech dev manifests (held-out voices, real speech)")
    parser.add_argument("--nonspeech-src", default="data_manifests/nonspeech", help="folder with babble.txt")
    args = parser.parse_args()

    shipped = read_shipped(args.model)
    decoding = DeployedDecoding(beams=shipped.num_beams if shipped else 5, prompt=shipped.prompt if shipped else None)
    model = load_ct2(args.model)
    pretrained = load_ct2(pretrained_export(args.pretrained))
    with tempfile.TemporaryDirectory(prefix="speechft-nonspeech-dev-") as tmp:
        clips = nonspeech_clips(Path(args.nonspeech_src), Path(tmp), splits=("dev",))["dev"]
        nonspeech = {"adapted": decode(model, clips, decoding), "pretrained": decode(pretrained, clips, decoding.replace(prompt=None))}
    speech = {}
    for path in args.speech:
        utts = read_manifest(path)
        speech[path] = (utts, decode(model, utts, decoding))

    print(f"{len(clips)} non-speech dev clips; segments with words (no-speech prob, avg log-prob, text):")
    for name, per_clip in nonspeech.items():
        for clip, segs in zip(clips, per_clip):
            for s in segs:
                print(f"  {name:10} {clip.id:28} {s.no_speech_prob:.2f} {s.avg_logprob:6.2f}  {s.text.strip()!r}")
    for path, (utts, per_utt) in speech.items():
        segs = [(s.no_speech_prob, s.avg_logprob, u.id, s.text.strip()) for u, segs in zip(utts, per_utt) for s in segs]
        for what, chosen in (("highest no-speech probability", sorted(segs)[-3:]),
                             ("lowest log-probability", sorted(segs, key=lambda x: x[1])[:3])):
            print(f"{path}: {what}: " + "; ".join(f"{p:.2f} {lp:.2f} {uid} {t!r}" for p, lp, uid, t in chosen))

    header = f"{'P':>4} {'L':>5}  non-speech clips with words (adapted / pretrained)  " + "  ".join(f"WER {Path(p).parent.name}/{Path(p).stem}" for p in speech)
    print("\n" + header)
    for p in NO_SPEECH_PROBS:
        for lp in LOG_PROBS:
            counts = [sum(bool(kept(segs, p, lp)) for segs in per_clip) for per_clip in nonspeech.values()]
            wers = []
            for utts, per_utt in speech.values():
                hyps = [" ".join(s.text.strip() for s in kept(segs, p, lp)) for segs in per_utt]
                wers.append(score([u.text for u in utts], hyps, [u.id for u in utts]).wer)
            mark = "  <- default" if (p, lp) == (SILENCE_NO_SPEECH_PROB, SILENCE_LOG_PROB) else ""
            print(f"{p:4.1f} {lp:5.1f}  {counts[0]:>2} / {counts[1]:<2} of {len(clips)}" + " " * 31
                  + "  ".join(f"{100 * w:10.2f}%" for w in wers) + mark)
    off = [sum(bool(segs) for segs in per_clip) for per_clip in nonspeech.values()]
    print(f" off         {off[0]:>2} / {off[1]:<2} of {len(clips)}")


if __name__ == "__main__":
    main()
