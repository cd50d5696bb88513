"""How to join the terms of a decoding prompt, chosen on held-out-voice dev sentences (not test).

Speaks `benchmarks/data/medical_dev_extra.txt` (210 medical sentences written apart from the
repository's splits, each of the 70 terms three times) with the recipe's dev voices, then decodes
it, and any speech manifests given, with the pretrained and an adapted model, each with the terms
prompt joined by ", " and by " " (as many whole terms as fit Whisper's 223 prompt tokens, in the
adapted model's shipped order). Prints WER, term recall, and the recall of the terms inside and
outside the prompt. Quality, not speed; beam 5 through CTranslate2 as the recipes decode.

    python benchmarks/prompt_format.py --model runs/medical/latest/model \\
        --manifest data/medical/dev.jsonl data/general/dev.jsonl
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speechft.cache import PrefixCache, encoder_unit_count
from speechft.config import ModelConfig
from speechft.evaluate import evaluate
from speechft.manifest import read_manifest
from speechft.models.adapters import load_adapter
from speechft.models.base import DecodeOptions
from speechft.models.registry import speechft_home
from speechft.models.shipped import read_shipped
from speechft.synth import Sentence, Voice, synth_sentences
from speechft.text import count_term, normalize, read_terms

SEPARATORS = {"comma": ", ", "space": " "}
HERE = Path(__file__).parent


def shipped_order(terms: list[str], prompt: str | None) -> list[str]:
    """The terms in the order the shipped prompt holds them (whatever joins them), then the rest."""
    at = {t: (prompt or "").find(t) for t in terms}
    return sorted((t for t in terms if at[t] >= 0), key=at.get) + [t for t in terms if at[t] < 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an adapted model folder (a run's model/)")
    parser.add_argument("--pretrained", default="whisper-tiny.en")
    parser.add_argument("--terms", default="data_manifests/medical/terms.txt")
    parser.add_argument("--sentences", default=str(HERE / "data" / "medical_dev_extra.txt"))
    parser.add_argument("--voices", nargs="+", default=["flite:awb", "piper:joe"], help="dev voices (in neither train nor test)")
    parser.add_argument("--audio-dir", default="data/medical_dev_extra", help="where the spoken sentences go (reused)")
    parser.add_argument("--manifest", nargs="*", default=[], help="more dev manifests to decode")
    args = parser.parse_args()

    terms = read_terms(args.terms)
    lines = [s.strip() for s in Path(args.sentences).read_text(encoding="utf-8").splitlines() if s.strip()]
    voices = [Voice.parse(v) for v in args.voices]
    sents = [Sentence(t, i + 1, args.sentences, f"dev-extra-{i + 1:04d}") for i, t in enumerate(lines)]
    sets = {"dev-extra": synth_sentences(sents, [voices[i % len(voices)] for i in range(len(sents))], args.audio_dir, seed=7)}
    sets.update({m: read_manifest(m) for m in args.manifest})

    shipped = read_shipped(args.model)
    order = shipped_order(terms, shipped.prompt if shipped else None)
    for name in (args.pretrained, args.model):
        adapter = load_adapter(name, ModelConfig(name=name, feature_padding="logmel"))
        # The whole encoder's output, stored: it is frozen in the recipes.
        cache = PrefixCache(speechft_home() / "cache", adapter, encoder_unit_count(adapter))
        for fmt, sep in SEPARATORS.items():
            inside = adapter.fit_terms(order, separator=sep)
            options = DecodeOptions(num_beams=5, prompt=sep.join(inside))
            for set_name, utts in sets.items():
                r = evaluate(adapter, utts, cache, terms, options=options, desc=f"{set_name} {fmt}")
                counts = {True: [0, 0], False: [0, 0]}  # inside the prompt: [occurrences, recalled]
                for u in r.utterances:
                    for t in terms:
                        n = count_term(u.ref_norm, normalize(t))
                        if n:
                            counts[t in inside][0] += n
                            counts[t in inside][1] += min(n, count_term(u.hyp_norm, normalize(t)))
                recall = "n/a" if r.term_recall is None else f"{100 * r.term_recall:.1f}%"
                print(f"{name} {fmt:>5} ({len(inside)} terms) {set_name:>28}: WER {100 * r.wer:.2f}% "
                      f"recall {recall} (inside {counts[True][1]}/{counts[True][0]}, outside {counts[False][1]}/{counts[False][0]})",
                      flush=True)


if __name__ == "__main__":
    main()
