"""Documents -> sentences: headings, bullets, tables, abbreviations, and what a document is."""

from __future__ import annotations

import pytest

from speechft.domain.documents import read_documents, split_sentences
from speechft.errors import SpeechftError


@pytest.mark.parametrize(("text", "want"), [
    ("Give 5 mg. daily, e.g. with food. Then review.", ["Give 5 mg. daily, e.g. with food.", "Then review."]),
    ("Dr. Okafor saw her. She is well!", ["Dr. Okafor saw her.", "She is well!"]),
    ("Was the INR 3.8? Yes, hold tonight's dose.", ["Was the INR 3.8?", "Yes, hold tonight's dose."]),
    ("Seen by J. Smith at 9 a.m. The plan is unchanged.", ["Seen by J. Smith at 9 a.m.", "The plan is unchanged."]),
    ("Take b.i.d. With food.", ["Take b.i.d. With food."]),
    ("Repeat in 3 hours. 2 doses were given.", ["Repeat in 3 hours.", "2 doses were given."]),
    ("It is £349 incl. VAT. Call ext. 214 now.", ["It is £349 incl. VAT.", "Call ext. 214 now."]),
])
def test_abbreviations_and_decimals_do_not_end_sentences(text, want):
    assert split_sentences(text) == want


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_markdown_structure_becomes_sentences(tmp_path):
    doc = _write(tmp_path / "a.md", """\
# Ward round

Seventy two year old man with atrial fibrillation.
The rate settled overnight.

PLAN:
- Start apixaban five milligrams twice a day.
- Check renal function
  before the second dose.
1. Stop warfarin today please.
2) Review in clinic next week.

| Drug | Dose |
|------|------|
| Metoprolol | 12.5 mg BID |

Drug\tDose
Heparin\t5000 U SC
""")
    sents, unit, stats = read_documents([doc])
    assert [s.text for s in sents] == [
        "Seventy two year old man with atrial fibrillation.", "The rate settled overnight.",
        "Start apixaban five milligrams twice a day.", "Check renal function before the second dose.",
        "Stop warfarin today please.", "Review in clinic next week.",
        "Metoprolol, 12.5 mg BID.", "Heparin, 5000 U SC.",
    ]
    assert stats["headings skipped"] == 2  # "# Ward round" and "PLAN:"
    assert stats["table header rows skipped"] == 2 and stats["table rows read as sentences"] == 2
    assert sents[0].line == 3 and sents[3].line == 8
    assert unit == "block"  # one file without repeated headings: blank-line blocks are its documents


def test_tables_can_be_skipped_with_a_count(tmp_path):
    doc = _write(tmp_path / "a.txt", "One long enough sentence here.\n\n| a | b |\n|---|---|\n| x y | z w |\n| p | q |\n\n"
                                     "Another sentence to read.\n\nA third block of text.\n")
    sents, _, stats = read_documents([doc], tables="skip")
    assert [s.text for s in sents] == ["One long enough sentence here.", "Another sentence to read.", "A third block of text."]
    assert stats["table rows skipped (--tables skip)"] == 2


def test_the_document_unit_is_the_coarsest_that_gives_three_documents(tmp_path):
    files = [_write(tmp_path / f"{i}.txt", f"Sentence {i} of its own file.\n\nAnd another paragraph here.\n") for i in range(3)]
    assert read_documents(files)[1] == "file"
    assert len({s.document for s in read_documents(files)[0]}) == 3
    one = _write(tmp_path / "one.md", "# A\nFirst document text.\n\nMore of it.\n# B\nSecond document text.\n# C\nThird one.\n")
    sents, unit, _ = read_documents([one])
    assert unit == "heading" and len({s.document for s in sents}) == 3
    assert len({s.document for s in sents if s.text in ("First document text.", "More of it.")}) == 1
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        _write(folder / f"d{i}.md", f"Text of document {i}.\n")
    _write(folder / ".hidden.md", "Not read at all.\n")
    sents, unit, _ = read_documents([folder])
    assert unit == "file" and [s.text for s in sents] == [f"Text of document {i}." for i in range(3)]


def test_setext_headings_and_rules_separate_blocks(tmp_path):
    doc = _write(tmp_path / "a.md", "Title\n=====\nFirst text.\n\n---\nSecond text.\n\nSub\n---\nThird text.\n")
    sents, _, stats = read_documents([doc])
    assert [s.text for s in sents] == ["First text.", "Second text.", "Third text."]
    assert stats["headings skipped"] == 2


@pytest.mark.parametrize(("content", "message"), [
    (None, "text not found"),
    ("# Only a heading\n\n## And another\n", "no sentence found"),
    ("", "no sentence found"),
])
def test_missing_or_empty_text_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "doc.md"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SpeechftError, match=message):
        read_documents([path])


def test_non_utf8_text_names_the_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9 \x81\x8d au lait is served.")  # bytes no text encoding speechft tries gives
    with pytest.raises(SpeechftError, match="latin1.txt is not UTF-8"):
        read_documents([path])
