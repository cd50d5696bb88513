"""The abbreviation table: built-in defaults (units, dosing, general, aviation) plus the
domain's own `data_manifests/<domain>/abbreviations.tsv`.

abbreviations.tsv, one entry a line, `#` starts a comment:

    ABBREVIATION<TAB>spoken words            PO	by mouth
    UNIT<TAB>singular|plural                 mg	milligram|milligrams

Matching is case-sensitive and on whole words ("PO" is not "po"; list both if both occur).
An entry with `|` is a unit: after a number it is spoken in the singular or plural ("1 mg",
"0.5 mg"), after a "/" as "per <singular>" ("mg/kg"), elsewhere in the plural. The domain's
entries replace built-in ones of the same spelling; an entry that maps a word to itself
(`OD<TAB>OD`) keeps it as written.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpeechftError
from ..io_utils import read_lines

ABBREVIATIONS_FILE = "abbreviations.tsv"

# Units: spoken after numbers. Plural "" = the singular (kilohertz, percent).
UNITS: dict[str, str] = {
    "mg": "milligram|milligrams", "mcg": "microgram|micrograms", "\u00b5g": "microgram|micrograms",
    "\u03bcg": "microgram|micrograms", "ug": "microgram|micrograms", "g": "gram|grams", "kg": "kilogram|kilograms",
    "ng": "nanogram|nanograms", "mL": "milliliter|milliliters", "ml": "milliliter|milliliters", "L": "liter|liters",
    "dL": "deciliter|deciliters", "mmol": "millimole|millimoles", "mol": "mole|moles",
    "mEq": "milliequivalent|milliequivalents", "IU": "international unit|international units", "U": "unit|units",
    "mmHg": "millimeter of mercury|millimeters of mercury", "cm": "centimeter|centimeters",
    "mm": "millimeter|millimeters", "m": "meter|meters", "km": "kilometer|kilometers", "m2": "square meter|square meters",
    "m\u00b2": "square meter|square meters", "ft": "foot|feet", "kt": "knot|knots", "kts": "knot|knots",
    "NM": "nautical mile|nautical miles", "hPa": "hectopascal|hectopascals", "inHg": "inch of mercury|inches of mercury",
    "h": "hour|hours", "hr": "hour|hours", "hrs": "hour|hours", "min": "minute|minutes", "mins": "minute|minutes",
    "s": "second|seconds", "sec": "second|seconds", "secs": "second|seconds", "wk": "week|weeks", "wks": "week|weeks",
    "yr": "year|years", "yrs": "year|years", "bpm": "beat per minute|beats per minute",
    "\u00b0C": "degree Celsius|degrees Celsius", "\u00b0F": "degree Fahrenheit|degrees Fahrenheit",
    "\u00b0": "degree|degrees", "%": "percent|percent", "Hz": "hertz|hertz", "kHz": "kilohertz|kilohertz",
    "MHz": "megahertz|megahertz", "mph": "mile per hour|miles per hour", "kcal": "kilocalorie|kilocalories",
    "tsp": "teaspoon|teaspoons", "tbsp": "tablespoon|tablespoons",
    # engineering, IT and trade
    "Nm": "newton meter|newton meters", "psi": "p s i|p s i", "kPa": "kilopascal|kilopascals", "bar": "bar|bar",
    "V": "volt|volts", "A": "amp|amps", "W": "watt|watts", "kW": "kilowatt|kilowatts",
    "kWh": "kilowatt hour|kilowatt hours", "mAh": "milliamp hour|milliamp hours", "mi": "mile|miles",
    "mpg": "mile per gallon|miles per gallon", "lb": "pound|pounds", "lbs": "pound|pounds", "oz": "ounce|ounces",
    "ft-lb": "foot pound|foot pounds", "ft-lbs": "foot pound|foot pounds", "ms": "millisecond|milliseconds",
    "KB": "kilobyte|kilobytes", "kB": "kilobyte|kilobytes", "MB": "megabyte|megabytes", "GB": "gigabyte|gigabytes",
    "TB": "terabyte|terabytes", "Mbps": "megabit per second|megabits per second",
    "Gbps": "gigabit per second|gigabits per second", "GHz": "gigahertz|gigahertz",
    "fps": "frame per second|frames per second",
}
# Units that are also common words or letters: expanded after a number or "/", never alone.
UNITS_ONLY_AFTER_NUMBERS = {"g", "L", "U", "m", "s", "h", "hr", "min", "sec", "wk", "yr", "mol", "ug", "\u00b0",
                            "V", "A", "W", "mi", "ms", "bar", "KB", "kB", "MB", "GB", "TB", "lb", "oz"}
# Words after "/" that are not units ("mg/kg/day").
PER_WORDS = {"d": "day", "day": "day", "dose": "dose", "week": "week", "month": "month"}

WORDS: dict[str, str] = {
    # dosing
    "PO": "by mouth", "p.o.": "by mouth", "IV": "intravenous", "i.v.": "intravenous", "IM": "intramuscular",
    "SC": "subcutaneous", "SQ": "subcutaneous", "subcut": "subcutaneous", "SL": "sublingual",
    "BID": "twice a day", "b.i.d.": "twice a day", "TID": "three times a day", "t.i.d.": "three times a day",
    "QID": "four times a day", "q.i.d.": "four times a day", "QD": "once a day", "q.d.": "once a day",
    # British prescribing writes b.d., t.d.s., q.d.s. (said "twice a day"; read aloud as letters,
    # they gave references like "t d s" that no transcript writes)
    "b.d.": "twice a day", "BD": "twice a day", "bd": "twice a day", "t.d.s.": "three times a day",
    "TDS": "three times a day", "tds": "three times a day", "q.d.s.": "four times a day",
    "QDS": "four times a day", "qds": "four times a day", "o.d.": "once a day", "nocte": "at night",
    "OD": "once a day", "QHS": "at bedtime", "qhs": "at bedtime", "q.h.s.": "at bedtime", "PRN": "as needed",
    "prn": "as needed", "p.r.n.": "as needed", "NPO": "nothing by mouth", "n.p.o.": "nothing by mouth",
    "tab": "tablet", "tabs": "tablets", "inj": "injection", "gtt": "drops", "neb": "nebulizer",
    # clinical shorthand
    "pt": "patient", "pts": "patients", "Pt": "Patient", "Pts": "Patients", "y/o": "year old", "w/": "with", "w/o": "without", "s/p": "status post",
    "c/o": "complains of", "h/o": "history of", "r/o": "rule out", "Hx": "history", "Dx": "diagnosis",
    "Tx": "treatment", "Rx": "prescription", "Sx": "symptoms", "Fx": "fracture",
    # general
    "e.g.": "for example", "i.e.": "that is", "etc.": "et cetera", "vs.": "versus", "vs": "versus",
    "approx.": "approximately", "approx": "approximately", "cf.": "compare", "viz.": "namely",
    "incl.": "including", "excl.": "excluding", "encl.": "enclosed", "ext.": "extension", "tel.": "telephone",
    "pp.": "pages", "fig.": "figure", "vol.": "volume", "sect.": "section", "dept.": "department",
    "ref.": "reference", "qty": "quantity", "max.": "maximum", "avg.": "average", "Rd.": "Road", "Ave.": "Avenue",
    "nos.": "numbers", "min.": "minimum", "ea.": "each", "P/N": "part number", "n/a": "not applicable",
    "N/A": "not applicable", "A/C": "A C", "appt": "appointment", "Appt": "Appointment", "appt.": "appointment",
    "Dr.": "Doctor", "Dr": "Doctor", "Mr.": "Mister", "Mr": "Mister", "Mrs.": "Missus", "Mrs": "Missus",
    "Ms.": "Miz", "Prof.": "Professor", "St.": "Saint", "a.m.": "a m", "p.m.": "p m",
    "Jan.": "January", "Feb.": "February", "Mar.": "March", "Apr.": "April", "Aug.": "August", "Sep.": "September",
    "Sept.": "September", "Oct.": "October", "Nov.": "November", "Dec.": "December",
    # aviation
    "FL": "flight level", "RWY": "runway", "rwy": "runway", "TWY": "taxiway", "HDG": "heading", "hdg": "heading",
}
# Numbers after these words are read digit by digit, as radiotelephony does ("FL350": "flight
# level three five zero", "squawk 4613": "squawk four six one three"). Lower case.
DIGIT_BY_DIGIT_AFTER = ("fl", "flight level", "squawk", "runway", "rwy", "heading", "hdg", "qnh")
# Numbers of four digits or more after these words are identifiers, read digit by digit as
# people read them ("GDC no. 654321": "G D C number six five four three two one"). Lower case;
# "no." and "#" are spoken "number" before any number.
IDENTIFIER_WORDS = ("no.", "number", "#", "id", "ref", "ref.", "reference", "code", "ext", "ext.", "extension", "tel",
                    "tel.", "telephone", "phone", "fax", "mobile", "account", "acct", "invoice", "serial", "mrn", "pin",
                    "policy", "claim", "ticket", "booking", "reservation", "tracking", "registration")


@dataclass(frozen=True)
class AbbreviationTable:
    """Abbreviations -> spoken words; units with singular and plural forms."""

    words: dict[str, str]
    units: dict[str, tuple[str, str]]

    def without(self, keep: set[str]) -> "AbbreviationTable":
        """The table without entries spelled like `keep` (case-insensitive): domain terms stay as written."""
        keep = {k.lower() for k in keep}
        return AbbreviationTable({k: v for k, v in self.words.items() if k.lower() not in keep},
                                 {k: v for k, v in self.units.items() if k.lower() not in keep})


def _split(entries: dict[str, str]) -> AbbreviationTable:
    words, units = {}, {}
    for key, value in entries.items():
        if "|" in value:
            singular, _, plural = value.partition("|")
            units[key] = (singular.strip(), plural.strip() or singular.strip())
        elif value.strip() != key:
            words[key] = value.strip()
    return AbbreviationTable(words, units)


def read_abbreviations(path: str | Path) -> dict[str, str]:
    """Entries of an abbreviations.tsv (see the module docstring).

    Raises:
        SpeechftError: the file is missing or not UTF-8, or lines are malformed (all listed).
    """
    entries, problems = {}, []
    for n, line in enumerate(read_lines(path, "abbreviation table", "ABBREVIATION<TAB>spoken words, one a line"), 1):
        body = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        if not body.strip():
            continue
        key, tab, value = body.partition("\t")
        if not tab or not key.strip() or not value.strip() or any(c.isdigit() for c in value):
            problems.append(f"{path}:{n}: {line!r} is not ABBREVIATION<TAB>spoken words (words without digits)")
            continue
        entries[key.strip()] = value.strip()
    if problems:
        raise SpeechftError("\n".join(problems) + "\nFix: one entry a line, a TAB between the abbreviation and its "
                            "spoken words, e.g. 'PO<TAB>by mouth' or 'mg<TAB>milligram|milligrams'")
    return entries


def abbreviation_table(*paths: str | Path | None) -> AbbreviationTable:
    """The built-in table updated with each existing abbreviations.tsv in `paths` (later ones win).

    Raises:
        SpeechftError: a given file is malformed (see `read_abbreviations`).
    """
    entries = {**UNITS, **WORDS}
    for path in paths:
        if path is not None and Path(path).is_file():
            entries.update(read_abbreviations(path))
    return _split(entries)


def table_file_text(user_entries: dict[str, str] | None = None) -> str:
    """The text of a domain's abbreviations.tsv: how to extend it, the built-in entries as
    comments, and the domain's own entries."""
    lines = [
        "# Abbreviations of this domain, spoken as words in the TTS text and the reference text.",
        "# One entry a line: ABBREVIATION<TAB>spoken words, or UNIT<TAB>singular|plural for units.",
        "# Case-sensitive whole words. An entry replaces the built-in one of the same spelling;",
        "# ABBREVIATION<TAB>ABBREVIATION keeps it as written. Re-run `speechft new ... --force` after",
        "# editing (it keeps this file and lexicon.txt).",
    ]
    builtin = "Built-in (speechft/domain/abbreviations.py): " + ", ".join(sorted({**UNITS, **WORDS}, key=str.lower))
    lines += textwrap.wrap(builtin, width=100, initial_indent="# ", subsequent_indent="#   ", break_on_hyphens=False)
    lines += [f"{k}\t{v}" for k, v in (user_entries or {}).items()]
    return "\n".join(lines) + "\n"
