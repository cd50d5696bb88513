"""Written -> spoken text, and the abbreviation table (built-in and abbreviations.tsv)."""

from __future__ import annotations

import pytest

from speechft.domain.abbreviations import abbreviation_table, read_abbreviations, table_file_text
from speechft.domain.spoken import say_number, to_spoken, unspoken
from speechft.errors import SpeechftError

TABLE = abbreviation_table()


@pytest.mark.parametrize(("written", "spoken"), [
    ("0.1 mg/kg PO BID", "Zero point one milligrams per kilogram by mouth twice a day."),
    ("Give 1 mg IV then 2.5 mg.", "Give one milligram intravenous then two point five milligrams."),
    ("Repeat x2 over 5-10 min.", "Repeat times two over five to ten minutes."),
    ("Rate was 140, INR 3.8.", "Rate was one hundred and forty, INR three point eight."),
    ("The 3rd and 21st doses.", "The third and twenty first doses."),
    ("Up 5% to 12.5%.", "Up five percent to twelve point five percent."),
    ("BP 120/80 mmHg, 1/2 tab.", "BP one hundred and twenty over eighty millimeters of mercury, one half tablet."),
    ("Seen on 12/03/2024 at 14:30.", "Seen on the twelfth of March, twenty twenty four at fourteen thirty."),
    ("Admitted 2024-03-12, 9:05 pm.", "Admitted March twelfth, twenty twenty four, nine oh five p m."),
    ("Since 2019 on 1 g q6h PRN.", "Since twenty nineteen on one gram every six hours as needed."),
    ("Temp 38.5\u00b0C, -5 \u00b0C outside.", "Temp thirty eight point five degrees Celsius, minus five degrees Celsius outside."),
    ("It cost $1.50 or \u00a320 million.", "It cost one dollar and fifty cents or twenty million pounds."),
    ("Climb FL350, squawk 4613, runway 27L.", "Climb flight level three five zero, squawk four six one three, runway two seven left."),
    ("Dr. Lee, e.g. w/ food & water (approx.)", "Doctor Lee, for example with food and water, approximately."),
    ("Vitamin B12 and COVID-19.", "Vitamin B twelve and COVID nineteen."),
    ("Dose in mg/kg, not mg.", "Dose in milligrams per kilogram, not milligrams."),
    # ratios: a concentration "one in", others "to" (clock times stay times)
    ("Lidocaine 2% + adrenaline 1:80,000, dilute 1:1 at 10:30.",
     "Lidocaine two percent plus adrenaline one in eighty thousand, dilute one to one at ten thirty."),
    # British prescribing
    ("Ibuprofen 400 mg q.d.s., 1 tsp t.d.s., 10 ml BD nocte.",
     "Ibuprofen four hundred milligrams four times a day, one teaspoon three times a day, ten milliliters twice a day at night."),
    # identifiers and phone numbers digit by digit, groups kept; ranges and years stay numbers
    ("Tel 01632 960 415, GDC no. 654321.",
     "Telephone zero one six three two, nine six zero, four one five, GDC number six five four three two one."),
    ("Call (555) 123-4567 or +44 1632 960415.",
     "Call five five five, one two three, four five six seven, or plus four four, one six three two, "
     "nine six zero four one five."),
    ("Record no. 09913, ref ABC-12345, invoice 2024-0042.",
     "Record number zero nine nine one three, ref ABC one two three four five, invoice two zero two four, "
     "zero zero four two."),
    ("Population 1 500 000, code 020 7946 0958.",
     "Population one million five hundred thousand, code zero two zero, seven nine four six, zero nine five eight."),
    ("Claim no. CLM-88231, order ORD-2024-55102, 10W-40 oil, part 43512-42050.",
     "Claim number CLM eight eight two three one, order ORD twenty twenty four five five one zero two, ten W forty oil, "
     "part four three five one two, four two zero five zero."),
    ("Varnish 2-4x/yr for a 45-year-old, 6 units/wk.",
     "Varnish two to four times per year for a forty five year-old, six units per week."),
    ("Berlin +49 30 123456, 0-60 mph.",
     "Berlin plus four nine, three zero, one two three four five six, zero to sixty miles per hour."),
    # addresses, per, units of trade and IT, days before dates, percent ranges, abbreviations
    ("Mail support@example.com, see www.example.com/help or 192.168.1.10.",
     "Mail support at example dot com, see w w w dot example dot com slash help or one nine two dot one six eight dot "
     "one dot one zero."),
    ("It costs $145/hr or 50p/min, 12-15 jobs/day.",
     "It costs one hundred and forty five dollars per hour or fifty p per minute, twelve to fifteen jobs per day."),
    ("Torque 34 Nm, 32 psi, 900 Mbps, 16 GB, 12V.",
     "Torque thirty four newton meters, thirty two p s i, nine hundred megabits per second, sixteen gigabytes, "
     "twelve volts."),
    ("Reply by Fri 5 Apr, closed Sun, up 20%-30% in Q1 2024, v2.1, min. 5 min, $12.50 ea.",
     "Reply by Friday the fifth of April, closed Sunday, up twenty to thirty percent in Q one twenty twenty four, "
     "version two point one, minimum five minutes, twelve dollars and fifty cents each."),
    ("No. 3 bur, 1500-2000 mg, 2019 2020.", "Number three bur, one thousand five hundred to two thousand milligrams, "
     "two thousand and nineteen two thousand and twenty."),
    # decimals before "x", decades, money scales, days and clock ranges, review dates
    ("Implant 4.1 x 10 mm, incl. kit.", "Implant four point one times ten millimeters, including kit."),
    ("In the 1990s and the '80s, not 10s.", "In the nineteen nineties and the eighties, not ten seconds."),
    ("Revenue $4.2bn, cost £300k.", "Revenue four point two billion dollars, cost three hundred thousand pounds."),
    ("Open 24/7, Mon-Fri 9am-5pm, Sat 08:30-12:00.",
     "Open twenty four, seven, Monday to Friday nine a m to five p m, Saturday oh eight thirty to twelve o'clock."),
    ("Review: 03/2025, ISO 13485:2016.",
     "Review, March twenty twenty five, ISO thirteen thousand four hundred and eighty five, two thousand and sixteen."),
])
def test_written_becomes_spoken(written, spoken):
    assert to_spoken(written, TABLE) == spoken


MESSY = [
    "0.1 mg/kg PO BID x 5 d; 10-20 mL/h IV; 1,500 units SC q4-6h; 37.8\u00b0C; 99% SpO2 @ 2 L/min",
    "Pt 72 y/o s/p CABG 2019, c/o CP w/ exertion, HR 52 bpm, K+ 3.1 mmol/L (ref 3.5-5.0)",
    "12/31/2024 23:59 -> 01.01.25 00:01; 3 tabs TID \u00d7 7 days = 21 tabs; #2 of 10",
    "FL 240, hdg 090, QNH 1013 hPa, 25 NM, 3000 ft, 121.5 MHz, 15 kts",
    "Adrenaline 1:200,000; ratio 3:2; amoxicillin 500 mg TDS, paracetamol 1 g qds, 2 tbsp b.d.",
]


@pytest.mark.parametrize("written", MESSY)
def test_no_digit_or_abbreviation_reaches_the_spoken_text(written):
    spoken = to_spoken(written, TABLE)
    assert unspoken(spoken, TABLE) == []
    assert not any(c.isdigit() for c in spoken)
    assert set(spoken) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,?!'-")


def test_unspoken_finds_digits_and_table_abbreviations():
    assert unspoken("Give 5 mg PO now, e.g. today.", TABLE) == ["5", "mg", "PO", "e.g."]
    assert unspoken("Give five milligrams by mouth.", TABLE) == []


@pytest.mark.parametrize(("number", "words"), [
    ("0.1", "zero point one"), ("1,500", "one thousand five hundred"), (".5", "point five"), ("2024", "two thousand and twenty four"),
])
def test_numbers_are_read_by_num2words(number, words):
    assert say_number(number) == words


def test_domain_table_extends_and_overrides_the_built_in_one(tmp_path):
    tsv = tmp_path / "abbreviations.tsv"
    tsv.write_text("# comment\nECG\telectrocardiogram\nOD\tOD\ngtts\tdrop|drops\nmg\tmilligramme|milligrammes\n", encoding="utf-8")
    table = abbreviation_table(tsv)
    assert to_spoken("ECG normal, OD dose, 1 gtts, 2 gtts, 5 mg.", table) == \
        "Electrocardiogram normal, OD dose, one drop, two drops, five milligrammes."
    assert "ECG\telectrocardiogram" in table_file_text(read_abbreviations(tsv))


def test_terms_are_kept_as_written():
    table = TABLE.without({"IV", "bpm"})
    assert to_spoken("Give IV fluids at 60 bpm.", table) == "Give IV fluids at sixty bpm."


def test_a_malformed_table_lists_every_bad_line(tmp_path):
    tsv = tmp_path / "abbreviations.tsv"
    tsv.write_text("ECG electrocardiogram\nPO\tby mouth\nq2\tevery 2 hours\n", encoding="utf-8")
    with pytest.raises(SpeechftError) as e:
        abbreviation_table(tsv)
    assert ":1:" in str(e.value) and ":3:" in str(e.value) and ":2:" not in str(e.value)
