"""Written -> spoken text: what a TTS voice reads and what the reference transcript says.

"0.1 mg/kg PO BID" -> "zero point one milligrams per kilogram by mouth twice a day". Numbers
are read by num2words; the passes run from the most specific pattern to the most general so
that a date is not read as three numbers, nor "5-10 mg" as "five minus ten":

  digits after radiotelephony words (FL350, squawk 4613) -> dates -> times -> ratios -> q4h -> money ->
  quantities with units (and ranges, "/kg") -> x2 / 2x -> fractions -> ranges -> ordinals ->
  years -> numbers -> abbreviations -> symbols -> tidy punctuation

Scoring normalises both sides with Whisper's normaliser, which writes spoken numbers as
digits again, so the spoken reference costs nothing at scoring time.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from num2words import num2words

from .abbreviations import DIGIT_BY_DIGIT_AFTER, PER_WORDS, UNITS_ONLY_AFTER_NUMBERS, AbbreviationTable

NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
_MONTH_RE = r"(?P<month>" + "|".join([*MONTHS, "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sept", "Sep", "Oct",
                                      "Nov", "Dec"]) + r")\.?"
CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "\u00a3": ("pound", "pounds", "penny", "pence"),
              "\u20ac": ("euro", "euros", "cent", "cents")}
RUNWAY_SIDES = {"L": "left", "R": "right", "C": "center"}  # "runway 27L"
FRACTIONS = {2: ("half", "halves"), 3: ("third", "thirds"), 4: ("quarter", "quarters")}
YEAR_WORDS = r"in|since|by|from|until|of|during|year|before|after"
SYMBOLS = {
    "&": " and ", "+": " plus ", "=": " equals ", "<": " less than ", ">": " more than ", "\u2264": " at most ",
    "\u2265": " at least ", "~": " about ", "@": " at ", "#": " number ", "\u00b0": " degrees ", "%": " percent ",
    "\u00d7": " times ", ";": ",", ":": ",", "(": " , ", ")": " , ", "[": " , ", "]": " , ", "{": " , ", "}": " , ",
    "\u2014": ",", "\u2026": ".", "\u2018": "'", "\u2019": "'", "\u201c": "", "\u201d": "", '"': "",
}
ALLOWED_PUNCTUATION = set(" .,?!'-")


def _words(n: int, to: str = "cardinal") -> str:
    """num2words without its hyphens and commas ("twenty-four" -> "twenty four")."""
    return " ".join(re.sub(r"[-,]", " ", num2words(n, lang="en", to=to)).split())


def say_number(text: str, digit_by_digit: bool = False) -> str:
    """A written number as words: "0.1" -> "zero point one", "1,500" -> "one thousand five hundred".

    Args:
        text: digits with optional thousands commas and one decimal point.
        digit_by_digit: read every digit ("350" -> "three five zero", "." -> "decimal").
    """
    text = text.replace(",", "")
    if digit_by_digit:
        return " ".join("decimal" if c == "." else _words(int(c)) for c in text if c.isdigit() or c == ".")
    whole, dot, frac = text.partition(".")
    spoken = _words(int(whole)) if whole else ""
    if dot and frac:
        spoken = f"{spoken} point {' '.join(_words(int(c)) for c in frac)}".strip()
    return spoken


def _ordinal(n: int) -> str:
    return _words(n, "ordinal")


def _year(text: str) -> str:
    return _words(int(text), "year") if len(text) == 4 else _words(int(text))


def _month(name: str) -> str:
    return next(m for m in MONTHS if m.lower().startswith(name.lower()[:3]))


def _radiotelephony(text: str) -> str:
    words = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in DIGIT_BY_DIGIT_AFTER)

    def digits(m):
        side = f" {RUNWAY_SIDES[m.group(3)]}" if m.group(3) else ""
        return f"{m.group(1)} {say_number(m.group(2), digit_by_digit=True)}{side} "

    return re.sub(rf"(?i)\b({words})\s*(\d+(?:\.\d+)?)(?!\d)(?-i:([LRC])(?![\w]))?", digits, text)


def _dates(text: str) -> str:
    def iso(m):
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        return f"{MONTHS[mo - 1]} {_ordinal(d)}, {_year(m.group(1))}" if 1 <= mo <= 12 and 1 <= d <= 31 and y else m.group(0)

    def numeric(m):
        a, b = int(m.group(1)), int(m.group(2))
        day, mo = (b, a) if b > 12 >= a else (a, b)  # day first unless that cannot be a month
        if not (1 <= mo <= 12 and 1 <= day <= 31):
            return m.group(0)
        return f"the {_ordinal(day)} of {MONTHS[mo - 1]}, {_year(m.group(3))}"

    def day_month(m):
        year = f" {_year(m.group('year'))}" if m.group("year") else ""
        return f"the {_ordinal(int(m.group('day')))} of {_month(m.group('month'))}{year}"

    def month_day(m):
        year = f", {_year(m.group('year'))}" if m.group("year") else ""
        return f"{_month(m.group('month'))} {_ordinal(int(m.group('day')))}{year}"

    text = re.sub(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", iso, text)
    text = re.sub(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4}|\d{2})\b", numeric, text)
    text = re.sub(rf"\b(?P<day>[12]?\d|3[01])(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_RE}(?:,?\s+(?P<year>\d{{4}}))?(?!\w)",
                  day_month, text)
    return re.sub(rf"\b{_MONTH_RE}\s+(?P<day>[12]?\d|3[01])(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>\d{{4}})\b)?",
                  month_day, text)


def _times(text: str) -> str:
    def clock(m):
        hour, minute, ampm = int(m.group("h")), int(m.group("m") or 0), m.group("ap")
        if hour > 24 or minute > 59:
            return m.group(0)
        spoken = ("oh " if m.group("h").startswith("0") and hour else "") + _words(hour)
        if minute:
            spoken += f" {'oh ' if minute < 10 else ''}{_words(minute)}"
        elif not ampm:  # "14:00" -> "fourteen hundred", "9:00" -> "nine o'clock"
            spoken += " hundred" if hour > 12 or m.group("h").startswith("0") else " o'clock"
        return spoken + (f" {ampm.lower()} m" if ampm else "")

    ampm = r"(?:\s*(?P<ap>[apAP])\.?\s?[mM]\.?(?![\w]))"
    text = re.sub(rf"\b(?P<h>\d{{1,2}}):(?P<m>\d{{2}})(?!\d){ampm}?", clock, text)
    return re.sub(rf"\b(?P<h>\d{{1,2}})(?P<m>){ampm}", clock, text)


def _ratios(text: str) -> str:
    """"1:80,000" -> "one in eighty thousand" (a concentration), "1:1" -> "one to one"; runs
    after `_times`, so what is left of "digits:digits" is no clock time."""
    def ratio(m):
        left, right = m.group(1), m.group(2)
        if left == "1" and int(right.replace(",", "")) >= 1000:
            return f"one in {say_number(right)}"
        return f"{say_number(left)} to {say_number(right)}"

    return re.sub(r"(?<![\w:.,])(\d+):(\d{1,3}(?:,\d{3})+|\d+)(?![\w:]|[.,]\d)", ratio, text)


def _every_hours(text: str) -> str:
    def every(m):
        lo, hi = m.group(1), m.group(2)
        if hi:
            return f"every {_words(int(lo))} to {_words(int(hi))} hours"
        return "every hour" if lo == "1" else f"every {_words(int(lo))} hours"

    return re.sub(r"(?<![\w.])q\.?\s?(\d+)(?:\s*-\s*(\d+))?\s?h(?:rs?|ours?)?\.?(?![\w])", every, text)


def _money(text: str) -> str:
    def money(m):
        one, many, sub_one, sub_many = CURRENCIES[m.group(1)]
        amount, scale = m.group(2).replace(",", ""), m.group(3)
        if scale:
            return f"{say_number(amount)} {scale} {many}"
        whole, _, cents = amount.partition(".")
        spoken = f"{_words(int(whole or 0))} {one if whole == '1' else many}"
        if cents and int(cents[:2].ljust(2, "0")):
            c = int(cents[:2].ljust(2, "0"))
            spoken += f" and {_words(c)} {sub_one if c == 1 else sub_many}"
        return spoken

    return re.sub(rf"([$\u00a3\u20ac])\s?({NUM})(?:\s?(thousand|million|billion)\b)?", money, text)


@lru_cache(maxsize=32)
def _unit_patterns(units: tuple[str, ...]) -> tuple[str, str, str]:
    """(any unit, units allowed on their own, what may follow "/") as regex alternations."""
    order = sorted(units, key=len, reverse=True)
    any_unit = "|".join(map(re.escape, order))
    alone = "|".join(re.escape(u) for u in order if u not in UNITS_ONLY_AFTER_NUMBERS and len(u) > 1)
    per = "|".join(map(re.escape, sorted({*units, *PER_WORDS}, key=len, reverse=True)))
    return any_unit, alone or r"(?!x)x", per


def _per(table: AbbreviationTable, tail: str) -> str:
    """"/kg/day" -> " per kilogram per day"."""
    return "".join(f" per {table.units[u][0] if u in table.units else PER_WORDS[u]}" for u in tail.split("/") if u)


def _quantities(text: str, table: AbbreviationTable) -> str:
    if not table.units:
        return text
    any_unit, _, per = _unit_patterns(tuple(table.units))

    def quantity(m):
        lo, hi, unit, tail = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        singular, plural = table.units[unit]
        number = say_number(lo) + (f" to {say_number(hi)}" if hi else "")
        return f"{number} {singular if lo == '1' and not hi else plural}{_per(table, tail)}"

    pattern = rf"(?<![\w.,/])({NUM})(?:\s*(?:-|\u2013|to)\s*({NUM}))?\s*({any_unit})((?:/(?:{per}))*)(?![\w])"
    return re.sub(pattern, quantity, text)


def _multipliers(text: str) -> str:
    text = re.sub(r"(?<![\w])[x\u00d7]\s?(\d+)\b", lambda m: f"times {_words(int(m.group(1)))}", text)
    return re.sub(r"\b(\d+)\s?[x\u00d7](?![\w])", lambda m: f"{_words(int(m.group(1)))} times", text)


def _fractions(text: str) -> str:
    def fraction(m):
        num, den = int(m.group(1)), int(m.group(2))
        if den in FRACTIONS and 0 < num < den:
            return f"{_words(num)} {FRACTIONS[den][num > 1]}"
        return f"{_words(num)} over {_words(den)}"

    return re.sub(r"(?<![\w/.])(\d+)/(\d+)(?![\w/])", fraction, text)


def _negatives(text: str) -> str:
    # A minus opens a number after a space or "(", not after another number ("5 -10" is a range).
    return re.sub(r"(?<![\w.])(?<!\d\s)[-\u2212](?=\d)", "minus ", text)


def _ranges(text: str) -> str:
    return re.sub(rf"(?<![\w.])({NUM})\s*[-\u2013]\s*({NUM})(?![\w])",
                  lambda m: f"{say_number(m.group(1))} to {say_number(m.group(2))}", text)


def _numbers(text: str) -> str:
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", lambda m: _ordinal(int(m.group(1))), text)
    text = re.sub(rf"(?i)\b({YEAR_WORDS})\s+(1[89]\d\d|20\d\d)\b", lambda m: f"{m.group(1)} {_year(m.group(2))}", text)
    # Digits glued to letters ("B12", "COVID-19") are read on their own: "B twelve".
    return re.sub(NUM, lambda m: f" {say_number(m.group(0))} ", text)


@lru_cache(maxsize=32)
def _abbreviation_regex(words: tuple[str, ...], alone: str, per: str) -> re.Pattern:
    variants = set(words)
    variants |= {w[0].upper() + w[1:] for w in words if "." in w and w[0].islower()}  # "E.g." opening a sentence
    keys = "|".join(map(re.escape, sorted(variants, key=len, reverse=True))) or r"(?!x)x"
    return re.compile(rf"(?<![\w/])(?:(?P<unit>{alone})(?P<per>(?:/(?:{per}))*)|(?P<word>{keys}))(?![\w/])")


def _abbreviations(text: str, table: AbbreviationTable) -> str:
    _, alone, per = _unit_patterns(tuple(table.units)) if table.units else ("", r"(?!x)x", r"(?!x)x")
    regex = _abbreviation_regex(tuple(table.words), alone, per)

    def expand(m):
        if m.group("unit"):
            return table.units[m.group("unit")][1] + _per(table, m.group("per") or "")
        word = m.group("word")
        spoken = table.words.get(word) or table.words[word[0].lower() + word[1:]]
        return spoken[0].upper() + spoken[1:] if word[0].isupper() and word not in table.words else spoken

    return regex.sub(expand, text)


def _symbols(text: str) -> str:
    text = re.sub(r"\s*(?:->|\u2192)\s*", " to ", text)
    text = re.sub(r"(?<=[A-Za-z])/(?=[A-Za-z])", " or ", text)
    text = re.sub(r"\s[-\u2013]\s", ", ", text)  # a dash between words is a pause
    text = re.sub(r"-(?=\s|$)|(?<=\s)-", " ", text)  # "COVID- nineteen": a hyphen left by a number
    text = "".join(SYMBOLS.get(c, c) for c in text)
    return "".join(c if c.isalpha() or c.isdigit() or c in ALLOWED_PUNCTUATION else " " for c in text)


def _tidy(text: str) -> str:
    text = " ".join(text.split())
    text = re.sub(r"\s+([.,?!])", r"\1", text)
    text = re.sub(r"([.,?!])(?:[.,]+)", r"\1", text)  # ",," and ",." left by removed brackets
    text = re.sub(r",([?!])", r"\1", text)
    text = re.sub(r"(^|\s)'([^'\s][^']*?)'(?=[\s.,?!]|$)", r"\1\2", text)  # 'quoted', not the parties' apostrophe
    text = re.sub(r"(^|\s)'+", r"\1", text).strip(" ,.-")
    if not text:
        return ""
    first = text.split()[0]
    if first.islower():  # "eGFR" keeps its case
        text = text[0].upper() + text[1:]
    return text if text[-1] in ".?!" else text + "."


def to_spoken(text: str, table: AbbreviationTable) -> str:
    """A written sentence as a speaker says it: numbers, units, dates, times and the table's
    abbreviations as words; symbols spoken or removed.

    Args:
        text: one written sentence.
        table: the abbreviations to expand (without the domain's terms: they stay as written).
    Returns:
        the spoken sentence (letters, spaces and . , ? ! ' - only), "" when nothing is left.
    """
    text = unicodedata.normalize("NFKC", text).replace("\u00b5", "\u03bc")
    for step in (_radiotelephony, _dates, _times, _ratios, _every_hours, _money, _negatives):
        text = step(text)
    text = _quantities(text, table)
    for step in (_multipliers, _fractions, _ranges, _numbers):
        text = step(text)
    return _tidy(_symbols(_abbreviations(text, table)))


def unspoken(text: str, table: AbbreviationTable) -> list[str]:
    """What in `text` a TTS voice should not read: digits and the table's abbreviations.

    Returns:
        the offending pieces (empty when the text is clean spoken text).
    """
    found = re.findall(r"\d+", text)
    _, alone, per = _unit_patterns(tuple(table.units)) if table.units else ("", r"(?!x)x", r"(?!x)x")
    found += [m.group(0) for m in _abbreviation_regex(tuple(table.words), alone, per).finditer(text)]
    return found
