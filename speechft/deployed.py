"""The report's deployed-path rows: the model as a voice assistant runs it.

The adapted model is exported to CTranslate2 (int8 by default, as `speechft export` and the
docs recommend) and decoded by faster-whisper with `DeployedDecoding` (models/ct2/runtime.py),
the settings `speechft serve` uses: so the `deployed`, `long` and `nonspeech` rows of a report
measure exactly what is served.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .audio import load_audio
from .io_utils import replace_dir
from .manifest import Utterance
from .models.ct2.convert import convert_to_ct2
from .models.ct2.runtime import DeployedDecoding, cpu_threads, load_ct2, transcribe_deployed


def export_for_eval(model_dir: Path, out_dir: Path, quantization: str = "int8") -> Path:
    """Convert `model_dir` to a CTranslate2 folder `out_dir` (no parity check), replacing an old one."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        shutil.rmtree(tmp)  # the converter wants to create the folder itself
        convert_to_ct2(Path(model_dir), tmp, quantization)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def pretrained_export(name: str, quantization: str = "int8") -> Path:
    """The pretrained model `name` (alias or folder) exported once to CTranslate2, cached under
    $SPEECHFT_HOME/exports: the before-rows of every run decode it."""
    from .models.registry import resolve_model, speechft_home

    source = Path(resolve_model(name))
    key = f"{source.name}-{int((source / 'config.json').stat().st_mtime)}-{quantization}"
    out = speechft_home() / "exports" / key
    if not (out / "model.bin").is_file():
        export_for_eval(source, out, quantization)
    return out


class DeployedModel:
    """An exported folder loaded once, decoding utterances as the server does.

    One decoding per core at a time, each on one thread: a beam search over one clip keeps two
    threads only half busy, so this decodes a set about twice as fast on 2 cores, and the
    tokens are the same (CTranslate2's results do not depend on its thread count; checked on
    40 medical test clips). A clip whose decoding fell back to sampling (a guard rejected the
    greedy/beam output) is decoded once more alone afterwards: sampling is seeded per call, and
    two calls at once would share the seed.
    """

    def __init__(self, ct2_dir: Path, decoding: DeployedDecoding):
        self.workers = cpu_threads()
        self.model = load_ct2(ct2_dir, threads=1, workers=self.workers)
        self.decoding = decoding
        # faster-whisper's timestamp_begin: the timestamp tokens follow <|notimestamps|>.
        self.timestamp_begin = self.model.hf_tokenizer.token_to_id("<|notimestamps|>") + 1

    def with_decoding(self, decoding: DeployedDecoding) -> "DeployedModel":
        """The same loaded model, decoding another way (no second load)."""
        other = copy.copy(self)
        other.decoding = decoding
        return other

    def _one(self, utt: Utterance) -> tuple[str, list]:
        return transcribe_deployed(self.model, load_audio(utt.audio_filepath), self.decoding)

    def transcribe(self, utts: list[Utterance]) -> tuple[list[str], list[list]]:
        """(texts, faster-whisper segments) for each utterance, in order."""
        # Longest first: a long recording handed out last would leave the other core idle while
        # it decodes (the medical long set alone: 3 recordings on 2 cores).
        order = sorted(range(len(utts)), key=lambda i: -(utts[i].duration or 0.0))
        results: list = [None] * len(utts)
        with ThreadPoolExecutor(self.workers) as pool:
            for i, result in zip(order, pool.map(self._one, [utts[i] for i in order])):
                results[i] = result
        for i, (_, segs) in enumerate(results):
            if any((s.temperature or 0) > 0 for s in segs):
                results[i] = self._one(utts[i])
        return [text for text, _ in results], [segs for _, segs in results]
