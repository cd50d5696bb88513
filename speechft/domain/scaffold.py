"""`speechft new DOMAIN`: a domain's sources and recipe from its documents and term list.

Writes data_manifests/<domain>/ (train/dev/test.txt, terms.txt, voices.yaml, abbreviations.tsv,
lexicon.txt, coverage.tsv, sentences.tsv, and real_test.jsonl with --manifest) and
recipes/<domain>/ (recipe.yaml, run.sh, README.md). Everything is checked before anything
is written; both folders are built under temporary names and renamed into place, so a
failure leaves no half-written domain, and --force replaces a domain whole (keeping its
hand-edited abbreviations.tsv and lexicon.txt).
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpeechftError
from ..io_utils import atomic_write_text, read_lines, replace_dir
from ..lexicon import LEXICON_FILE, lexicon_file_text
from ..text import normalize
from . import files
from .acronyms import spelled_acronyms
from .abbreviations import ABBREVIATIONS_FILE, abbreviation_table, read_abbreviations, table_file_text
from .coverage import MIN_TRAIN_OCCURRENCES, TermCoverage, add_carriers, count_terms, coverage_report, coverage_tsv
from .documents import read_documents
from .spoken import to_spoken, unspoken
from .split import MAX_SENTENCES, SPLITS, SpokenSentence, cap, clean, split_by_document
from .templates import TEMPLATE_COMMENT

RESERVED = {"general": "`speechft prepare general` builds the Asterisk real-speech set"}
NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
REAL_TEST = "real_test.jsonl"
ABBREVIATION_SHAPE = re.compile(r"\b(?:[A-Z]{2,5}s?|(?:[A-Za-z]\.){2,})(?!\w)")


@dataclass
class NewDomain:
    """What `new_domain` wrote, and the counts behind it."""

    domain: str
    data_dir: Path
    recipe_dir: Path
    sentences: dict[str, int]
    templates: int
    documents: dict[str, int]
    unit: str
    read_stats: Counter
    dropped: Counter
    coverage: list[TermCoverage]
    real_utterances: int = 0
    unexpanded: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The report `speechft new` prints."""
        docs = ", ".join(f"{s} {self.documents[s]}" for s in SPLITS)
        sents = ", ".join(f"{s} {self.sentences[s]}" for s in SPLITS)
        lines = [f"documents ({self.unit}s): {docs}", f"sentences: {sents} (train includes {self.templates} carrier sentences)"]
        for what, n in [*self.read_stats.items(), *self.dropped.items()]:
            lines.append(f"  {what}: {n}")
        if self.real_utterances:
            lines.append(f"real-speech test set: {self.real_utterances} utterances -> {self.data_dir / REAL_TEST}")
        if self.unexpanded:
            lines.append(f"left as written (no entry in {ABBREVIATIONS_FILE}; voices spell them or read them as words): "
                         + ", ".join(self.unexpanded[:15]) + f". Fix: add entries to {self.data_dir / ABBREVIATIONS_FILE} "
                         "and run again with --force")
        splits = [*SPLITS, *(["real"] if self.real_utterances else [])]
        lines += ["", coverage_report(self.coverage, splits), f"coverage -> {self.data_dir / 'coverage.tsv'}", "",
                  f"wrote {self.data_dir}/ and {self.recipe_dir}/. Next:",
                  f"  speechft lexicon check {self.domain}",
                  f"  speechft run {self.recipe_dir / 'recipe.yaml'}"]
        return "\n".join(lines)


def _check_name(domain: str, targets: list[Path], force: bool) -> None:
    if not NAME.fullmatch(domain):
        raise SpeechftError(f"domain name {domain!r} is not a short lower-case word. Fix: letters, digits and _ "
                            "only, starting with a letter, e.g. cardiology or air_traffic")
    if domain in RESERVED:
        raise SpeechftError(f"domain name {domain!r} is taken: {RESERVED[domain]}. Fix: choose another name")
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise SpeechftError(f"domain {domain!r} exists: {' and '.join(existing)}. Fix: choose another name, or pass "
                            f"--force to replace it (its {ABBREVIATIONS_FILE} and {LEXICON_FILE} are kept)")


def read_term_list(path: str | Path) -> list[str]:
    """Terms of a terms file, one a line, as written (`#` comments, blanks and repeats skipped).
    Unlike `speechft.text.read_terms`, terms with no word in them are kept, so that coverage
    can name them instead of dropping them silently.

    Raises:
        SpeechftError: the file is missing, not UTF-8, or has no term.
    """
    terms, seen = [], set()
    for line in read_lines(path, "terms file", "one term a line, UTF-8"):
        term = " ".join(line.split("#", 1)[0].split()) if not line.lstrip().startswith("#") else ""
        key = normalize(term) or term
        if term and key not in seen:
            seen.add(key)
            terms.append(term)
    if not terms:
        raise SpeechftError(f"terms file {path} has no term. Fix: one domain term a line (a word or a phrase)")
    return terms


def _real_test(manifest: str | Path) -> list:
    from ..manifest import read_manifest

    utts = read_manifest(manifest)
    missing = [u.audio_filepath for u in utts if not Path(u.audio_filepath).is_file()]
    if not utts or missing:
        detail = f"{len(missing)} audio file(s) missing, e.g. {missing[0]}" if missing else "no utterance"
        raise SpeechftError(f"real-speech manifest {manifest}: {detail}. Fix: check it with `speechft validate {manifest}`")
    return utts


def _unexpanded(written: list[str], terms: list[str], table) -> list[str]:
    """Abbreviation-like words the table does not expand (not terms), most frequent first."""
    known = {t.lower() for t in terms} | {k.lower() for k in (*table.words, *table.units)}
    counts = Counter(m.group(0) for s in written for m in ABBREVIATION_SHAPE.finditer(s) if m.group(0).lower() not in known)
    return [w for w, _ in counts.most_common()]


def _speak(text: str, table, dropped: Counter) -> str:
    spoken = to_spoken(text, table)
    if unspoken(spoken, table):  # the passes should leave none; a sentence that keeps one is not read aloud
        dropped["digits or abbreviations left after spoken normalisation"] += 1
        return ""
    return spoken


def _write(tmp: Path, contents: dict[str, str], executable: tuple[str, ...] = ()) -> None:
    for name, text in contents.items():
        atomic_write_text(tmp / name, text)
    for name in executable:
        (tmp / name).chmod(0o755)


def _sentences_tsv(splits: dict[str, list[SpokenSentence]]) -> str:
    rows = ["split\tdocument\tsource\tline\twritten\tspoken"]
    rows += [f"{split}\t{s.document}\t{s.source}\t{s.line}\t{s.written}\t{s.text}" for split in SPLITS for s in splits[split]]
    return "\n".join(rows) + "\n"


def _dev_voices() -> list[str]:
    from ..synth import Voice, usable_voices

    try:
        usable_voices([Voice.parse(files.DEV_VOICE_OPTIONAL)])
    except SpeechftError:
        return list(files.DEV_VOICES)
    return [*files.DEV_VOICES, files.DEV_VOICE_OPTIONAL]


def new_domain(domain: str, terms_file: str | Path, texts: list[str | Path], manifest: str | Path | None = None,
               force: bool = False, sources: str | Path = "data_manifests", recipes: str | Path = "recipes",
               seed: int = 0, tables: str = "rows", min_train: int = MIN_TRAIN_OCCURRENCES,
               abbreviations: str | Path | None = None, max_sentences: dict[str, int] | None = None) -> NewDomain:
    """Build a domain's sources and recipe from documents and terms (see the module docstring).

    Args:
        domain: the new domain's name (a folder under `sources` and under `recipes`).
        terms_file: the domain's terms, one a line.
        texts: files and folders of the domain's documents.
        manifest: real speech (JSON Lines manifest), kept as an extra held-out test set.
        force: replace an existing domain of that name.
        seed: decides which documents go to test and dev.
        tables: "rows" (each table row a sentence) or "skip".
        min_train: train occurrences every term should have; carrier sentences make up the rest.
        abbreviations: an extra abbreviations.tsv (added to the built-in table and the domain's own).
        max_sentences: at most this many sentences per split (default split.MAX_SENTENCES; 0: all).
    Returns:
        what was written (`summary()` is the report).
    Raises:
        SpeechftError: a bad name or an existing domain without --force, no term, no text or no
        sentence, fewer than three documents, a term no sentence can hold, or a bad manifest.
        Nothing is written then.
    """
    data_dir, recipe_dir = Path(sources) / domain, Path(recipes) / domain
    _check_name(domain, [data_dir, recipe_dir], force)
    terms = read_term_list(terms_file)
    limits = {**MAX_SENTENCES, **(max_sentences or {})}
    if any(n < 0 for n in limits.values()):
        raise SpeechftError(f"sentence limits {limits} must be 0 (no limit) or more. Fix: --max-train/--max-dev/--max-test N")
    if abbreviations is not None and not Path(abbreviations).is_file():
        raise SpeechftError(f"abbreviation table not found: {abbreviations}. Fix: check the path of --abbreviations")
    # The domain's own table (kept over --force) and --abbreviations extend the built-in one.
    own_tables = [p for p in (data_dir / ABBREVIATIONS_FILE, abbreviations) if p is not None and Path(p).is_file()]
    user_entries = {k: v for p in own_tables for k, v in read_abbreviations(p).items()}
    table = abbreviation_table(*own_tables).without(set(terms))
    real = _real_test(manifest) if manifest else []

    written, unit, read_stats = read_documents(list(texts), tables)
    dropped: Counter = Counter()
    spoken = [SpokenSentence(_speak(w.text, table, dropped), w.text, w.source, w.line, w.document) for w in written]
    kept, more = clean(spoken, held_out={normalize(u.text) for u in real})
    dropped.update(more)
    if not kept:
        reasons = ", ".join(f"{k}: {v}" for k, v in dropped.items())
        raise SpeechftError(f"no usable sentence in {', '.join(map(str, texts))} ({reasons}). Fix: give documents "
                            "with running text, sentences of at least a few words")
    splits, left_out = cap(split_by_document(kept, seed, terms=terms), limits, seed, terms)
    dropped.update(left_out)
    texts_by_split = {s: [x.text for x in splits[s]] for s in SPLITS} | ({"real": [u.text for u in real]} if real else {})
    coverage = count_terms(terms, texts_by_split)
    carriers, problems = add_carriers(coverage, lambda s: _speak(s, table, Counter()), min_train, seed)
    if problems:
        raise SpeechftError("\n".join(problems))

    lines = {s: [x.text for x in splits[s]] for s in SPLITS}
    counts = {s: len(lines[s]) + (len(carriers) if s == "train" else 0) for s in SPLITS}
    lexicon = data_dir / LEXICON_FILE
    data = {
        "train.txt": "\n".join(lines["train"] + ([TEMPLATE_COMMENT.format(n=min_train), *carriers] if carriers else [])) + "\n",
        "dev.txt": "\n".join(lines["dev"]) + "\n",
        "test.txt": "\n".join(lines["test"]) + "\n",
        "terms.txt": "\n".join(terms) + "\n",
        "voices.yaml": files.voices_yaml(domain, _dev_voices()),
        ABBREVIATIONS_FILE: table_file_text(user_entries),
        # a kept lexicon.txt stays as the user left it; a new one spells the documents' acronyms
        LEXICON_FILE: (lexicon.read_text(encoding="utf-8") if lexicon.is_file()
                       else lexicon_file_text(spelled=spelled_acronyms([*lines["train"], *carriers, *lines["dev"],
                                                                        *lines["test"]]))),
        "coverage.tsv": coverage_tsv(coverage, list(texts_by_split)),
        "sentences.tsv": _sentences_tsv(splits),
    }
    real_path = f"{Path(sources).as_posix()}/{domain}/{REAL_TEST}" if real else None
    recipe = _recipe_files(domain, Path(recipes), counts, len(carriers), len({s.document for s in kept}), len(terms),
                           (real_path, len(real)) if real else None)
    _install(data_dir, data, recipe_dir, recipe, real)
    return NewDomain(domain, data_dir, recipe_dir, counts, len(carriers),
                     {s: len({x.document for x in splits[s]}) for s in SPLITS}, unit, read_stats, dropped,
                     coverage, len(real), _unexpanded([w.text for w in written], terms, table))


def _recipe_files(domain: str, recipes: Path, counts: dict[str, int], n_carriers: int, n_documents: int, n_terms: int,
                  real: tuple[str, int] | None) -> dict[str, str]:
    """recipe.yaml, run.sh and README.md; the recipe is checked as `speechft run` would load it."""
    import yaml

    from ..config import RecipeConfig, build_dataclass

    recipe_text = files.recipe_yaml(domain, recipes)
    cfg = build_dataclass(RecipeConfig, yaml.safe_load(recipe_text), "")
    return {
        "recipe.yaml": recipe_text,
        "run.sh": files.run_sh(domain, cfg.model.name, cfg.eval.num_beams, real[0] if real else None),
        "README.md": files.readme(domain, counts, n_carriers, n_documents, n_terms, real),
    }


def _install(data_dir: Path, data: dict[str, str], recipe_dir: Path, recipe: dict[str, str], real: list) -> None:
    """Write both folders under temporary names, then rename them into place."""
    from ..manifest import write_manifest

    tmps = [folder.with_name(f".{folder.name}.new{os.getpid()}") for folder in (data_dir, recipe_dir)]
    try:
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)
        _write(tmps[0], data)
        if real:
            write_manifest(tmps[0] / REAL_TEST, real)  # absolute audio paths: the copy works from anywhere
        _write(tmps[1], recipe, executable=("run.sh",))
        replace_dir(tmps[0], data_dir)
        replace_dir(tmps[1], recipe_dir)
    finally:
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)
