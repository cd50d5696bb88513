"""Read CTranslate2's model.bin with plain numpy (no ctranslate2 needed).

Layout (FACTS.md; writer: `ctranslate2/specs/model_spec.py::_serialize`): u32 version, spec
name, u32 revision, u32 variable count, then each variable (name, rank, dims, dtype id, byte
count, raw data), then (alias, target) string pairs. Strings are u16-length-prefixed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import SpeechftError

CT2_BINARY_VERSION = 6  # the only model.bin layout written by ctranslate2 >= 3
# CT2 dtype ids (include/ctranslate2/types.h): numpy dtype, or "bfloat16" (numpy has none).
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
QUANTIZED_DTYPES = {np.int8: "int8", np.int16: "int16"}


@dataclass
class Ct2Model:
    """The parsed content of a CT2 model.bin (arrays keep their stored dtype)."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]  # alias name -> stored variable name


class _Reader:
    """Sequential little-endian reader over the bytes of model.bin that names the file on errors."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = memoryview(data), path, 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise SpeechftError(
                f"{self.path} is truncated: needs {self.pos + n} bytes but has {len(self.data)}. "
                "Fix: copy or download the model again (for split models, concatenate all parts in order)"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def string(self) -> str:
        raw = bytes(self.take(self.unpack("H")))  # length counts the trailing NUL
        return raw[:-1].decode("utf-8", errors="replace")


def read_ct2_model(path: str | Path) -> Ct2Model:
    """Parse a CT2 model.bin without ctranslate2.

    Raises:
        SpeechftError: the file is truncated, has trailing bytes or an unknown binary version.
    """
    path = Path(path)
    reader = _Reader(path.read_bytes(), path)
    version = reader.unpack("I")
    if version != CT2_BINARY_VERSION:
        raise SpeechftError(
            f"{path} has CTranslate2 binary version {version}; this importer reads version "
            f"{CT2_BINARY_VERSION}. Fix: re-convert the model with ctranslate2>=3"
        )
    spec, revision = reader.string(), reader.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
        type_id, n_bytes = reader.unpack("B"), reader.unpack("I")
        if type_id not in _CT2_DTYPES:
            raise SpeechftError(f"{path}: variable {name} has unknown dtype id {type_id}. Fix: re-convert the model")
        dtype = _CT2_DTYPES[type_id]
        itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
        if n_bytes != int(np.prod(shape, dtype=np.int64)) * itemsize:
            raise SpeechftError(f"{path}: variable {name} has {n_bytes} bytes for shape {shape}; the file is corrupt")
        array = np.frombuffer(reader.take(n_bytes), dtype=np.uint16 if dtype == "bfloat16" else dtype)
        if dtype == "bfloat16":  # bf16 is the top half of an fp32: widen exactly now
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[name] = array.reshape(shape)
    aliases = dict((reader.string(), reader.string()) for _ in range(reader.unpack("I")))  # (alias, target)
    if reader.pos != len(reader.data):
        raise SpeechftError(
            f"{path} has {len(reader.data) - reader.pos} unexpected bytes after the last entry. "
            "Fix: for split models, concatenate each part exactly once, in order"
        )
    return Ct2Model(spec, revision, variables, aliases)
