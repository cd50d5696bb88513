"""Import a CTranslate2 Whisper checkpoint (model.bin) as a Hugging Face Whisper folder.

CTranslate2 (faster-whisper) models are the only pretrained Whisper weights that can be
installed offline here, but fine-tuning needs a `WhisperForConditionalGeneration`. This
module reads CT2's binary format (format.py), undoes what ctranslate2's WhisperLoader did
(`ctranslate2/converters/transformers.py`), and writes an ordinary HF model folder:
config.json, generation_config.json, model.safetensors, tokenizer files, normalizer.json
and preprocessor_config.json. fp16/bf16 -> fp32 is exact, so the import is lossless:
converting the result back with ctranslate2's converter gives bit-identical tensors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ...errors import SpeechftError
from ...io_utils import replace_dir
from .format import QUANTIZED_DTYPES, Ct2Model, read_ct2_model

WHISPER_SPEC_NAME = "WhisperSpec"
CT2_GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU
TIME_PRECISION = 0.02  # s per Whisper timestamp token
N_TIMESTAMP_TOKENS = 1501  # <|0.00|> .. <|30.00|>
MAX_INITIAL_TIMESTAMP_INDEX = 50  # first timestamp within 1 s, as openai-whisper decodes
MULTILINGUAL_MIN_VOCAB = 51865  # openai-whisper: n_vocab >= 51865 <=> multilingual
EOT, SOT, NO_TIMESTAMPS = "<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"
TRANSLATE, TRANSCRIBE, PREV = "<|translate|>", "<|transcribe|>", "<|startofprev|>"
HF_WEIGHTS_FILE = "model.safetensors"
# Whisper's English spelling map (MIT), which WhisperTokenizer.normalize() reads as normalizer.json.
SPELLING_MAP = Path(__file__).resolve().parents[2] / "data" / "english_spelling.json"


def _to_float32(name: str, value: np.ndarray) -> np.ndarray:
    if value.dtype.type not in (np.float32, np.float16):
        raise SpeechftError(f"CT2 variable {name} has dtype {value.dtype}, expected a float. Fix: re-convert the model")
    return value.astype(np.float32)


def _check_importable(model: Ct2Model, path: Path) -> None:
    if model.spec != WHISPER_SPEC_NAME:
        raise SpeechftError(
            f"{path} holds a CTranslate2 '{model.spec}' model, not Whisper ('{WHISPER_SPEC_NAME}'). "
            "Fix: give the folder of a Whisper model converted with ct2-transformers-converter or faster-whisper"
        )
    for name, value in model.variables.items():
        quant = QUANTIZED_DTYPES.get(value.dtype.type) if value.ndim > 0 else None
        if quant or name.endswith("_scale"):
            raise SpeechftError(
                f"{path} is quantized ({quant or 'scaled'} weights, e.g. {name}); the original weights "
                "cannot be recovered exactly. Fix: use a float16 or float32 CT2 model "
                "(ct2-transformers-converter --quantization float16) or the original HF checkpoint"
            )


def _layer_count(model: Ct2Model, stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    indices = {int(m.group(1)) for name in model.variables if (m := pattern.match(name))}
    if indices != set(range(len(indices))) or not indices:
        raise SpeechftError(f"CT2 model has no contiguous {stack} layers ({sorted(indices)}). Fix: re-convert the model")
    return len(indices)


def _scalar(model: Ct2Model, name: str, default: int | None = None) -> int:
    value = model.variables.get(model.aliases.get(name, name))
    if value is None:
        if default is None:
            raise SpeechftError(f"CT2 Whisper model lacks '{name}'. Fix: re-convert the model with ctranslate2>=3")
        return default
    return int(value.reshape(-1)[0])


# Inside each layer: CT2 module -> HF module(s). Several HF names = CT2 fused them by rows.
_LAYER_MODULES = {
    "self_attention/linear_0": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "self_attention/linear_1": ("self_attn.out_proj",),
    "self_attention/layer_norm": ("self_attn_layer_norm",),
    "ffn/linear_0": ("fc1",),
    "ffn/linear_1": ("fc2",),
    "ffn/layer_norm": ("final_layer_norm",),
}
_CROSS_ATTENTION_MODULES = {  # decoder layers only
    "attention/linear_0": ("encoder_attn.q_proj",),
    "attention/linear_1": ("encoder_attn.k_proj", "encoder_attn.v_proj"),
    "attention/linear_2": ("encoder_attn.out_proj",),
    "attention/layer_norm": ("encoder_attn_layer_norm",),
}
_TOP_MODULES = {
    "encoder/conv1": "model.encoder.conv1",
    "encoder/conv2": "model.encoder.conv2",
    "encoder/layer_norm": "model.encoder.layer_norm",
    "decoder/layer_norm": "model.decoder.layer_norm",
}
_TOP_TENSORS = {
    "encoder/position_encodings/encodings": "model.encoder.embed_positions.weight",
    "decoder/position_encodings/encodings": "model.decoder.embed_positions.weight",
    "decoder/embeddings/weight": "model.decoder.embed_tokens.weight",
}


class _Mapper:
    """Moves CT2 tensors to HF names as fp32 and remembers which ones it used."""

    def __init__(self, model: Ct2Model):
        self.model, self.used, self.out = model, set(), {}

    def has(self, name: str) -> bool:
        return self.model.aliases.get(name, name) in self.model.variables

    def take(self, name: str) -> np.ndarray:
        target = self.model.aliases.get(name, name)
        if target not in self.model.variables:
            raise SpeechftError(f"CT2 Whisper model lacks '{name}'. Fix: re-convert the model with ctranslate2>=3")
        self.used.add(target)
        return _to_float32(name, self.model.variables[target])

    def module(self, ct2: str, hf_names: tuple[str, ...]) -> None:
        if self.has(f"{ct2}/gamma"):  # layer norm (may be an alias of an equal one)
            (hf,) = hf_names
            self.out[f"{hf}.weight"], self.out[f"{hf}.bias"] = self.take(f"{ct2}/gamma"), self.take(f"{ct2}/beta")
            return
        weights = np.split(self.take(f"{ct2}/weight"), len(hf_names))
        biases = np.split(self.take(f"{ct2}/bias"), len(hf_names))
        for hf, weight, bias in zip(hf_names, weights, biases):
            self.out[f"{hf}.weight"] = weight
            # HF's k_proj has no bias. CT2 stores zeros there, and any key bias would only add
            # q.b to all scores of a query, which softmax ignores: dropping it is exact.
            if not hf.endswith("k_proj"):
                self.out[f"{hf}.bias"] = bias


def _hf_state_dict(model: Ct2Model) -> tuple[dict[str, np.ndarray], dict]:
    """Map CT2 variables to HF names (fp32) and infer the architecture from their shapes."""
    mapper = _Mapper(model)
    n_enc, n_dec = _layer_count(model, "encoder"), _layer_count(model, "decoder")
    for ct2, hf in _TOP_TENSORS.items():
        mapper.out[hf] = mapper.take(ct2)
    for ct2, hf in _TOP_MODULES.items():
        mapper.module(ct2, (hf,))
    for stack, n_layers, modules in (
        ("encoder", n_enc, _LAYER_MODULES),
        ("decoder", n_dec, {**_LAYER_MODULES, **_CROSS_ATTENTION_MODULES}),
    ):
        for i in range(n_layers):
            for ct2, hf_names in modules.items():
                mapper.module(f"{stack}/layer_{i}/{ct2}", tuple(f"model.{stack}.layers.{i}.{h}" for h in hf_names))
    sd = mapper.out

    # HF Whisper ties proj_out to the token embeddings; CT2 normally stores an alias.
    projection = mapper.take("decoder/projection/weight")
    proj_bias = mapper.take("decoder/projection/bias") if mapper.has("decoder/projection/bias") else None
    if not np.array_equal(projection, sd["model.decoder.embed_tokens.weight"]) or (
        proj_bias is not None and np.any(proj_bias)
    ):
        raise SpeechftError(
            "CT2 Whisper model has an output projection that differs from its embeddings; HF Whisper "
            "ties them. Fix: import a model converted from a standard Whisper checkpoint"
        )
    leftover = sorted(n for n, v in model.variables.items() if v.ndim > 0 and n not in mapper.used)
    if leftover:
        raise SpeechftError(
            f"CT2 Whisper model has variables this importer does not know: {leftover[:5]}. "
            "Fix: re-convert the model with a ctranslate2 version whose WhisperSpec revision is 3"
        )
    if _scalar(model, "decoder/activation", CT2_GELU) != CT2_GELU:
        raise SpeechftError("CT2 Whisper decoder does not use GELU: not a standard Whisper model")

    embed = sd["model.decoder.embed_tokens.weight"]
    dims = dict(
        vocab_size=embed.shape[0],
        d_model=embed.shape[1],
        num_mel_bins=sd["model.encoder.conv1.weight"].shape[1],
        encoder_layers=n_enc,
        decoder_layers=n_dec,
        encoder_attention_heads=_scalar(model, "encoder/num_heads"),
        decoder_attention_heads=_scalar(model, "decoder/num_heads"),
        encoder_ffn_dim=sd["model.encoder.layers.0.fc1.weight"].shape[0],
        decoder_ffn_dim=sd["model.decoder.layers.0.fc1.weight"].shape[0],
        max_source_positions=sd["model.encoder.embed_positions.weight"].shape[0],
        max_target_positions=sd["model.decoder.embed_positions.weight"].shape[0],
        scale_embedding=bool(_scalar(model, "decoder/scale_embeddings", 0)),
    )
    return sd, dims


def _build_tokenizer(src: Path, vocab_size: int, max_target_positions: int):
    """CT2's tokenizer.json plus declared special tokens and the timestamp tokens CT2 lists in
    its vocabulary, checked id by id against that vocabulary."""
    from transformers import AddedToken, WhisperTokenizer

    tok = WhisperTokenizer(
        tokenizer_file=str(src / "tokenizer.json"),
        normalizer_file=str(SPELLING_MAP),
        pad_token=EOT,
        model_max_length=max_target_positions,
    )
    specials = [t.content for t in tok.added_tokens_decoder.values() if t.special and t.content != EOT]
    tok.add_special_tokens({"extra_special_tokens": specials})
    n_timestamps = vocab_size - len(tok)
    if n_timestamps not in (0, N_TIMESTAMP_TOKENS):
        raise SpeechftError(
            f"{src / 'tokenizer.json'} has {len(tok)} tokens but model.bin has {vocab_size} embeddings. "
            "Fix: use the tokenizer.json that was converted with this model.bin"
        )
    tok.add_tokens(
        [AddedToken(f"<|{i * TIME_PRECISION:.2f}|>", normalized=False, special=False) for i in range(n_timestamps)]
    )
    vocabulary = _ct2_vocabulary(src)
    if vocabulary is not None:
        tokens = tok.convert_ids_to_tokens(list(range(len(vocabulary))))
        bad = [(i, a, b) for i, (a, b) in enumerate(zip(vocabulary, tokens)) if a != b]
        if bad or len(vocabulary) != vocab_size:
            raise SpeechftError(
                f"tokenizer ids do not match the CT2 vocabulary of {src} (first differences, id/vocabulary/"
                f"tokenizer: {bad[:3]}, sizes {len(vocabulary)}/{vocab_size}). Fix: use matching files"
            )
    return tok


def _ct2_vocabulary(src: Path) -> list[str] | None:
    if (src / "vocabulary.json").is_file():
        return json.loads((src / "vocabulary.json").read_text(encoding="utf-8"))
    if (src / "vocabulary.txt").is_file():
        # One token a line; split on "\n" only, since tokens may contain other line breaks.
        return (src / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    return None


def _generation_config(tok, ct2_config: dict, dims: dict):
    from transformers import GenerationConfig

    ids = {t: tok.convert_tokens_to_ids(t) for t in (EOT, SOT, NO_TIMESTAMPS, TRANSLATE, TRANSCRIBE, PREV)}
    # Unknown tokens map to the unknown token, which is <|endoftext|> in Whisper.
    missing = [t for t, i in ids.items() if i is None or (i == ids[EOT] and t != EOT)]
    if missing:
        raise SpeechftError(f"tokenizer.json lacks Whisper special tokens {missing}. Fix: use the model's own tokenizer.json")
    multilingual = dims["vocab_size"] >= MULTILINGUAL_MIN_VOCAB
    n_heads = dims["decoder_attention_heads"]
    # Same default as ctranslate2's WhisperLoader: all heads of the second half of the layers.
    default_heads = [[l, h] for l in range(dims["decoder_layers"] // 2, dims["decoder_layers"]) for h in range(n_heads)]
    gen = dict(
        decoder_start_token_id=ids[SOT],
        bos_token_id=ids[EOT],
        eos_token_id=ids[EOT],
        pad_token_id=ids[EOT],
        no_timestamps_token_id=ids[NO_TIMESTAMPS],
        prev_sot_token_id=ids[PREV],
        max_length=dims["max_target_positions"],
        max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX,
        suppress_tokens=list(ct2_config.get("suppress_ids") or []),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin") or [220, ids[EOT]]),
        alignment_heads=[list(p) for p in (ct2_config.get("alignment_heads") or default_heads)],
        is_multilingual=multilingual,
        return_timestamps=False,
    )
    if multilingual:
        # Only multilingual models get lang_to_id: its mere presence makes transformers
        # detect the language, which would put a language token into .en transcripts.
        lang_ids = ct2_config.get("lang_ids") or list(range(ids[SOT] + 1, ids[TRANSLATE]))
        gen["lang_to_id"] = {tok.convert_ids_to_tokens(i): i for i in lang_ids}
        gen["task_to_id"] = {"transcribe": ids[TRANSCRIBE], "translate": ids[TRANSLATE]}
    return GenerationConfig(**gen), ids


def _check_source(src: Path) -> None:
    if not src.is_dir():
        raise SpeechftError(f"CT2 model folder not found: {src}. Fix: give the folder that holds model.bin")
    missing = [f for f in ("model.bin", "config.json") if not (src / f).is_file()]
    if missing:
        raise SpeechftError(
            f"{src} is not a CTranslate2 model folder: {', '.join(missing)} missing. "
            "Fix: give a folder made by ct2-transformers-converter or faster-whisper"
        )
    if not (src / "tokenizer.json").is_file():
        raise SpeechftError(f"{src} has no tokenizer.json. Fix: copy the tokenizer.json of the original Whisper model there")


def import_ct2(src_dir: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Convert a CTranslate2 Whisper folder (fp16/bf16/fp32 weights) into a HF Whisper folder.

    Args:
        src_dir: folder with model.bin, config.json, tokenizer.json (vocabulary.txt optional).
        out_dir: folder to create; written under a temp name next to it, then renamed.
        overwrite: replace `out_dir` if it exists.

    Returns:
        `out_dir` as a Path; load it with WhisperForConditionalGeneration / WhisperProcessor.

    Raises:
        SpeechftError: not a CT2 folder, truncated or quantized model.bin, not a Whisper
            spec, or `out_dir` exists and `overwrite` is False. Nothing is left behind.
    """
    src, out = Path(src_dir).expanduser(), Path(out_dir).expanduser()
    _check_source(src)
    if out.exists() and not overwrite:
        raise SpeechftError(f"output folder already exists: {out}. Fix: choose another folder or remove it")
    try:
        ct2_config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SpeechftError(f"{src / 'config.json'} is not valid JSON ({e}). Fix: restore the converter's config.json") from e
    ct2 = read_ct2_model(src / "model.bin")
    _check_importable(ct2, src / "model.bin")
    state_dict, dims = _hf_state_dict(ct2)
    del ct2
    tok = _build_tokenizer(src, dims["vocab_size"], dims["max_target_positions"])
    gen_config, ids = _generation_config(tok, ct2_config, dims)

    config = _hf_config(dims, ids, gen_config)
    tensors = _checked_tensors(config, state_dict)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        _write_folder(tmp, tensors, config, gen_config, tok)
        _apply_umask(tmp)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _apply_umask(folder: Path) -> None:
    # mkdtemp (and safetensors) create private 0700/0600 entries; give the result the
    # permissions a plain mkdir/open would have, since the model cache may be shared.
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for f in folder.iterdir():
        f.chmod(0o666 & ~umask)


def _hf_config(dims: dict, ids: dict, gen_config):
    from transformers import WhisperConfig

    config = WhisperConfig(
        **dims,
        decoder_start_token_id=ids[SOT],
        bos_token_id=ids[EOT],
        eos_token_id=ids[EOT],
        pad_token_id=ids[EOT],
        suppress_tokens=gen_config.suppress_tokens,
        begin_suppress_tokens=gen_config.begin_suppress_tokens,
        architectures=["WhisperForConditionalGeneration"],
        tie_word_embeddings=True,
    )
    config.dtype = "float32"
    return config


def _checked_tensors(config, state_dict: dict) -> dict:
    """torch tensors, after checking names and shapes against the real module tree (built on
    the "meta" device: no memory, no init)."""
    import torch
    from transformers import WhisperForConditionalGeneration

    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state_dict.items()}
    with torch.device("meta"):
        expected = WhisperForConditionalGeneration(config).state_dict()
    expected.pop("proj_out.weight", None)  # tied to model.decoder.embed_tokens.weight
    wrong = sorted(set(expected) ^ set(tensors)) + [
        k for k in expected if k in tensors and tuple(expected[k].shape) != tuple(tensors[k].shape)
    ]
    if wrong:
        raise SpeechftError(f"CT2 weights do not fit WhisperForConditionalGeneration ({wrong[:5]}). Fix: re-convert the model")
    return tensors


def _write_folder(tmp: Path, tensors: dict, config, gen_config, tok) -> None:
    from safetensors.torch import save_file
    from transformers import WhisperFeatureExtractor

    save_file(tensors, str(tmp / HF_WEIGHTS_FILE), metadata={"format": "pt"})
    config.save_pretrained(tmp)
    gen_config.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(tmp)
    # transformers reads normalizer.json from the tokenizer folder for tokenizer.normalize().
    shutil.copyfile(SPELLING_MAP, tmp / "normalizer.json")
