"""Training speed: transformers' Seq2SeqTrainer recipe vs speechft's Trainer, same model and data.

Both fine-tune Whisper tiny.en (built-in alias, offline) with the whole encoder frozen, batch 8,
AdamW, the same learning rate with linear decay and no warm-up, gradient clipping at 1.0, fp32
on CPU, the same seed and the same torch thread count, on synthetic speech made with Debian
flite. The two runs alternate in one process (a, b, a, b, ...) so machine noise hits both.

(a) transformers: as examples/pytorch/speech-recognition/run_speech_recognition_seq2seq.py does
    it: `model.freeze_encoder()`, features and labels computed once with `datasets.map`,
    DataCollatorSpeechSeq2SeqWithPadding, Seq2SeqTrainer with predict_with_generate=False, no
    evaluation or saving during training, dataloader_num_workers=0.
(b) speechft: `Trainer.fit` with train.cache=true and a fresh cache folder per run, so the
    frozen-encoder cache build is paid inside speechft's first epoch; train.select_by=loss.
    The per-epoch dev loss that speechft computes is timed and excluded from its epoch time
    (the Trainer side evaluates nothing during training).

The final dev loss is computed by one function for both models (`token_dev_loss`).

Run from the repository root:
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_speed.py [--epochs 3] [--clips 64] [--rounds 1]
The last line is `speedup: X.XX` = Trainer s/epoch / speechft s/epoch, both averaged over all
epochs of the training loop. One-off work before the first epoch is printed separately for each
side (the Trainer's feature extraction, speechft's frozen-encoder cache build), together with
the end-to-end ratio that includes it.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
import torch.nn.functional as F

from speechft.audio import SAMPLE_RATE, load_audio
from speechft.manifest import Utterance, read_manifest, write_manifest

FLITE = "/usr/bin/flite"
FLITE_VOICE = "slt"
MIN_SECONDS, MAX_SECONDS = 2.0, 5.0  # s, clip length wanted
IGNORE_INDEX = -100
DEFAULT_DATA_DIR = Path(tempfile.gettempdir()) / "speechft-bench-train-speed"

# ---- synthetic medical-ish speech -----------------------------------------------------------------
_OPENERS = ["Please", "Now", "Today", "Then", "Also", "Nurse, please", "Doctor, please", "Kindly"]
_ACTIONS = ["give", "start", "hold", "stop", "continue", "increase", "reduce", "repeat", "order", "check"]
_OBJECTS = [
    "atorvastatin", "apixaban", "metformin", "heparin", "furosemide", "amoxicillin", "warfarin",
    "the troponin", "the creatinine", "an echocardiogram", "a chest x-ray", "the potassium",
    "lisinopril", "insulin glargine", "the blood cultures", "omeprazole", "a lipid panel",
]
_TAILS = [
    "twice daily", "at bedtime", "before breakfast", "after the scan", "in the morning",
    "for three days", "every six hours", "until further notice", "", "", "with food",
]


def _sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seen: list[str] = []
    while len(seen) < n:
        words = [rng.choice(_OPENERS), rng.choice(_ACTIONS), rng.choice(_OBJECTS), rng.choice(_TAILS)]
        s = " ".join(w for w in words if w) + "."
        s = s[0].upper() + s[1:]
        if s not in seen:
            seen.append(s)
    return seen


def _synth(text: str, path: Path) -> float:
    """flite -> wav; returns the duration in seconds."""
    tmp = path.with_name(f".{path.name}.tmp.wav")
    subprocess.run([FLITE, "-voice", FLITE_VOICE, "-t", text, "-o", str(tmp)], check=True, capture_output=True)
    tmp.replace(path)
    return len(load_audio(path)) / SAMPLE_RATE


def make_data(folder: Path, n_train: int, n_dev: int, seed: int = 0) -> tuple[list[Utterance], list[Utterance]]:
    """Synthesise (or reuse) n_train + n_dev clips of 2-5 s; returns (train, dev) utterances."""
    folder.mkdir(parents=True, exist_ok=True)
    key = f"{n_train}-{n_dev}-{seed}-{FLITE_VOICE}"
    train_m, dev_m = folder / f"train-{key}.jsonl", folder / f"dev-{key}.jsonl"
    if train_m.exists() and dev_m.exists():
        return read_manifest(train_m), read_manifest(dev_m)
    utts: list[Utterance] = []
    pool = iter(_sentences(10 * (n_train + n_dev), seed))
    while len(utts) < n_train + n_dev:
        text = next(pool)
        path = folder / f"{hashlib.sha1(text.encode()).hexdigest()[:12]}.wav"
        dur = len(load_audio(path)) / SAMPLE_RATE if path.exists() else _synth(text, path)
        if MIN_SECONDS <= dur <= MAX_SECONDS:
            utts.append(Utterance(str(path), text, round(dur, 3), id=path.stem))
    write_manifest(train_m, utts[:n_train])
    write_manifest(dev_m, utts[n_train:])
    return read_manifest(train_m), read_manifest(dev_m)


# ---- the one dev-loss function ---------------------------------------------------------------------
def dev_features(feature_extractor, dev: list[Utterance]) -> torch.Tensor:
    return feature_extractor([load_audio(u.audio_filepath) for u in dev], sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features


@torch.no_grad()
def token_dev_loss(model, tokenizer, features: torch.Tensor, texts: list[str], batch_size: int = 8) -> float:
    """Token-level cross-entropy over the dev set: the mean over every non-padded label token of
    text + end-of-text; the decoder prefix (start of transcript, no-timestamps) is given, not
    scored, as speechft does. Full fp32 encoder on the log-mel features, then the decoder."""
    model.eval()
    prefix, eot = list(tokenizer.prefix_tokens), tokenizer.eos_token_id
    total, count = 0.0, 0
    for i in range(0, len(texts), batch_size):
        seqs = [prefix + tokenizer.encode(" " + t.strip(), add_special_tokens=False) + [eot] for t in texts[i : i + batch_size]]
        width = max(len(s) for s in seqs) - 1
        inputs = torch.full((len(seqs), width), eot, dtype=torch.long)
        labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
        for j, s in enumerate(seqs):
            inputs[j, : len(s) - 1] = torch.tensor(s[:-1])
            labels[j, len(prefix) - 1 : len(s) - 1] = torch.tensor(s[len(prefix) :])
        enc = model.model.encoder(features[i : i + batch_size]).last_hidden_state
        logits = model(encoder_outputs=(enc,), decoder_input_ids=inputs, use_cache=False).logits
        total += float(F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="sum"))
        count += int((labels != IGNORE_INDEX).sum())
    return total / max(count, 1)


# ---- runs -------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    name: str
    epoch_seconds: list[float]
    dev_loss: float
    epoch_cpu_seconds: list[float] = field(default_factory=list)  # process CPU time, all threads
    setup_seconds: float = 0.0  # Trainer: datasets.map preprocessing (not in epoch times)
    cache_seconds: float = 0.0  # speechft: cache build (inside epoch 1)
    excluded_seconds: float = 0.0  # speechft: per-epoch dev loss (not in epoch times)
    extra: dict = field(default_factory=dict)


def _reset(args) -> None:
    gc.collect()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)


def run_trainer(args, train: list[Utterance], dev: list[Utterance], dev_texts: list[str]) -> RunResult:
    """(a) transformers' Seq2SeqTrainer, as in run_speech_recognition_seq2seq.py."""
    import datasets
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

    from speechft.models.registry import load_model

    _reset(args)
    loaded = load_model(args.model)
    model, processor = loaded.model, loaded.processor
    feature_extractor, tokenizer = processor.feature_extractor, processor.tokenizer
    model.freeze_encoder()
    model.model.encoder.gradient_checkpointing = False
    model_input_name = feature_extractor.model_input_names[0]

    def prepare_dataset(batch):
        audio = load_audio(batch["audio"])
        inputs = feature_extractor(audio, sampling_rate=SAMPLE_RATE)
        batch[model_input_name] = inputs.get(model_input_name)[0]
        batch["input_length"] = len(audio)
        # The example tokenises the bare text; a leading space makes the targets the exact token
        # sequence speechft trains on (Whisper's transcripts start with a space token).
        batch["labels"] = tokenizer(" " + batch["text"].strip()).input_ids
        return batch

    t0 = time.perf_counter()
    raw = datasets.Dataset.from_list([{"audio": u.audio_filepath, "text": u.text} for u in train])
    train_ds = raw.map(prepare_dataset, remove_columns=raw.column_names, desc="preprocess train dataset")
    setup = time.perf_counter() - t0

    @dataclass
    class DataCollatorSpeechSeq2SeqWithPadding:
        processor: object
        decoder_start_token_id: int

        def __call__(self, features):
            input_features = [{model_input_name: f[model_input_name]} for f in features]
            label_features = [{"input_ids": f["labels"]} for f in features]
            batch = self.processor.feature_extractor.pad(input_features, return_tensors="pt")
            labels_batch = self.processor.tokenizer.pad(label_features, return_tensors="pt")
            labels = labels_batch["input_ids"].masked_fill(labels_batch.attention_mask.ne(1), IGNORE_INDEX)
            if (labels[:, 0] == self.decoder_start_token_id).all().cpu().item():
                labels = labels[:, 1:]  # the model prepends the decoder start token itself
            batch["labels"] = labels
            return batch

    marks: list[tuple[float, float]] = []

    class EpochTimer(TrainerCallback):
        def on_epoch_end(self, targs, state, control, **kw):
            marks.append((time.perf_counter(), time.process_time()))

    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as out:
        targs = Seq2SeqTrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, learning_rate=args.lr,
            num_train_epochs=args.epochs, warmup_steps=0, lr_scheduler_type="linear", weight_decay=0.0,
            max_grad_norm=1.0, seed=args.seed, eval_strategy="no", save_strategy="no",
            logging_strategy="epoch", report_to="none", use_cpu=True, dataloader_num_workers=0,
            predict_with_generate=False, disable_tqdm=True, fp16=False, bf16=False,
        )
        trainer = Seq2SeqTrainer(
            model=model, args=targs, train_dataset=train_ds,
            data_collator=DataCollatorSpeechSeq2SeqWithPadding(processor, model.config.decoder_start_token_id),
            processing_class=feature_extractor, callbacks=[EpochTimer()],
        )
        start = (time.perf_counter(), time.process_time())
        trainer.train()
    wall, cpu = (np.diff([start[i]] + [m[i] for m in marks]).tolist() for i in (0, 1))
    loss = token_dev_loss(model, tokenizer, dev_features(feature_extractor, dev), dev_texts)
    return RunResult("trainer", wall, loss, cpu, setup_seconds=setup, extra={"threads": torch.get_num_threads()})


def run_speechft(args, train: list[Utterance], dev: list[Utterance], dev_texts: list[str], manifests: list[str]) -> RunResult:
    """(b) speechft Trainer.fit with a fresh frozen-prefix cache."""
    from speechft.cache import PrefixCaches
    from speechft.config import load_config
    from speechft.models.adapters import adapter_for
    from speechft.models.registry import load_model
    from speechft.train import Trainer

    _reset(args)
    cfg = load_config(None, [
        f"data.train={manifests[0]}", f"data.dev={manifests[1]}", f"data.test={manifests[1]}",
        # Same targets as the Trainer side: the text as written (speechft's default rewrites
        # spoken numbers as digits, which the shared dev-loss function would count against it).
        f"model.name={args.model}", "model.numbers_as_digits=false", "freeze.policy=encoder",
        f"train.epochs={args.epochs}", f"train.batch_size={args.batch_size}", f"train.lr={args.lr}",
        "train.warmup_ratio=0", "train.weight_decay=0", "train.max_grad_norm=1.0", f"train.seed={args.seed}",
        "train.select_by=loss", "train.cache=true", "train.precision=fp32", "train.checkpoint_every=0",
        f"train.early_stopping_patience={args.epochs + 1}",  # run every epoch, as the Trainer side does
    ])
    loaded = load_model(args.model)
    adapter = adapter_for(loaded, cfg.model)
    marks: list[tuple[float, float, float, float]] = []  # (start, end, cpu start, cpu end) of each per-epoch dev loss
    cache_time = [0.0]

    class TimedTrainer(Trainer):
        def dev_loss(self, dev_utts, k=None):
            t, c = time.perf_counter(), time.process_time()
            out = super().dev_loss(dev_utts, k)
            marks.append((t, time.perf_counter(), c, time.process_time()))
            return out

    class TimedCaches(PrefixCaches):
        def for_units(self, k):
            cache = super().for_units(k)
            if not getattr(cache, "_bench_timed", False):
                build = cache.build

                def timed_build(utts, desc="cache"):
                    t = time.perf_counter()
                    build(utts, desc=desc)
                    cache_time[0] += time.perf_counter() - t

                cache.build, cache._bench_timed = timed_build, True
            return cache

    with tempfile.TemporaryDirectory(prefix="bench-speechft-cache-") as cache_root:
        trainer = TimedTrainer(adapter, cfg, TimedCaches(cache_root, adapter, enabled=cfg.train.cache))
        start, cpu_start = time.perf_counter(), time.process_time()
        result = trainer.fit(train, dev)
    # Epoch i runs from the end of dev loss i-1 (or the call) to the start of dev loss i.
    ends, cpu_ends = [start] + [m[1] for m in marks], [cpu_start] + [m[3] for m in marks]
    epochs = [m[0] - ends[i] for i, m in enumerate(marks)]
    cpu = [m[2] - cpu_ends[i] for i, m in enumerate(marks)]
    loss = token_dev_loss(adapter.model, adapter.tokenizer, dev_features(adapter.processor.feature_extractor, dev), dev_texts)
    return RunResult("speechft", epochs, loss, cpu, cache_seconds=cache_time[0], excluded_seconds=sum(m[1] - m[0] for m in marks),
                     extra={"best_epoch": result.best_epoch, "threads": torch.get_num_threads()})


def baseline_dev_loss(args, dev: list[Utterance], dev_texts: list[str]) -> float:
    from speechft.models.registry import load_model

    _reset(args)
    loaded = load_model(args.model)
    return token_dev_loss(loaded.model, loaded.processor.tokenizer, dev_features(loaded.processor.feature_extractor, dev), dev_texts)


def machine() -> str:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    import transformers

    return (f"nproc={os.cpu_count()}, cpu={cpu}, python {platform.python_version()}, torch {torch.__version__}, "
            f"transformers {transformers.__version__}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--clips", type=int, default=64, help="training clips")
    p.add_argument("--dev-clips", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--rounds", type=int, default=1, help="a,b pairs; each run reloads the model")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--model", default="whisper-tiny.en")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="synthetic clips are cached here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    train, dev = make_data(args.data_dir, args.clips, args.dev_clips)
    key = f"{args.clips}-{args.dev_clips}-0-{FLITE_VOICE}"
    manifests = [str(args.data_dir / f"train-{key}.jsonl"), str(args.data_dir / f"dev-{key}.jsonl")]
    dev_texts = [u.text for u in dev]
    steps = -(-len(train) // args.batch_size)
    print(f"machine: {machine()}, torch threads={args.threads}")
    print(f"data: {len(train)} train clips ({sum(u.duration for u in train):.0f} s of flite speech), {len(dev)} dev clips; "
          f"batch {args.batch_size}, {steps} steps/epoch, {args.epochs} epochs, lr {args.lr:g}, seed {args.seed}, encoder frozen")
    base = baseline_dev_loss(args, dev, dev_texts)
    print(f"pretrained dev loss: {base:.4f}")

    results: dict[str, list[RunResult]] = {"trainer": [], "speechft": []}
    for r in range(1, args.rounds + 1):
        for name in ("trainer", "speechft"):
            t = time.perf_counter()
            res = run_trainer(args, train, dev, dev_texts) if name == "trainer" else run_speechft(args, train, dev, dev_texts, manifests)
            results[name].append(res)
            ep = ", ".join(f"{s:.1f}" for s in res.epoch_seconds)
            ep_cpu = ", ".join(f"{s:.1f}" for s in res.epoch_cpu_seconds)
            more = (f"datasets.map preprocessing {res.setup_seconds:.1f} s (not in epochs)" if name == "trainer" else
                    f"cache build {res.cache_seconds:.1f} s (in epoch 1), per-epoch dev loss {res.excluded_seconds:.1f} s "
                    f"(not in epochs), best epoch {res.extra['best_epoch']}")
            print(f"round {r} {name:8s}: epochs [{ep}] s wall, [{ep_cpu}] s CPU, dev loss {res.dev_loss:.4f}; {more}; threads {res.extra['threads']}; "
                  f"run wall {time.perf_counter() - t:.1f} s", flush=True)

    tr, sf = results["trainer"], results["speechft"]
    # Per epoch = the training loop's passes over the data. One-off work before the first pass
    # is reported on its own line for each side: the Trainer's datasets.map feature extraction
    # and speechft's frozen-encoder cache build (which a second run of the recipe reuses).
    tr_epochs = [s for r in tr for s in r.epoch_seconds]
    sf_epochs = [s - (r.cache_seconds if i == 0 else 0.0) for r in sf for i, s in enumerate(r.epoch_seconds)]
    tr_once = statistics.mean(r.setup_seconds for r in tr)
    sf_once = statistics.mean(r.cache_seconds for r in sf)
    tr_epoch, sf_epoch = statistics.mean(tr_epochs), statistics.mean(sf_epochs)
    tr_loss, sf_loss = statistics.mean(r.dev_loss for r in tr), statistics.mean(r.dev_loss for r in sf)
    print(f"Seq2SeqTrainer: {tr_epoch:.1f} s/epoch (mean of {len(tr_epochs)} epochs); one-off feature preprocessing "
          f"{tr_once:.1f} s; final dev loss {tr_loss:.4f}")
    print(f"speechft: {sf_epoch:.1f} s/epoch (mean of {len(sf_epochs)} epochs); one-off frozen-encoder cache build "
          f"{sf_once:.1f} s; final dev loss {sf_loss:.4f}")
    tr_total, sf_total = tr_once + args.epochs * tr_epoch, sf_once + args.epochs * sf_epoch
    print(f"end to end, one-off work + {args.epochs} epochs with an empty cache: {tr_total:.1f} s vs {sf_total:.1f} s = "
          f"{tr_total / sf_total:.2f}x (grows with epochs; a rerun with the cache filled: "
          f"{tr_total / (args.epochs * sf_epoch):.2f}x)")
    gap = (sf_loss - tr_loss) / tr_loss
    print(f"final dev loss: speechft {sf_loss:.4f} vs Seq2SeqTrainer {tr_loss:.4f}: {100 * gap:+.1f}% "
          f"({'within' if abs(gap) <= 0.02 else 'OUTSIDE'} 2%)")
    tr_cpu = statistics.mean(s for r in tr for s in r.epoch_cpu_seconds)
    sf_cpu = statistics.mean(s for r in sf for s in r.epoch_cpu_seconds)
    print(f"CPU seconds per epoch incl. speechft's cache build (process time, less sensitive to other load): "
          f"Seq2SeqTrainer {tr_cpu:.1f}, speechft {sf_cpu:.1f}; ratio {tr_cpu / sf_cpu:.2f}")
    if args.rounds > 1:
        per_round = [statistics.mean(a.epoch_seconds) / (statistics.mean(b.epoch_seconds) - b.cache_seconds / len(b.epoch_seconds))
                     for a, b in zip(tr, sf)]
        print("per-round speedups: " + ", ".join(f"{x:.2f}" for x in per_round))
    print(f"speedup: {tr_epoch / sf_epoch:.2f}")


if __name__ == "__main__":
    main()
