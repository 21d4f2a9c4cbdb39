"""Text normalisation shared by extraction and checks: NFKC, numerals, scripts, term matching.

NFKC (``unicodedata``) folds full-width digits and letters (``２４`` -> ``24``, ``：`` -> ``:``);
``parse_number`` reads one numeral token: ASCII digits with comma thousands and decimals,
fractions (``5/2``), kanji numerals (``二``, ``五十``, ``千百``, ``二〇二四``) and mixed forms
(``2万``, ``1億2000万``).
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
KANJI_SMALL = {"十": 10, "百": 100, "千": 1000}
KANJI_BIG = {"万": 10**4, "億": 10**8, "兆": 10**12}
KANJI_NUMERAL_CHARS = "".join([*KANJI_DIGITS, *KANJI_SMALL, *KANJI_BIG])

_ASCII_RE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?")
_FRACTION_RE = re.compile(r"^\s*(\d+)\s*[/⁄]\s*(\d+)\s*$")


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _ascii_value(tok: str) -> int | float:
    tok = tok.replace(",", "")
    return float(tok) if "." in tok else int(tok)


def parse_kanji_numeral(s: str) -> int | float | None:
    """Value of a kanji (or kanji/ASCII mixed) numeral, or None if it is not well formed."""
    # Hand-written: no maintained kanji-numeral library is in our dependency set.
    s = nfkc(s)
    if not s:
        return None
    tokens: list[tuple[str, int | float]] = []
    i = 0
    while i < len(s):
        m = _ASCII_RE.match(s, i)
        if m:
            tokens.append(("d", _ascii_value(m.group())))
            i = m.end()
            continue
        ch = s[i]
        if ch in KANJI_DIGITS:
            tokens.append(("k", KANJI_DIGITS[ch]))
        elif ch in KANJI_SMALL:
            tokens.append(("s", KANJI_SMALL[ch]))
        elif ch in KANJI_BIG:
            tokens.append(("b", KANJI_BIG[ch]))
        else:
            return None
        i += 1
    kinds = {k for k, _ in tokens}
    if kinds <= {"k"}:  # positional: 二〇二四 -> 2024
        return int("".join(str(v) for _, v in tokens))
    total: int | float = 0
    section: int | float = 0
    current: int | float | None = None
    last_small = last_big = float("inf")
    for kind, v in tokens:
        if kind in "kd":
            if current is not None:  # two digit groups with no multiplier between: 二三十
                return None
            current = v
        elif kind == "s":
            if v >= last_small:
                return None
            section += (1 if current is None else current) * v
            last_small, current = v, None
        else:
            if v >= last_big:
                return None
            unit = section + (current or 0)
            if unit == 0:
                return None  # 万 alone or 一億万
            total += unit * v
            section, current, last_small, last_big = 0, None, float("inf"), v
    value = total + section + (current or 0)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def parse_number(s: str) -> int | float | None:
    """Value of one numeral token (``1,100``, ``3.5``, ``5/2``, ``２４``, ``五十``, ``2万``), else None."""
    s = nfkc(s).strip()
    m = _FRACTION_RE.match(s)
    if m:
        num, den = int(m.group(1)), int(m.group(2))
        if den == 0:
            return None
        f = Fraction(num, den)
        return int(f) if f.denominator == 1 else float(f)
    m = _ASCII_RE.fullmatch(s)
    if m:
        return _ascii_value(s)
    if any(c in KANJI_NUMERAL_CHARS for c in s):
        return parse_kanji_numeral(s)
    return None


def is_japanese_char(ch: str) -> bool:
    """Hiragana, katakana (incl. ー) or a CJK ideograph (incl. 々), by Unicode character name."""
    name = unicodedata.name(ch, "")
    return name.startswith(("HIRAGANA", "KATAKANA", "CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")) or ch == "々"


def is_kana(ch: str) -> bool:
    """Hiragana or katakana (incl. ー), by Unicode character name."""
    return unicodedata.name(ch, "").startswith(("HIRAGANA", "KATAKANA"))


def is_latin_letter(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith("LATIN") and ch.isalpha()


_KATA_TO_HIRA = {c: c - 0x60 for c in range(0x30A1, 0x30F7)}


def fold(text: str, case_sensitive: bool = False) -> str:
    """NFKC, katakana as hiragana, and casefold unless case_sensitive: the form both sides are compared in.

    Japanese writes one word in either kana (クビ, くび; タコ, たこ), so terms match in both.
    """
    t = nfkc(text).translate(_KATA_TO_HIRA)
    return t if case_sensitive else t.casefold()


def contains_term(haystack: str, term: str) -> bool:
    """Whether a folded ``term`` occurs in a folded ``haystack``.

    An end of the term that is an ASCII letter or digit must sit on a word boundary
    ("ate" does not match "created"); Japanese terms match anywhere, as Japanese has no spaces.
    """
    if not term:
        return False
    left = r"(?<![A-Za-z0-9])" if term[0].isascii() and term[0].isalnum() else ""
    right = r"(?![A-Za-z0-9])" if term[-1].isascii() and term[-1].isalnum() else ""
    return re.search(left + re.escape(term) + right, haystack) is not None
