"""Document files -> lines of plain text or Markdown, which documents.py reads.

Users keep their domain's text in Word, PDF, web pages and subtitle files as often as in plain
text. Each reader turns one format into the Markdown that documents.py already understands:
headings as "# ...", list items as "- ...", table rows as "| a | b |", a blank line between
paragraphs. So the sentence rules, the document split and the written-to-spoken pass are the
same whatever the format.

- .txt .md .markdown .text: UTF-8 (or UTF-16 with a byte-order mark; Windows-1252 as a last
  resort, counted in the summary)
- .docx: python-docx; heading styles, list paragraphs and tables in document order
- .pdf: pypdf's text layer; running headers, footers and page numbers dropped, lines reflowed
  into paragraphs, words hyphenated at a line end joined
- .html .htm: the standard library's parser; scripts, styles and navigation left out
- .srt .vtt: cue text only (numbers, timings and tags dropped), joined into running text
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

from ..errors import SpeechftError

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")
OTHER_SUFFIXES = (".docx", ".pdf", ".html", ".htm", ".srt", ".vtt")
READABLE_SUFFIXES = TEXT_SUFFIXES + OTHER_SUFFIXES
# Formats people save documents in that speechft does not read: a clear "save it as" instead of
# a decoding error.
UNREADABLE_SUFFIXES = (".doc", ".rtf", ".odt", ".pages", ".xls", ".xlsx", ".ppt", ".pptx", ".epub")
SAVE_AS = "save it as .docx, .pdf, .html or UTF-8 text"
# Typesetting characters that are no text: ligatures (PDFs set "fixed" as "\ufb01xed"), soft hyphens,
# zero-width spaces and joiners, a byte-order mark inside the text.
_TYPESETTING = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                              "\ufb05": "st", "\ufb06": "st", "\u00ad": "", "\u200b": "", "\u200c": "", "\u200d": "",
                              "\u2060": "", "\ufeff": ""})


def readable(path: Path) -> bool:
    """Whether a file found in a folder is read (Word's "~$" lock files are not)."""
    return path.suffix.lower() in READABLE_SUFFIXES and not path.name.startswith("~$")


def read_document_lines(path: Path, stats: Counter) -> list[str]:
    """The lines of one document file as plain text or Markdown.

    A file of another suffix is read as text (a user who names a file knows what it holds).
    Ligatures become letters; soft hyphens and zero-width characters go.

    Raises:
        SpeechftError: the file cannot be read (naming it and the fix).
    """
    return [line.translate(_TYPESETTING) for line in _lines(path, stats)]


def _lines(path: Path, stats: Counter) -> list[str]:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise SpeechftError(f"text not found: {path}. Fix: give a text file or a folder of them with --text")
    if suffix in UNREADABLE_SUFFIXES:
        raise SpeechftError(f"{path} is a {suffix} file, which speechft does not read. Fix: {SAVE_AS}")
    reader = {".docx": _docx_lines, ".pdf": _pdf_lines, ".html": _html_lines, ".htm": _html_lines,
              ".srt": _subtitle_lines, ".vtt": _subtitle_lines}.get(suffix)
    if reader is None:
        return _text(path, stats).splitlines()
    lines = reader(path, stats)
    if not any(line.strip() for line in lines):
        raise SpeechftError(f"{path} has no text"
                            + (" layer (a scanned PDF?). Fix: run OCR on it or give its text" if suffix == ".pdf"
                               else f". Fix: give the document's text, or leave {path.name} out"))
    stats[f"{suffix[1:].upper()} files read"] += 1
    return lines


def _text(path: Path, stats: Counter) -> str:
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark (Windows "Unicode")
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if b"\x00" not in data:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                pass
            else:
                stats["files read as Windows-1252 (not UTF-8)"] += 1
                return text
        raise SpeechftError(f"text file {path} is not UTF-8 ({e.reason}) and looks like no other text encoding. "
                            f"Fix: re-save it as UTF-8, or {SAVE_AS}") from None


# ---- Word ----------------------------------------------------------------------------------------
def _docx_lines(path: Path, stats: Counter) -> list[str]:
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except Exception as e:  # python-docx raises zipfile, KeyError and its own errors for a bad file
        raise SpeechftError(f"{path} is not a Word .docx file python-docx can open ({type(e).__name__}: {e}). "
                            f"Fix: open it in Word or LibreOffice and {SAVE_AS}") from None
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines += ["", *(_table_row(row_cells) for row_cells in _docx_rows(block)), ""]
            continue
        text = " ".join(block.text.split())
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        level = re.fullmatch(r"Heading (\d)", style)
        if level or style in ("Title", "Subtitle"):
            lines += ["#" * (int(level.group(1)) if level else 1) + " " + text, ""]
        elif style.startswith("List") or block._p.pPr is not None and block._p.pPr.numPr is not None:
            lines.append("- " + text)
        else:
            lines += [text, ""]
    return lines


def _docx_rows(table) -> list[list[str]]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:  # a merged cell comes back once per grid column it spans
            if previous is not None and cell._tc is previous:
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        rows.append(cells)
    return rows


def _table_row(cells: list[str]) -> str:
    """A Markdown table row; a row with one filled cell is a line of text (documents.py reads a
    table row only with two cells or more)."""
    filled = [c for c in cells if c]
    if len(filled) < 2:
        return filled[0] if filled else ""
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


# ---- PDF -----------------------------------------------------------------------------------------
_PAGE_NUMBER = re.compile(r"(?i)(?:page\s+)?[-\u2013]?\s*\d{1,4}\s*[-\u2013]?(?:\s*(?:/|of)\s*\d{1,4})?")
# A list item's marker: a bullet glyph, "1." / "(2)", "a)". documents.py reads list items by it too.
BULLET_MARKER = r"(?:[-*+\u2022\u2023\u25e6\u25aa\u2013]|\(?\d{1,3}[.)]|\(?[a-z][.)])"
_BULLET_START = re.compile(rf"^{BULLET_MARKER}\s+")
_ENDS_SENTENCE = re.compile(r"[.!?:;][\"'\u201d)\]]*$")


def _pdf_lines(path: Path, stats: Counter) -> list[str]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SpeechftError(f"{path} is a password-protected PDF. Fix: save an unprotected copy, or {SAVE_AS}")
        pages = [[_soft_hyphen_at_end(" ".join(line.split())) for line in (page.extract_text() or "").splitlines()]
                 for page in reader.pages]
    except SpeechftError:
        raise
    except Exception as e:  # pypdf's own errors and whatever a damaged file makes it raise
        raise SpeechftError(f"{path} could not be read as a PDF ({type(e).__name__}: {e}). Fix: {SAVE_AS}") from None
    # Running headers and footers: a line on at least half the pages of a document of 3 or more.
    on_pages = Counter(line for lines in pages for line in set(lines) if line)
    running = {line for line, n in on_pages.items() if len(pages) >= 3 and n >= max(2, len(pages) / 2)}
    lines = [line for page in pages for line in page
             if line and line not in running and not _PAGE_NUMBER.fullmatch(line)]
    dropped = sum(1 for page in pages for line in page if line) - len(lines)
    if dropped:
        stats["PDF header, footer and page-number lines dropped"] += dropped
    return _reflow(lines)


def _soft_hyphen_at_end(line: str) -> str:
    """A soft hyphen ending a line is where the typesetter cut a word: a hyphen for _join."""
    return line[:-1] + "-" if line.endswith("\u00ad") else line


def _reflow(lines: list[str]) -> list[str]:
    """A PDF's visual lines -> one line per paragraph, list item or heading, blank lines between.

    A paragraph ends at a line that ends a sentence and stops short of the usual line length; a
    short line that ends no sentence, between paragraphs, stands alone (a heading or a label).
    """
    if not lines:
        return []
    full = sorted(len(line) for line in lines)[int(0.8 * (len(lines) - 1))]  # the usual full line
    short = lambda line: len(line) < 0.8 * full  # noqa: E731
    text = " ".join(lines)
    out: list[str] = []
    current = ""

    def end_paragraph() -> None:
        nonlocal current
        if current:
            out.extend([current, ""])
        current = ""

    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _BULLET_START.match(line):
            end_paragraph()
        elif short(line) and not _ENDS_SENTENCE.search(line) and (not nxt or nxt[:1].isupper() or _BULLET_START.match(nxt)) \
                and (not current or _ENDS_SENTENCE.search(current)):
            end_paragraph()
            out.extend([line, ""])  # a heading or a label on a line of its own
            continue
        current = _join(current, line, text)
        if _ENDS_SENTENCE.search(line) and short(line):
            end_paragraph()
    if current:
        out.append(current)
    return out


def _join(current: str, line: str, text: str) -> str:
    if not current:
        return line
    hyphen = re.search(r"([A-Za-z]+)-$", current)
    if hyphen and line[:1].islower():  # a word cut at the line end
        head, tail = hyphen.group(1), re.match(r"[A-Za-z]*", line).group(0)
        if f"{head}-{tail}" not in text.replace(f"{head}- {tail}", ""):  # no compound written whole elsewhere
            return current[:-1] + line
        return current + line
    return current + " " + line


# ---- HTML ----------------------------------------------------------------------------------------
class _HtmlText(HTMLParser):
    """Visible text of a web page as Markdown-like lines."""

    # Not the page's text: code, menus, forms, and the footer's boilerplate.
    SKIP = {"script", "style", "noscript", "template", "nav", "head", "svg", "button", "select", "textarea", "form",
            "footer"}
    BLOCKS = {"p", "div", "section", "article", "main", "aside", "blockquote", "pre", "ul", "ol", "dl", "dt", "dd",
              "table", "figure", "figcaption", "header", "address", "hr", "body", "tr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.words: list[str] = []
        self.prefix = ""
        self.skipping = 0
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def flush(self) -> None:
        text = " ".join(" ".join(self.words).split())
        if text:
            self.lines += [self.prefix + text, ""]
        self.words, self.prefix = [], ""

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif self.skipping:
            return
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
        elif tag == "tr":
            self.flush()
            self.row = []
        elif re.fullmatch(r"h[1-6]", tag):
            self.flush()
            self.prefix = "#" * int(tag[1]) + " "
        elif tag == "li":
            self.flush()
            self.prefix = "- "
        elif tag == "br":
            (self.cell if self.cell is not None else self.words).append(" ")
            if self.cell is None:
                self.flush()
        elif tag in self.BLOCKS:
            self.flush()

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif self.skipping:
            return
        elif tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append(" ".join(" ".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if any(self.row):
                self.lines.append(_table_row(self.row))
            self.row = None
        elif tag == "table":
            self.lines.append("")
        elif re.fullmatch(r"h[1-6]", tag) or tag == "li" or tag in self.BLOCKS:
            self.flush()

    def handle_data(self, data):
        if not self.skipping:
            (self.cell if self.cell is not None else self.words).append(data)


def _html_lines(path: Path, stats: Counter) -> list[str]:
    parser = _HtmlText()
    parser.feed(_text(path, stats))
    parser.close()
    parser.flush()
    return parser.lines


# ---- subtitles -----------------------------------------------------------------------------------
_CUE_TIMING = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?[.,]\d{3}\s*-->")


def _subtitle_lines(path: Path, stats: Counter) -> list[str]:
    """Cue text of an .srt or .vtt file as running text (sentences run across cues)."""
    words: list[str] = []
    block: list[str] = []
    for line in [*_text(path, stats).splitlines(), ""]:
        if line.strip():
            block.append(line.strip())
            continue
        timing = next((i for i, b in enumerate(block) if _CUE_TIMING.match(b)), None)
        if timing is not None:  # a cue: what follows its timing line is its text; WEBVTT, NOTE, STYLE blocks have none
            for text in block[timing + 1 :]:
                text = re.sub(r"<[^>]+>|\{\\[^}]*\}", "", text)  # <v Speaker>, <i>, {\an8}
                words.append(re.sub(r"^-\s*", "", text))  # "- " marks a change of speaker
        block = []
    return [" ".join(" ".join(words).split())]
