"""normalize: NFKC, numeral parsing (digits, full-width, kanji, mixed), scripts, term matching."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shisa_spec.spec.normalize import contains_term, fold, is_japanese_char, is_latin_letter, nfkc, parse_kanji_numeral, parse_number

_DIGITS = "〇一二三四五六七八九"


def to_kanji(n: int, explicit_one: bool = False) -> str:
    """Render n in kanji numerals (the test's own renderer, independent of the parser)."""
    if n == 0:
        return "〇"
    out = ""
    for big, big_name in ((10**12, "兆"), (10**8, "億"), (10**4, "万"), (1, "")):
        sec, n = divmod(n, big)
        if not sec:
            continue
        for small, small_name in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
            d, sec = divmod(sec, small)
            if d:
                out += ("" if d == 1 and small_name and not explicit_one else _DIGITS[d]) + small_name
        out += big_name
    return out


def to_mixed(n: int) -> str:
    """2万5000 style: arabic digit groups with 万/億/兆."""
    out = ""
    for big, name in ((10**12, "兆"), (10**8, "億"), (10**4, "万"), (1, "")):
        sec, n = divmod(n, big)
        if sec:
            out += f"{sec}{name}"
    return out or "0"


def full_width(n: int) -> str:
    return "".join(chr(0xFF10 + int(d)) for d in str(n))


@pytest.mark.parametrize(
    "text,value",
    [
        ("二", 2), ("五十", 50), ("十二", 12), ("千百", 1100), ("2万", 20000), ("〇", 0), ("1,100", 1100),
        ("5/2", 2.5), ("1/2", 0.5), ("4/2", 2), ("3.5", 3.5), ("２４", 24), ("１，１００", 1100), ("二〇二四", 2024),
        ("1億2000万", 120_000_000), ("一万二千三百四十五", 12345), ("三百万五千", 3_005_000), ("1.5万", 15000),
        ("百二十三", 123), ("一千", 1000),
    ],
)  # fmt: skip
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "二人", "万", "百十百", "十百", "二三十", "1/0", "1,10", "一億万", "x5"])
def test_parse_number_rejects_non_numerals(text):
    assert parse_number(text) is None


def test_nfkc_folds_full_width():
    assert nfkc("２４歳：ＡＢＣ") == "24歳:ABC"


@given(st.integers(min_value=0, max_value=10**16 - 1), st.booleans())
def test_kanji_numerals_round_trip(n, explicit_one):
    assert parse_kanji_numeral(to_kanji(n, explicit_one)) == n
    assert parse_number(to_kanji(n, explicit_one)) == n


@given(st.integers(min_value=0, max_value=10**16 - 1))
def test_full_width_and_mixed_round_trip(n):
    assert parse_number(full_width(n)) == n
    assert parse_number(to_mixed(n)) == n
    assert parse_number(f"{n:,}") == n


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=1, max_value=10**6))
def test_fractions(a, b):
    assert parse_number(f"{a}/{b}") == pytest.approx(a / b)


@given(st.text(max_size=40))
def test_parse_number_never_raises(s):
    parse_number(s)


def test_scripts():
    assert all(map(is_japanese_char, "ひらがなカタカナー漢字々"))
    assert not any(map(is_japanese_char, "abc123、。！A"))
    assert all(map(is_latin_letter, "abcÉé")) and not any(map(is_latin_letter, "1あ_"))


def test_contains_term_word_boundaries_for_latin_only():
    assert contains_term(fold("Tom ate it."), "ate")
    assert not contains_term(fold("It was created."), "ate")
    assert contains_term(fold("たこ焼きのタコ"), fold("タコ"))
    assert contains_term(fold("ＷＡＳＨＩＮＧＴＯＮ's"), fold("Washington"))
    assert not contains_term("anything", "")


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["個", "人", "円", "つ"]))
def test_numerals_in_running_text_are_extracted(n, unit):
    from shisa_spec.spec.extract import numbers

    for rendered in (to_kanji(n), full_width(n), f"{n:,}"):
        found = numbers(f"答えは{rendered}{unit}です。")
        assert [(x.value, x.unit) for x in found] == [(n, unit)], rendered
