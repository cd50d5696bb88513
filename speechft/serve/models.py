"""Several models behind one server: a base model and named domain adapters, chosen per request
by the OpenAI `model` field (`speechft serve --model BASE --adapter medical=DIR ...`).

An adapter is either a CTranslate2 export of a merged model (the fast path: one export per
domain is loaded, about the size of its model.bin in memory each: ~40 MB for tiny.en int8), or a
peft adapter folder (a LoRA run's adapter/), merged at start-up into a copy of the base model
and served through the HF path (one full model in memory per domain: ~150 MB for tiny.en fp32).
A merged copy is kept in $SPEECHFT_HOME/merged/ and reused while the adapter is unchanged.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpeechftError
from ..models.ct2.runtime import is_ct2_dir
from ..models.shipped import SHIPPED_FILE
from .backends import CT2Backend, HFBackend, load_backend
from .errors import APIError

DEFAULT_NAMES = ("", "whisper-1")  # what OpenAI clients send when the user picked no model


@dataclass
class ServedModels:
    """Backends by the name a request gives in `model`; `default` serves requests naming none."""

    backends: dict[str, object]
    default: str
    sources: dict[str, str] = field(default_factory=dict)  # name -> folder it came from

    @property
    def default_backend(self):
        return self.backends[self.default]

    def pick(self, name: str | None):
        """(name, backend) for a request's `model` field: with one model served, any name (a client
        configured for "whisper-large-v3" still works); with adapters, a served name.

        Raises:
            APIError: 400 for a name that is not served, listing the ones that are.
        """
        name = (name or "").strip()
        if name in DEFAULT_NAMES or name == self.default or len(self.backends) == 1:
            return self.default, self.default_backend
        if name not in self.backends:
            raise APIError(400, f"model={name!r} is not served here. Fix: use one of {', '.join(self.backends)} "
                           f"(or leave it out for {self.default})", "model_not_found")
        return name, self.backends[name]


def _merged_copy(base: str, adapter_dir: Path) -> Path:
    """The base model with the peft adapter merged in, written once and reused while unchanged."""
    from ..lora import merge_adapter
    from ..models.registry import resolve_model, speechft_home

    weights = sorted(adapter_dir.glob("adapter_model.*"))
    stamp = [str(Path(resolve_model(base)).resolve()), str(adapter_dir.resolve())] + [f"{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights]
    out = speechft_home() / "merged" / hashlib.sha1("|".join(stamp).encode()).hexdigest()[:16]
    if not (out / "config.json").is_file():
        merge_adapter(base, adapter_dir, out)
        if (adapter_dir / SHIPPED_FILE).is_file():  # the run's decoding and front end come along
            shutil.copyfile(adapter_dir / SHIPPED_FILE, out / SHIPPED_FILE)
    return out


def load_models(model_dir: str | Path, adapters: dict[str, str], served_for) -> ServedModels:
    """The base model and every adapter, loaded.

    Args:
        model_dir: the base: a CT2 export, an HF Whisper folder or an alias.
        adapters: name -> a CT2 export of a merged model, or a peft adapter folder.
        served_for: folder -> ServedDecoding (the server's decoding settings for that folder).

    Raises:
        SpeechftError: a missing folder, a name used twice, or a peft adapter on a CT2 base.
    """
    base_name = Path(str(model_dir)).name
    models = ServedModels({base_name: load_backend(model_dir, served_for(model_dir))}, base_name, {base_name: str(model_dir)})
    for name, folder in adapters.items():
        folder_path = Path(folder)
        if name in models.backends or name in DEFAULT_NAMES:
            raise SpeechftError(f"--adapter {name}={folder}: the name {name!r} is taken. Fix: give each adapter its own name")
        if is_ct2_dir(folder_path):
            backend = CT2Backend(folder_path, served_for(folder_path))
        elif (folder_path / "adapter_config.json").is_file():
            if is_ct2_dir(model_dir):
                raise SpeechftError(f"--adapter {name}={folder} is a peft adapter, which cannot be applied to the CTranslate2 "
                                    f"model {model_dir}. Fix: serve the base as a model folder or alias (--model "
                                    "whisper-tiny.en), or give the domain's merged CT2 export (speechft export)")
            backend = HFBackend(str(_merged_copy(str(model_dir), folder_path)), served_for(folder_path))
        else:
            raise SpeechftError(f"--adapter {name}={folder}: not a CTranslate2 export (model.bin) nor a peft adapter "
                                "(adapter_config.json). Fix: give a LoRA run's adapter/ or an export made by speechft export")
        models.backends[name], models.sources[name] = backend, str(folder)
    return models
