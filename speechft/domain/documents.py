"""Document files and folders -> documents of written sentences.

Reads plain text and Markdown (Word, PDF, HTML and subtitle files first become Markdown:
formats.py): headings are skipped (they are labels, not speech), bullets and
numbered items are sentences of their own, table rows become one sentence each (cells joined
with commas) or are skipped, and paragraphs are cut into sentences at . ! ? except after
abbreviations such as "e.g.", "Dr." or "mg." and initials.

What counts as a document decides the split (split.py): every file when there are at least
MIN_DOCUMENTS files; else the sections under each file's top repeated heading level ("# A",
"# B", ...); else the blank-line-separated blocks.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpeechftError
from ..io_utils import visible_files
from .formats import BULLET_MARKER, READABLE_SUFFIXES, SAVE_AS, read_document_lines, readable

MIN_DOCUMENTS = 3  # train, dev and test each need a document of their own
TABLE_MODES = ("rows", "skip")
# Words before a "." that do not end a sentence (lower case, without their final dot).
NON_FINAL = {
    "e.g", "i.e", "cf", "viz", "vs", "approx", "ca", "al", "dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "no",
    "fig", "mg", "mcg", "kg", "ml", "tab", "tabs", "cap", "caps", "inj", "dept", "min", "max",
    # dotted abbreviations of the built-in table that run on ("incl. VAT", "ext. 214")
    "incl", "excl", "ext", "tel", "ref", "pp", "vol", "sect", "nos", "ea", "avg", "appt",
}
CAN_END = {"a.m", "p.m", "etc"}  # dotted abbreviations that often do end a sentence
PLAIN_HEADING_WORDS = 8  # an all-caps line or a "Label:" line of at most this many words is a heading

_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_BULLET = re.compile(rf"^\s*{BULLET_MARKER}\s+(.*)$")
_SEPARATOR_CELL = re.compile(r"^:?-{2,}:?$")
_BOUNDARY = re.compile(r"([.!?]+)([\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class WrittenSentence:
    """A sentence as the document writes it, and where it is (file and first line)."""

    text: str
    source: str
    line: int
    document: str = ""  # the document it belongs to (set by `read_documents`)


@dataclass
class _Passage:
    text: str
    line: int
    block: int
    table_row: bool = False


@dataclass
class _FileParse:
    path: Path
    passages: list[_Passage] = field(default_factory=list)
    headings: list[tuple[int, int]] = field(default_factory=list)  # (line, level)


def split_sentences(text: str) -> list[str]:
    """Cut a paragraph into sentences at . ! ? followed by a capital or a digit.

    A "." after an abbreviation of NON_FINAL ("e.g.", "Dr.", "mg."), a single-letter initial
    or a dotted abbreviation ("b.i.d.") does not end the sentence.
    """
    out, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if m.group(1) == ".":
            word = text[start:m.start()].split()[-1:] or [""]
            token = word[0].lower().lstrip("([\"'")
            dotted = re.fullmatch(r"(?:[a-z]\.)+[a-z]", token) is not None
            if token not in CAN_END and (token in NON_FINAL or re.fullmatch(r"[a-z]", token) or dotted):
                continue
        out.append(text[start:m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def _cells(line: str) -> list[str] | None:
    """The cells of a table row (pipe- or tab-separated), None for a line that is no row."""
    stripped = line.strip()
    if "\t" in stripped:
        cells = [c.strip() for c in stripped.split("\t")]
    elif stripped.startswith("|") or stripped.count("|") >= 2:
        cells = [c.strip() for c in stripped.strip("|").split("|")]
    else:
        return None
    return cells if sum(1 for c in cells if c) >= 2 else None


def _is_plain_heading(text: str) -> bool:
    words = text.split()
    if not words or len(words) > PLAIN_HEADING_WORDS or text[-1] in ".!?":
        return False
    letters = [c for c in text if c.isalpha()]
    return text.endswith(":") or (len(letters) > 1 and all(c.isupper() for c in letters))


def _table_rows(rows: list[tuple[int, list[str]]], parse: _FileParse, block: int, mode: str, stats: Counter) -> None:
    """A table's rows -> passages; its header row (before a |---| row, or a first row of short
    labels without digits) is skipped."""
    if not rows:
        return
    has_separator = any(all(_SEPARATOR_CELL.match(c) for c in cells if c) for _, cells in rows)
    body = [(n, cells) for n, cells in rows if not all(_SEPARATOR_CELL.match(c) for c in cells if c)]
    first = body[0][1] if body else []
    label_row = all(len(c.split()) <= 3 and not re.search(r"\d", c) for c in first)
    if body and len(body) > 1 and (has_separator or label_row):
        stats["table header rows skipped"] += 1
        body = body[1:]
    if mode == "skip":
        stats["table rows skipped (--tables skip)"] += len(body)
        return
    for n, cells in body:
        stats["table rows read as sentences"] += 1
        parse.passages.append(_Passage(", ".join(c for c in cells if c) + ".", n, block, table_row=True))


def _parse_file(path: Path, tables: str, stats: Counter) -> _FileParse:
    lines = read_document_lines(path, stats)
    parse = _FileParse(path)
    para: list[str] = []
    para_line, block, in_bullet = 0, 0, False
    table: list[tuple[int, list[str]]] = []

    def flush() -> None:
        nonlocal para, in_bullet
        text = " ".join(para).strip()
        if text and not in_bullet and len(para) == 1 and _is_plain_heading(text):
            stats["headings skipped"] += 1
        elif text:
            parse.passages.append(_Passage(text, para_line, block))
        para, in_bullet = [], False

    def end_table() -> None:
        nonlocal table
        _table_rows(table, parse, block, tables, stats)
        table = []

    for n, line in enumerate(lines, 1):
        cells = _cells(line)
        if table and cells is None:
            end_table()
        if not line.strip():
            flush()
            block += 1
            continue
        atx = _ATX.match(line)
        setext = not atx and len(para) == 1 and not in_bullet and _SETEXT.match(line)
        if atx or setext:
            if setext:
                para = []  # the line before was the heading's text
            flush()
            block += 1
            parse.headings.append((n, len(atx.group(1))) if atx else (n - 1, 1 if "=" in line else 2))
            stats["headings skipped"] += 1
            continue
        if _RULE.match(line):  # a horizontal rule separates blocks like a blank line
            flush()
            block += 1
            continue
        if cells is not None:
            flush()
            table.append((n, cells))
            continue
        bullet = _BULLET.match(line)
        if bullet or (in_bullet and not line[:1].isspace()):
            flush()
            para, para_line, in_bullet = [(bullet.group(1) if bullet else line).strip()], n, bool(bullet)
            continue
        if not para:
            para_line = n
        para.append(line.strip())
    end_table()
    flush()
    return parse


def _files(paths: list[str | Path], stats: Counter) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            inside = visible_files(p)
            found = [f for f in inside if readable(f)]
            others = [f for f in inside if not readable(f) and not f.name.startswith("~$")]
            if not found:
                raise SpeechftError(f"folder {p} has no document speechft reads ({', '.join(READABLE_SUFFIXES)}"
                                    + (f"; it has {', '.join(f.name for f in others[:3])}" if others else "")
                                    + f"). Fix: put the domain's documents there; {SAVE_AS}")
            if others:  # said in the summary, so a user sees which files gave no sentences
                names = ", ".join(f.name for f in others[:3]) + (", ..." if len(others) > 3 else "")
                stats[f"files left out, not a format speechft reads ({names}; {SAVE_AS})"] += len(others)
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise SpeechftError(f"text not found: {p}. Fix: give a document or a folder of them with --text")
    return list(dict.fromkeys(files))


def _section(headings: list[tuple[int, int]], line: int, level: int | None) -> int:
    return 0 if level is None else sum(1 for h, lv in headings if lv <= level and h < line)


def _top_repeated_level(headings: list[tuple[int, int]]) -> int | None:
    counts = Counter(level for _, level in headings)
    return min((lv for lv, c in counts.items() if c >= 2), default=None)


def read_documents(paths: list[str | Path], tables: str = "rows") -> tuple[list[WrittenSentence], str, Counter]:
    """Read text files and folders into sentences, each tagged with its document.

    Args:
        paths: files and folders (folders are read recursively: text, Markdown, .docx, .pdf, .html,
            .srt, .vtt; formats.py).
        tables: "rows" reads each table row as a sentence, "skip" leaves tables out (counted).
    Returns:
        (sentences in reading order, the document unit used: "file", "heading" or "block",
         counts of what was skipped or converted).
    Raises:
        SpeechftError: a path is missing or cannot be read, or the text has no sentence.
    """
    if tables not in TABLE_MODES:
        raise SpeechftError(f"tables={tables!r}: use one of {', '.join(TABLE_MODES)}")
    if not paths:
        raise SpeechftError("no text given. Fix: --text FILE_OR_DIR with the domain's documents (test and dev "
                            "sentences must come from real documents; carrier sentences are for train only)")
    stats: Counter = Counter()
    parses = [_parse_file(f, tables, stats) for f in _files(paths, stats)]
    levels = {p.path: _top_repeated_level(p.headings) for p in parses}
    keys = {
        "file": lambda p, s: str(p.path),
        "heading": lambda p, s: f"{p.path}#{_section(p.headings, s.line, levels[p.path])}",
        "block": lambda p, s: f"{p.path}#{s.block}",
    }
    unit = "block"
    for name in ("file", "heading", "block"):
        if len({keys[name](p, s) for p in parses for s in p.passages}) >= MIN_DOCUMENTS:
            unit = name
            break
    sentences = []
    for p in parses:
        for passage in p.passages:
            parts = [passage.text] if passage.table_row else split_sentences(passage.text)
            doc = keys[unit](p, passage)
            sentences += [WrittenSentence(t, str(p.path), passage.line, doc) for t in parts]
    if not sentences:
        raise SpeechftError(f"no sentence found in {', '.join(map(str, paths))}. Fix: give documents with running text "
                            "(headings alone and empty files give no sentence)")
    return sentences, unit, stats
