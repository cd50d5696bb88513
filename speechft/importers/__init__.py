"""Bring your own data: import datasets of many forms as 16 kHz FLAC + NeMo manifests, and
export a manifest as a Hugging Face dataset.

Modules: `detect` (which form a source is), `hf` (forms `datasets` reads), `commonvoice`,
`kaldi`, `refs` (audio references and their content keys), `write` (conversion and validated
manifests), `core` (`import_dataset`), `export` (`export_dataset`), `sources` (recipes'
`hf:PATH[:split]` entries).
"""

from .core import ImportResult, import_dataset
from .detect import FORMATS, detect_format
from .export import export_dataset
from .rows import Columns
from .sources import resolve_source

__all__ = ["Columns", "FORMATS", "ImportResult", "detect_format", "export_dataset", "import_dataset", "resolve_source"]
