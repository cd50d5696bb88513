"""Word, PDF, HTML, subtitle and legacy-encoded files -> the sentences documents.py reads."""

from __future__ import annotations

from collections import Counter

import docx
import pytest

from speechft.domain.documents import read_documents
from speechft.domain.formats import read_document_lines
from speechft.errors import SpeechftError


def write_pdf(path, pages: list[list[str]]) -> None:
    """A minimal PDF with a text layer: each page a list of lines in Helvetica, top to bottom."""
    objects: list = ["<< /Type /Catalog /Pages 2 0 R >>", None,
                     "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    kids = []
    for lines in pages:
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 760 Td"]
        for line in lines:
            ops += ["(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj", "T*"]
        stream = "\n".join([*ops, "ET"]).encode("cp1252")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                       f"/Contents {len(objects)} 0 R >>")
        kids.append(len(objects))
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + (obj if isinstance(obj, bytes) else obj.encode()) + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))


def texts(paths) -> list[str]:
    return [s.text for s in read_documents(paths)[0]]


def test_word_headings_lists_and_tables_in_document_order(tmp_path):
    document = docx.Document()
    document.add_heading("Greenway Dental Formulary", 0)
    document.add_heading("Local anaesthesia", 1)
    document.add_paragraph("Check the medical history before giving LA. Record the batch no. every time.")
    document.add_paragraph("Lidocaine 2% with adrenaline for most blocks", style="List Bullet")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([["Drug", "Dose", "Course"], ["Amoxicillin", "500 mg TDS", "5 days"],
                             ["Metronidazole", "400 mg TDS", "3 days"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(2, 1).merge(table.cell(2, 2)).text = "400 mg TDS for 3 days"  # a merged cell is read once
    document.add_paragraph("Review the patient at three days.")
    document.save(tmp_path / "formulary.docx")

    assert texts([tmp_path / "formulary.docx"]) == [
        "Check the medical history before giving LA.", "Record the batch no. every time.",
        "Lidocaine 2% with adrenaline for most blocks", "Amoxicillin, 500 mg TDS, 5 days.",
        "Metronidazole, 400 mg TDS for 3 days.", "Review the patient at three days."]


def test_pdf_drops_running_headers_and_page_numbers_and_reflows_lines(tmp_path):
    header = "Greenway Dental Practice - Patient Information"
    write_pdf(tmp_path / "leaflet.pdf", [
        [header, "AFTER YOUR EXTRACTION", "Bleeding is normal for the first few hours after an extrac-",
         "tion. Bite firmly on the gauze pad for thirty minutes and keep", "your head raised.",
         "Take paracetamol 1 g QDS, max 4 g per day, or ibuprofen 400", "mg with food.",
         "\u2022 Do not rinse for 24 hours.", "\u2022 Avoid hot drinks and smoking for 48 hours after the",
         "extraction.", "Page 1 of 3"],
        [header, "A follow-up is booked at the front desk. Call us on 01632", "960 415 if swelling gets worse or "
         "you have a tempera-", "ture.", "Page 2 of 3"],
        [header, "We wish you a quick and painless recovery.", "3"],
    ])
    stats: Counter = Counter()
    lines = read_document_lines(tmp_path / "leaflet.pdf", stats)
    assert header not in lines and not any("Page" in line for line in lines)
    assert stats["PDF header, footer and page-number lines dropped"] == 6
    assert texts([tmp_path / "leaflet.pdf"]) == [
        "Bleeding is normal for the first few hours after an extraction.",
        "Bite firmly on the gauze pad for thirty minutes and keep your head raised.",
        "Take paracetamol 1 g QDS, max 4 g per day, or ibuprofen 400 mg with food.",
        "Do not rinse for 24 hours.", "Avoid hot drinks and smoking for 48 hours after the extraction.",
        "A follow-up is booked at the front desk.",
        "Call us on 01632 960 415 if swelling gets worse or you have a temperature.",
        "We wish you a quick and painless recovery."]


def test_ligatures_soft_hyphens_and_zero_width_characters_are_no_text(tmp_path):
    (tmp_path / "leaflet.html").write_text("<p>Your \ufb01xed brace needs \ufb02uoride toothpaste every day.</p>"
                                           "<p>Brush after every me&shy;al and be\u200bfore bed.</p>", encoding="utf-8")
    write_pdf(tmp_path / "leaflet.pdf", [["Bite on the gauze for thirty minutes after an extrac\u00ad",
                                          "tion and rest at home.", "Seen today."]])
    assert texts([tmp_path / "leaflet.html"]) == ["Your fixed brace needs fluoride toothpaste every day.",
                                                  "Brush after every meal and before bed."]
    assert texts([tmp_path / "leaflet.pdf"])[0] == "Bite on the gauze for thirty minutes after an extraction and rest at home."


def test_a_hyphen_written_elsewhere_in_the_compound_is_kept_at_a_line_end(tmp_path):
    write_pdf(tmp_path / "notes.pdf", [[
        "The post-op check is booked for every patient who had an extraction at the",
        "clinic this week, and the post-", "op leaflet goes home with them.", "Seen today."]])
    assert texts([tmp_path / "notes.pdf"]) == [
        "The post-op check is booked for every patient who had an extraction at the clinic this week, and the "
        "post-op leaflet goes home with them.", "Seen today."]


def test_html_reads_visible_text_not_scripts_menus_or_footers(tmp_path):
    (tmp_path / "care.html").write_text(
        "<html><head><title>Care</title><style>p {color: red}</style></head><body>"
        "<nav><a href='/'>Home</a> <a href='/about'>About us today</a></nav>"
        "<h1>Post-op care</h1><p>Rinse with warm salt water four times a day.<br>Avoid smoking for 48 hours.</p>"
        "<ul><li>Take ibuprofen 400 mg with food.</li><li>Call us if the bleeding goes on.</li></ul>"
        "<table><tr><th>Symptom</th><th>Action</th></tr><tr><td>Swelling &amp; pain</td><td>Ice pack, 20 min</td></tr>"
        "<tr><td colspan='2'>Ring us for advice at any time.</td></tr>"
        "</table><script>var notSpeech = 'x';</script><footer>Copyright 2024 Greenway Dental Ltd.</footer>"
        "</body></html>", encoding="utf-8")
    assert texts([tmp_path / "care.html"]) == [
        "Rinse with warm salt water four times a day.", "Avoid smoking for 48 hours.",
        "Take ibuprofen 400 mg with food.", "Call us if the bleeding goes on.", "Swelling & pain, Ice pack, 20 min.",
        "Ring us for advice at any time."]  # a row of one cell is text, not a table row


def test_subtitles_give_cue_text_as_running_sentences(tmp_path):
    (tmp_path / "call.srt").write_text(
        "1\n00:00:01,000 --> 00:00:03,500\n- Good morning, this is the dental\npractice calling about your\n\n"
        "2\n00:00:03,600 --> 00:00:06,000\n<i>appointment</i> on Tuesday. Please confirm it with us.\n", encoding="utf-8")
    (tmp_path / "reminder.vtt").write_text(
        "WEBVTT\n\nNOTE written by the front desk\n\n00:00.000 --> 00:02.000\n<v Nurse>Please arrive ten minutes "
        "early.\n\n00:02.000 --> 00:04.000\nBring a list of your medicines.\n", encoding="utf-8")
    assert texts([tmp_path / "call.srt"]) == [
        "Good morning, this is the dental practice calling about your appointment on Tuesday.",
        "Please confirm it with us."]
    assert texts([tmp_path / "reminder.vtt"]) == ["Please arrive ten minutes early.", "Bring a list of your medicines."]


def test_legacy_encodings_are_read_and_counted(tmp_path):
    (tmp_path / "windows.txt").write_bytes("The caf\xe9 serves a \u201cfree\u201d check-up.".encode("cp1252"))
    (tmp_path / "notepad.txt").write_bytes("Crowns are fitted on Fridays.".encode("utf-16"))
    sentences, _, stats = read_documents([tmp_path / "windows.txt", tmp_path / "notepad.txt"])
    assert [s.text for s in sentences] == ["The caf\xe9 serves a \u201cfree\u201d check-up.", "Crowns are fitted on Fridays."]
    assert stats["files read as Windows-1252 (not UTF-8)"] == 1


def test_a_folder_reads_every_format_and_names_what_it_leaves_out(tmp_path):
    (tmp_path / "a.md").write_text("Floss once a day before bed.\n", encoding="utf-8")
    (tmp_path / "b.html").write_text("<p>Brush twice a day for two minutes.</p>", encoding="utf-8")
    write_pdf(tmp_path / "c.pdf", [["Replace the brush every three months."]])
    (tmp_path / "prices.xlsx").write_bytes(b"PK\x03\x04 not read")
    (tmp_path / "~$a.docx").write_bytes(b"Word's lock file")  # never read, never listed
    sentences, unit, stats = read_documents([tmp_path])
    assert [s.text for s in sentences] == ["Floss once a day before bed.", "Brush twice a day for two minutes.",
                                          "Replace the brush every three months."]
    assert unit == "file"
    left_out = [key for key in stats if key.startswith("files left out")]
    assert len(left_out) == 1 and "prices.xlsx" in left_out[0] and "~$" not in left_out[0]
    assert stats[left_out[0]] == 1


@pytest.mark.parametrize(("name", "content", "message"), [
    ("notes.doc", b"\xd0\xcf\x11\xe0 old Word", r"notes.doc is a \.doc file, which speechft does not read\. Fix: save it as"),
    ("broken.docx", b"not a zip file", r"broken.docx is not a Word \.docx file .* Fix: open it"),
    ("broken.pdf", b"%PDF-1.4 garbage", r"broken.pdf (could not be read as a PDF|has no text layer)"),
    ("binary.txt", b"\x00\x81\x8d\x00", r"binary.txt is not UTF-8 .* Fix: re-save it as UTF-8"),
    ("empty.html", b"<html><script>x()</script></html>", r"empty.html has no text\. Fix:"),
])
def test_unreadable_documents_are_one_clear_error(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SpeechftError, match=message):
        read_documents([tmp_path / name])


def test_a_scanned_pdf_without_text_says_so(tmp_path):
    write_pdf(tmp_path / "scan.pdf", [[]])
    with pytest.raises(SpeechftError, match=r"scan.pdf has no text layer \(a scanned PDF\?\)\. Fix: run OCR"):
        read_documents([tmp_path / "scan.pdf"])


def test_a_folder_of_unreadable_files_names_them(tmp_path):
    (tmp_path / "prices.xlsx").write_bytes(b"PK")
    with pytest.raises(SpeechftError, match=r"has no document speechft reads .*; it has prices.xlsx\)"):
        read_documents([tmp_path])
