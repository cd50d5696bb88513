"""The text of a new domain's voices.yaml, recipe.yaml, run.sh and README.md.

The recipe is the medical recipe's current settings (the best measured, recipes/medical/README.md)
with the domain's data paths: domains differ in data, not in method. The voice plan keeps the
medical plan's augmentation and its held-out test speakers, and gives dev speakers of its own.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import yaml

from ..errors import SpeechftError

TEMPLATE_DOMAIN = "medical"
# Voice plan. Speakers: test heart + slt (two engines), dev awb (+ joe), train rms, kal, ked.
TEST_VOICES = ["hibari:heart", "flite:slt", "hibari:heart", "festival:cmu_us_slt_arctic_hts"]  # heart listed twice: half the sentences each
DEV_VOICES = ["flite:awb"]
DEV_VOICE_OPTIONAL = "piper:joe"  # a second dev speaker where piper-tts and the joe voice are installed
TRAIN_VOICES = ["flite:rms", "flite:kal16", "festival:kal_diphone", "festival:ked_diphone"]
# Train augmentation where data_manifests/medical/voices.yaml is not at hand (train_augmentation()).
TRAIN_AUGMENTATION = {"speed_jitter": 0.12, "augment_fraction": 0.3, "noise_snr_db": [20, 35], "reverb": True}
PLAN_SEED = 1


class _Dumper(yaml.SafeDumper):
    """Block mappings, flow lists (`prepare: [a, b]`), as the hand-written recipes are."""


_Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def _dump(values: dict) -> str:
    return yaml.dump(values, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def train_augmentation() -> dict:
    """The train split's variety settings of data_manifests/medical/voices.yaml (the best measured
    so far), without its voices; TRAIN_AUGMENTATION where that file is not at hand."""
    plan = Path(__file__).resolve().parents[2] / "data_manifests" / TEMPLATE_DOMAIN / "voices.yaml"
    if not plan.is_file():
        return dict(TRAIN_AUGMENTATION)
    train = (yaml.safe_load(plan.read_text(encoding="utf-8")) or {}).get("splits", {}).get("train", {})
    return {k: v for k, v in train.items() if k not in ("voices", "sentences")} or dict(TRAIN_AUGMENTATION)


def voices_yaml(domain: str, dev_voices: list[str]) -> str:
    """voices.yaml of a new domain (format: speechft/synth/plan.py `load_plan`)."""
    train = _dump({"train": train_augmentation()}).splitlines()[1:]  # the settings, indented under train:
    return f"""\
# Voice plan for `speechft prepare {domain}` (written by `speechft new`; format: speechft/synth/plan.py).
# Each sentence of <split>.txt is spoken once, round-robin over the split's voices.
#
# test: the two most intelligible speakers (hibari heart; CMU SLT through flite and festival), heart
#   listed twice so each speaker gets half of the sentences. Neither speaks in train or dev: the test
#   set measures held-out speakers (flite slt and festival slt are one person).
# dev: speakers of neither train nor test ({', '.join(dev_voices)}), clean, normal speed: the settings
#   and the shipped decoding are chosen on voices training never heard.
# train: the other speakers (rms; kal through flite and festival; ked), with the variety of
#   data_manifests/{TEMPLATE_DOMAIN}/voices.yaml (speed, noise, rooms, formant and pitch changes...).
seed: {PLAN_SEED}
splits:
  train:
    voices: [{', '.join(TRAIN_VOICES)}]
{chr(10).join("  " + line for line in train)}
  dev:
    voices: [{', '.join(dev_voices)}]
  test:
    voices: [{', '.join(TEST_VOICES)}]
"""


def _template_recipe(recipes: Path) -> Path:
    for candidate in (recipes / TEMPLATE_DOMAIN / "recipe.yaml",
                      Path(__file__).resolve().parents[2] / "recipes" / TEMPLATE_DOMAIN / "recipe.yaml"):
        if candidate.is_file():
            return candidate
    raise SpeechftError(f"recipes/{TEMPLATE_DOMAIN}/recipe.yaml not found (the settings a new recipe copies). "
                        "Fix: run `speechft new` from the speechft repository root, or pass --recipes pointing at its recipes/")


def _rename(value, domain: str):
    if isinstance(value, str):
        return re.sub(rf"\b{TEMPLATE_DOMAIN}\b", domain, value)
    if isinstance(value, list):
        return [_rename(v, domain) for v in value]
    if isinstance(value, dict):
        return {k: _rename(v, domain) for k, v in value.items()}
    return value


# WiSE-FT interpolation of user-made domains (their documents give fewer sentences than medical's
# hand-written ones). Dental dev (held-out voices), shipped decoding, three seeds, the same trained
# weights mixed at 0.5 / 0.35: 18.7 / 16.2%, 19.7 / 17.6%, 17.9 / 16.7%; general dev 4.87 / 4.75%,
# 4.75 / 4.75%, 4.52 / 4.52%.
NEW_DOMAIN_INTERPOLATION = 0.35


def recipe_yaml(domain: str, recipes: Path) -> str:
    """recipe.yaml of a new domain: the medical recipe's values with the domain's paths.

    Raises:
        SpeechftError: the medical recipe is not found or not valid.
    """
    from ..config import load_config

    source = _template_recipe(recipes)
    values = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    load_config(source)  # the source must itself be valid, else the copy is not either
    values = _rename(values, domain)
    values["name"] = domain
    # Medical's int8 export was checked on medical dev; a new domain's is checked on its own dev.
    values.setdefault("export", {})["quantization"] = "auto"
    values.setdefault("train", {})["weight_interpolation"] = NEW_DOMAIN_INTERPOLATION
    header = f"""\
# speechft recipe: {domain} (written by `speechft new {domain}` on {date.today().isoformat()}).
# Settings copied from recipes/{TEMPLATE_DOMAIN}/recipe.yaml, the best measured so far (its README, "How the
# recipe got here"): model, freeze policy, learning rate, everyday replay, packing, prompt-aware
# training, non-speech clips, faster-whisper's front end and beam-5 decoding; only the data paths
# are this domain's, export.quantization is auto (int8 if it decodes this domain's dev as the
# report does, else float32), and train.weight_interpolation is {NEW_DOMAIN_INTERPOLATION} (medical: 0.5): chosen on the
# held-out-voice dev of a user-made dental domain, three seeds, where 0.35 decoded dev 2 points
# better than 0.5 with real speech no worse (README, "Your own domain"). data.general stays the
# real-speech Asterisk set, where forgetting is measured.
# Run from the repository root:
#   speechft run recipes/{domain}/recipe.yaml            (or recipes/{domain}/run.sh: prepare -> run -> export)
#   speechft run recipes/{domain}/recipe.yaml train.epochs=2
"""
    return header + _dump(values)


def run_sh(domain: str, model: str, beams: int, real_test: str | None) -> str:
    """run.sh of a new domain: the shared recipes/run.sh stages, then (with a real-speech set)
    the pretrained and the adapted model on it."""
    head = f"""\
#!/usr/bin/env bash
# The {domain} recipe: prepare -> run -> export.  recipes/{domain}/run.sh [--stage N] [--stop-stage N] [key=value ...]
"""
    if not real_test:
        return head + f'exec "$(dirname "$0")/../run.sh" {domain} "$@"\n'
    return head + f"""\
# Then the real-speech test set (`speechft new --manifest`), held out from every split: before and after.
set -euo pipefail
"$(dirname "$0")/../run.sh" {domain} "$@"
cd "$(dirname "$0")/../.."
[ -d runs/{domain}/latest/model ] || exit 0  # stopped before training (--stop-stage 1)
speechft=${{SPEECHFT:-.venv/bin/speechft}}
[ -x "$speechft" ] || speechft=speechft
echo "== real speech: {real_test}"
for which in before after; do
  model={model}
  [ "$which" = after ] && model=runs/{domain}/latest/model
  "$speechft" eval --model "$model" --manifest {real_test} --terms data_manifests/{domain}/terms.txt \\
    --beams {beams} --out runs/{domain}/latest/eval/real-$which.json
done
"""


def readme(domain: str, counts: dict[str, int], templates: int, n_documents: int, n_terms: int,
           real: tuple[str, int] | None) -> str:
    """README.md of a new recipe: what it holds, the commands, and an empty measured table."""
    real_line = (f"\nReal speech: `{real[0]}` ({real[1]} utterances), an extra held-out test set that "
                 f"`recipes/{domain}/run.sh` scores before and after (`runs/{domain}/latest/eval/real-*.json`).\n"
                 if real else "")
    return f"""\
# {domain}

Written by `speechft new` on {date.today().isoformat()} from {n_documents} documents and {n_terms} terms
(`data_manifests/{domain}/terms.txt`). Text-only adaptation: {counts['train']} train ({templates} of them carrier
sentences for terms the documents rarely use) / {counts['dev']} dev / {counts['test']} test sentences, split by
document so that test sentences come from documents training never saw (`data_manifests/{domain}/sentences.tsv`
says where each sentence came from; `coverage.tsv` counts every term per split). Spoken by offline TTS voices
(`voices.yaml`); test speakers never occur in train or dev.
{real_line}
```bash
speechft lexicon check {domain}                  # terms the voices probably mispronounce: fix lexicon.txt first
recipes/{domain}/run.sh                          # prepare -> run -> export (--stage 2 restarts at training)
speechft run recipes/{domain}/recipe.yaml        # the run alone
```

## Measured

Not measured yet: the first run fills in this table. `speechft run recipes/{domain}/recipe.yaml` writes
`runs/{domain}/latest/report.md`; copy its table here with the date, the machine and the wall time, as
`recipes/medical/README.md` does.

| set | model | WER | CER | term recall | n |
|---|---|---|---|---|---|
| test | before | | | | |
| test | prompted (terms as decoding prompt) | | | | |
| test | after | | | | |
| general | before | | | n/a | |
| general | after | | | n/a | |
"""
