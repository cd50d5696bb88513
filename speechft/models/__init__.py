"""Model families, the built-in offline aliases and the CTranslate2 importer.

Names are imported lazily so that `import speechft.models` stays cheap (no numpy, torch or
transformers until a function is used).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_model": "registry",
    "resolve_model": "registry",
    "list_models": "registry",
    "format_models_table": "registry",
    "LoadedModel": "registry",
    "ModelStatus": "registry",
    "import_ct2": "ct2.to_hf",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
