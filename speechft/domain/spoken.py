"""Written -> spoken text: what a TTS voice reads and what the reference transcript says.

"0.1 mg/kg PO BID" -> "zero point one milligrams per kilogram by mouth twice a day". Numbers
are read by num2words; the passes run from the most specific pattern to the most general so
that a date is not read as three numbers, nor "5-10 mg" as "five minus ten":

  digits after radiotelephony words (FL350, squawk 4613) -> dates -> days (Mon-Fri) -> times ->
  identifiers (phone numbers, "no. 654321", leading zeros: digit by digit) -> ratios -> q4h -> money ->
  decades -> quantities with units (and ranges, "/kg") -> x2 / 2x -> fractions -> ranges -> ordinals ->
  years -> numbers -> abbreviations -> symbols -> tidy punctuation

Scoring normalises both sides with Whisper's normaliser, which writes spoken numbers as
digits again, so the spoken reference costs nothing at scoring time.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from num2words import num2words

from .abbreviations import DIGIT_BY_DIGIT_AFTER, IDENTIFIER_WORDS, PER_WORDS, UNITS_ONLY_AFTER_NUMBERS, AbbreviationTable

NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
_MONTH_RE = r"(?P<month>" + "|".join([*MONTHS, "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sept", "Sep", "Oct",
                                      "Nov", "Dec"]) + r")\.?"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_RE = r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun)(?:day|s|sday|nesday|r|rs|rsday|urday)?\.?"
# Words that open an identifier spoken in full: "Tel 01632 ..." -> "Telephone zero one six ...".
IDENTIFIER_OPENERS = {"no.": "number", "tel": "telephone", "tel.": "telephone", "ext": "extension",
                      "ext.": "extension"}
MONEY_SCALES = {"thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion",
                "k": "thousand", "K": "thousand", "m": "million", "M": "million", "mn": "million", "bn": "billion",
                "b": "billion", "tn": "trillion"}
# Words after "/" read "per" ("$145/hr", "£25/month", "jobs/day"; units after numbers are _quantities')
SLASH_PER = {"h": "hour", "hr": "hour", "hour": "hour", "d": "day", "day": "day", "wk": "week", "week": "week",
             "mo": "month", "month": "month", "yr": "year", "year": "year", "min": "minute", "night": "night",
             "person": "person", "user": "user", "seat": "seat", "unit": "unit", "item": "item"}
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


WEB_TLDS = "com|org|net|edu|gov|io|co|uk|de|fr|eu|info|biz|us|ca|au|app|dev|ai"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(rf"(?:https?://)?(?:www\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:{WEB_TLDS})\b(?:/[\w\-./?=&%#]*[\w/])?")


def _web(text: str) -> str:
    """Addresses as people say them: "support@example.com" -> "support at example dot com",
    "www.example.com/help" -> "w w w dot example dot com slash help", "192.168.1.10" ->
    "one nine two dot one six eight dot one dot one zero"."""
    def say(address: str) -> str:
        address = re.sub(r"^https?://", "", address).rstrip("/")
        address = re.sub(r"^www\.", "w w w.", address)
        for symbol, word in (("@", " at "), (".", " dot "), ("/", " slash "), ("-", " dash "), ("_", " underscore "),
                             ("?", " "), ("=", " equals "), ("&", " and "), ("#", " "), ("%", " percent ")):
            address = address.replace(symbol, word)
        address = re.sub(r"\d+", lambda m: f" {say_number(m.group(0), digit_by_digit=True)} ", address)
        return " " + " ".join(address.split()) + " "

    text = re.sub(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)", lambda m: say(m.group(0)), text)
    text = _EMAIL.sub(lambda m: say(m.group(0)), text)
    return _URL.sub(lambda m: say(m.group(0)), text)


def _radiotelephony(text: str) -> str:
    words = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in DIGIT_BY_DIGIT_AFTER)

    def digits(m):
        side = f" {RUNWAY_SIDES[m.group(3)]}" if m.group(3) else ""
        return f"{m.group(1)} {say_number(m.group(2), digit_by_digit=True)}{side} "

    return re.sub(rf"(?i)\b({words})\s*(\d+(?:\.\d+)?)(?!\d)(?-i:([LRC])(?![\w]))?", digits, text)


def _dates(text: str) -> str:
    def iso(m):
        y, mo, d = int(m["y"]), int(m["mo"]), int(m["d"])
        return f"{MONTHS[mo - 1]} {_ordinal(d)}, {_year(m['y'])}" if 1 <= mo <= 12 and 1 <= d <= 31 and y else m.group(0)

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

    text = re.sub(r"\b(?P<y>\d{4})(?P<sep>[-/])(?P<mo>\d{1,2})(?P=sep)(?P<d>\d{1,2})\b", iso, text)
    text = re.sub(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4}|\d{2})\b", numeric, text)
    # "03/2025" (a review date): month and year
    text = re.sub(r"(?<![\w/.])(0?[1-9]|1[0-2])/((?:19|20)\d\d)(?![\w/])",
                  lambda m: f"{MONTHS[int(m.group(1)) - 1]} {_year(m.group(2))}", text)
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
    # "9am-5pm", "08:30-17:30": a dash between clock times is "to", not a hyphen in one word
    any_time = r"\d{1,2}(?::\d{2})?(?:\s*[apAP]\.?\s?[mM]\.?)?"
    clock_time = r"(?:\d{1,2}:\d{2}(?:\s*[apAP]\.?\s?[mM]\.?)?|\d{1,2}\s*[apAP]\.?\s?[mM]\.?)"
    text = re.sub(rf"(?<![\w:.])({any_time})\s*[-\u2013]\s*({clock_time})(?![\w])", r"\1 to \2", text)
    text = re.sub(rf"\b(?P<h>\d{{1,2}}):(?P<m>\d{{2}})(?!\d){ampm}?", clock, text)
    return re.sub(rf"\b(?P<h>\d{{1,2}})(?P<m>){ampm}", clock, text)


_YEAR_LIKE = re.compile(r"(?:19|20)\d\d")


def _spell_groups(groups: list[str]) -> str:
    """Digit groups digit by digit, a pause between groups: "zero one six three two, nine six zero"."""
    return ", ".join(say_number(g, digit_by_digit=True) for g in groups)


def _code_part(part: str) -> str:
    """One part of a hyphenated code, its digits read now (so "10W" stays no "ten watts")."""
    if _YEAR_LIKE.fullmatch(part):
        return _year(part)

    def digits(m):
        run = m.group(0)
        return f" {say_number(run, digit_by_digit=len(run) >= 4 or run.startswith('0'))} "

    return " ".join(re.sub(r"\d+", digits, part).split())


def _day(abbreviation: str) -> str:
    return next(d for d in DAYS if d.startswith(abbreviation))


def _day_ranges(text: str) -> str:
    """"Mon-Fri" -> "Monday to Friday" (a lone "Sun" or "Wed" may be a word: left alone)."""
    text = re.sub(rf"\b{_DAY_RE}\s*[-\u2013]\s*{_DAY_RE}(?![\w])", lambda m: f"{_day(m[1])} to {_day(m[2])}", text)
    # "Fri 15 March", "Sat 10am-2pm", "closed Sun": a day abbreviation before a date or a time, or
    # after a word that opens a day
    text = re.sub(rf"\b{_DAY_RE}(?=,?\s+(?:\d|the\s))", lambda m: _day(m[1]), text)
    return re.sub(rf"\b(on|by|until|closed|every|from|next|last) {_DAY_RE}(?![\w])",
                  lambda m: f"{m[1]} {_day(m[2])}", text)


def _identifiers(text: str) -> str:
    """Phone, account and reference numbers read digit by digit, as people read them.

    "Tel 01632 960 415" -> "Telephone zero one six three two, nine six zero, four one five";
    "GDC no. 654321" -> "GDC number six five four three two one"; "TP-2024-0117" -> "TP twenty
    twenty four zero one one seven". Ranges ("1500-2000 mg") and lists of years stay numbers.
    """
    def opener(m):
        spoken = IDENTIFIER_OPENERS[m.group(1).lower()]
        return (spoken.capitalize() if m.group(1)[0].isupper() else spoken) + " "

    openers = "|".join(re.escape(w) for w in sorted(IDENTIFIER_OPENERS, key=len, reverse=True))
    text = re.sub(rf"(?i)(?<![\w.])({openers})(?![\w])\s*:?\s*(?=[+(#]?\d|[A-Za-z]{{1,4}}-?\d)", opener, text)

    # "+49 30 123456", "+1 (800) 555-0199": an international number, every group digit by digit
    text = re.sub(r"(?<![\w+])\+\d{1,3}(?:(?: |-|\) ?| ?\()?\d{1,6})+(?![\w:/]|[.,]\d)",
                  lambda m: f" plus {_spell_groups(re.findall(r'[0-9]+', m.group(0)))}, ", text)
    # a code mixing letters and digits around hyphens ("ORD-2024-55102", "8C3Z-6758-A", "COVID-19"):
    # its parts apart, long digit runs digit by digit, a year-like part a year
    # (its first part has a letter: "2-4x" and "45-year-old" are no codes)
    text = re.sub(r"(?<![\w-])(?=[\w-]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+(?![\w-])",
                  lambda m: " ".join(_code_part(p) for p in m.group(0).split("-")), text)

    def groups(m):
        parts = re.findall(r"\d+", m.group(0))
        if re.fullmatch(r"[1-9]\d{0,2}(?: \d{3})+", m.group(0)):  # "1 500 000": a thousands separator
            return "".join(parts)
        lead_zero = any(len(p) > 1 and p.startswith("0") for p in parts)  # "2024-0042" is a code, no range
        hyphen_range = (len(parts) == 2 and "-" in m.group(0) and " " not in m.group(0).strip()
                        and int(parts[1]) > int(parts[0]))  # "43512-42050" falls: a part number
        if not lead_zero and (len("".join(parts)) < 7 or sum(len(p) >= 3 for p in parts) < 2 or hyphen_range
                              or all(len(p) == 4 and p[:2] in ("19", "20") for p in parts)):
            return m.group(0)
        return f" {_spell_groups(parts)}, "

    # national numbers in groups ("01632 960 415", "(555) 123-4567", "943 476 5919")
    text = re.sub(r"(?<![\w.,:/-])\(?\d{1,6}\)?(?:(?: |-|\) ?)\d{2,6})+(?![\w:/]|[.,]\d)", groups, text)
    # digits in a code ("ABC-12345", "SN00731"): digit by digit; a year-like group stays a year
    text = re.sub(r"(?<=[A-Za-z])-?(\d{4,})(?![\w]|[.,]\d)",
                  lambda m: " " + (m.group(1) if _YEAR_LIKE.fullmatch(m.group(1))
                                   else say_number(m.group(1), digit_by_digit=True)), text)
    # a number with a leading zero ("09913", "0117") is a code, never a quantity
    text = re.sub(r"(?<![\w.,:/])0\d+(?![\w:/]|[.,]\d)", lambda m: say_number(m.group(0), digit_by_digit=True), text)
    words = "|".join(re.escape(w) for w in sorted(IDENTIFIER_WORDS, key=len, reverse=True))
    return re.sub(rf"(?i)(?<![\w])({words})(?:(?<=[.#])|(?![\w]))\s*:?\s*(\d{{4,}})(?![\w]|[.,]\d)",
                  lambda m: f"{m.group(1)} {say_number(m.group(2), digit_by_digit=True)}", text)


def _ratios(text: str) -> str:
    """"1:80,000" -> "one in eighty thousand" (a concentration), "1:1" -> "one to one"; runs
    after `_times`, so what is left of "digits:digits" is no clock time."""
    def ratio(m):
        left, right = m.group(1), m.group(2)
        if left == "1" and int(right.replace(",", "")) >= 1000:
            return f"one in {say_number(right)}"
        if len(left) > 3 or len(right) > 3:  # "ISO 13485:2016" is a name and a year, not a ratio
            return m.group(0)
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
        amount, scale = m.group(2).replace(",", ""), MONEY_SCALES.get(m.group(3) or "")
        if scale:
            return f"{say_number(amount)} {scale} {many}"
        whole, _, cents = amount.partition(".")
        spoken = f"{_words(int(whole or 0))} {one if whole == '1' else many}"
        if cents and int(cents[:2].ljust(2, "0")):
            c = int(cents[:2].ljust(2, "0"))
            spoken += f" and {_words(c)} {sub_one if c == 1 else sub_many}"
        return spoken

    scales = "|".join(sorted(MONEY_SCALES, key=len, reverse=True))
    return re.sub(rf"([$\u00a3\u20ac])\s?({NUM})(?:\s?({scales})(?![\w]))?", money, text)


def _decades(text: str) -> str:
    """"the 1990s" -> "the nineteen nineties", "the '80s" -> "the eighties" (never "seconds")."""
    def decade(m):
        spoken = _year(m.group(1)) if len(m.group(1)) == 4 else _words(int(m.group(1)))
        return spoken[:-1] + "ies" if spoken.endswith("y") else spoken + "s"

    text = re.sub(r"(?<![\w.,])((?:1[0-9]|20)\d0)'?s(?![\w])", decade, text)
    return re.sub(r"(?:(?<=\bthe )|(?<=\bThe )|(?<![\w.,])')([1-9]0)'?s(?![\w])", decade, text)


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

    # "20%-30%", "5 mm - 10 mm": the unit once, after the range
    text = re.sub(rf"(?<![\w.,/])({NUM})\s*({any_unit})\s*(-|\u2013)\s*({NUM})\s*\2(?![\w])", r"\1\3\4 \2", text)
    pattern = rf"(?<![\w.,/])({NUM})(?:\s*(?:-|\u2013|to)\s*({NUM}))?\s*({any_unit})((?:/(?:{per}))*)(?![\w])"
    return re.sub(pattern, quantity, text)


def _multipliers(text: str) -> str:
    text = re.sub(rf"(?<![\w])[x\u00d7]\s?({NUM})(?![\w]|[.,]\d)", lambda m: f"times {say_number(m.group(1))}", text)
    text = re.sub(rf"(?<![\w.,])({NUM})\s*[-\u2013]\s*({NUM})\s?[x\u00d7](?![\w])",  # "2-4x/yr"
                  lambda m: f"{say_number(m.group(1))} to {say_number(m.group(2))} times", text)
    return re.sub(rf"(?<![\w.,])({NUM})\s?[x\u00d7](?![\w])", lambda m: f"{say_number(m.group(1))} times", text)


def _fractions(text: str) -> str:
    def fraction(m):
        num, den = int(m.group(1)), int(m.group(2))
        if den in FRACTIONS and 0 < num < den:
            return f"{_words(num)} {FRACTIONS[den][num > 1]}"
        return f"{_words(num)} over {_words(den)}"

    text = re.sub(r"(?<![\w/.])24/7(?![\w/])", "twenty four, seven", text)
    return re.sub(r"(?<![\w/.])(\d+)/(\d+)(?![\w/])", fraction, text)


def _negatives(text: str) -> str:
    # A minus opens a number after a space or "(", not after another number ("5 -10" is a range).
    return re.sub(r"(?<![\w.%])(?<!\d\s)[-\u2212](?=\d)", "minus ", text)


def _ranges(text: str) -> str:
    return re.sub(rf"(?<![\w.])({NUM})\s*[-\u2013]\s*({NUM})(?![\w])",
                  lambda m: f"{say_number(m.group(1))} to {say_number(m.group(2))}", text)


def _numbers(text: str) -> str:
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", lambda m: _ordinal(int(m.group(1))), text)
    text = re.sub(rf"(?i)\b({YEAR_WORDS})\s+(1[89]\d\d|20\d\d)\b", lambda m: f"{m.group(1)} {_year(m.group(2))}", text)
    # "Q1 2024", "H2 2025", "FY2023": a quarter, half or fiscal year is followed by a year
    text = re.sub(r"\b(Q[1-4]|H[12]|FY)\s*(20\d\d|19\d\d)\b", lambda m: f"{m.group(1)} {_year(m.group(2))}", text)
    text = re.sub(r"(?<![\w.])v(?=\d)", "version ", text)  # "v2.1.3"
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
    text = re.sub(r"(?<=[A-Za-z])\s+>\s+(?=[A-Z])", ", ", text)  # a menu path: "Settings > Accounts"
    per = "|".join(sorted(SLASH_PER, key=len, reverse=True))
    text = re.sub(rf"(?<=[A-Za-z0-9])\s?/\s?({per})s?\b", lambda m: f" per {SLASH_PER[m.group(1)]}", text)
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
    for step in (_web, _radiotelephony, _dates, _day_ranges, _times, _identifiers, _ratios, _every_hours, _money, _decades,
                 _negatives):
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
