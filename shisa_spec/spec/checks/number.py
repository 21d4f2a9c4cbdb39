"""Number checks: the final answer, a sequence, numbers present, recipe quantities.

Numbers come from ``extract.numbers`` (digits, full-width digits, kanji numerals, fractions,
comma thousands); these functions only judge them.
"""

from __future__ import annotations

import math

from shisa_spec.spec.checks import Output, Verdict, register
from shisa_spec.spec.extract import Number, final_answer, numbers, unit_in
from shisa_spec.spec.normalize import nfkc

_NUM = {"type": "number"}
_FINAL_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expected"],
    "properties": {
        "expected": _NUM,
        "units": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "unit_scale": {"type": "object", "additionalProperties": {"type": "number", "exclusiveMinimum": 0}},
        "tolerance": {"type": "number", "minimum": 0},
    },
}


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _has_unit(n: Number, units: list[str] | None) -> str | None:
    """The unit that makes ``n`` a stated quantity: one of ``units``, a '$' prefix, or any known unit."""
    if units:
        return unit_in(n, units) or ("$" if n.prefix == "$" else None)
    return n.unit or n.prefix


def pick_final(text: str, units: list[str] | None) -> tuple[Number | None, str]:
    """The number a grader reads as the final answer, and where it came from.

    In the last answer sentence (after its marker): the first number with a unit (answers state
    the quantity first: "the ball costs $0.05 and the bat $1.05"), else the last number (an
    equation chain ends with its result). If that sentence has no number, the first number after
    the marker. Without any marker: the last number with a unit, else the last number.
    """
    t_nums = numbers(text)
    ans = final_answer(text)
    if ans is not None:
        region = [n for n in t_nums if ans.start <= n.start < ans.end and not n.enumerator]
        with_unit = [n for n in region if _has_unit(n, units)]
        if with_unit:
            return with_unit[0], f"answer sentence {ans.sentence[:80]!r}"
        if region:
            return region[-1], f"answer sentence {ans.sentence[:80]!r}"
        later = [n for n in t_nums if n.start >= ans.start and not n.enumerator]
        if later:
            return next((n for n in later if _has_unit(n, units)), later[0]), f"after the answer marker {ans.marker!r}"
    plain = [n for n in t_nums if not n.enumerator] or t_nums
    with_unit = [n for n in plain if _has_unit(n, units)]
    if with_unit:
        return with_unit[-1], "the last number with a unit (no answer marker)"
    if plain:
        return plain[-1], "the last number (no answer marker, no unit)"
    return None, "no number in the answer"


@register("final_number", _FINAL_SCHEMA)
def final_number(
    output: Output,
    expected: float,
    units: list[str] | None = None,
    unit_scale: dict[str, float] | None = None,
    tolerance: float = 1e-9,
) -> Verdict:
    num, where = pick_final(output.text, units)
    if num is None:
        return Verdict(False, f"no number found in the answer; expected {_fmt(expected)}", {"expected": expected})
    unit = _has_unit(num, units)
    scale = {nfkc(k): v for k, v in (unit_scale or {}).items()}.get(unit or "", 1)
    value = num.value * scale
    ev = {"expected": expected, "found": value, "raw": num.raw, "unit": unit, "where": where}
    shown = f"{num.raw}{' ' + unit if unit else ''}" + (f" (= {_fmt(value)})" if scale != 1 or num.raw != str(num.value) else "")
    if math.isclose(value, expected, rel_tol=tolerance, abs_tol=tolerance):
        return Verdict(True, f"final answer {shown} from {where} equals {_fmt(expected)}", ev)
    return Verdict(False, f"final answer {shown} from {where}; expected {_fmt(expected)}", ev)


_SEQ_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expected"],
    "properties": {
        "expected": {"type": "array", "minItems": 1, "items": _NUM},
        "also_accept": {"type": "array", "items": {"type": "array", "minItems": 1, "items": _NUM}},
    },
}


def _contains_run(values: list[float], seq: list[float]) -> bool:
    k = len(seq)
    return any(values[i : i + k] == seq for i in range(len(values) - k + 1))


@register("number_sequence", _SEQ_SCHEMA)
def number_sequence(output: Output, expected: list[float], also_accept: list[list[float]] | None = None) -> Verdict:
    nums = numbers(output.text)
    variants = [[n.value for n in nums], [n.value for n in nums if not n.enumerator]]  # "1. 0\n2. 1\n…" lists too
    accepted = [expected, *(also_accept or [])]
    for seq in accepted:
        if any(_contains_run(v, list(seq)) for v in variants):
            return Verdict(True, f"the answer contains the sequence {seq}", {"found": variants[0][:40], "matched": seq})
    shown = ", ".join(_fmt(v) for v in variants[0][:20]) or "no numbers"
    return Verdict(False, f"expected the sequence {expected} in order; the answer's numbers are: {shown}", {"found": variants[0][:40]})


_PRESENT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expected"],
    "properties": {"expected": {"type": "array", "minItems": 1, "items": _NUM}},
}


@register("numbers_present", _PRESENT_SCHEMA)
def numbers_present(output: Output, expected: list[float]) -> Verdict:
    values = [n.value for n in numbers(output.text)]
    missing = [e for e in expected if not any(math.isclose(v, e, rel_tol=1e-9, abs_tol=1e-9) for v in values)]
    ev = {"found": values[:40], "missing": missing}
    if missing:
        return Verdict(False, f"missing the number(s) {', '.join(map(_fmt, missing))}; found {', '.join(map(_fmt, values[:20])) or 'none'}", ev)
    return Verdict(True, f"all of {', '.join(map(_fmt, expected))} appear", ev)


# Units an ingredient amount is measured in (after the number), and those written before it (大さじ2).
INGREDIENT_UNITS = {
    "g", "kg", "mg", "ml", "mL", "l", "L", "cc", "oz", "lb", "lbs", "cup", "cups", "tbsp", "tsp",
    "個", "本", "枚", "杯", "玉", "切れ", "切", "片", "粒", "尾", "匹", "束", "袋", "缶", "株", "房", "合", "かけ",
    "グラム", "キロ", "キログラム", "リットル", "ミリリットル", "カップ", "パック", "個分", "滴", "つ",
}  # fmt: skip
INGREDIENT_PREFIXES = {"大さじ", "小さじ", "カップ"}

_QTY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["min_count"],
    "properties": {"min_count": {"type": "integer", "minimum": 1}},
}


def ingredient_amounts(text: str) -> list[str]:
    """Amounts like 200g, 2個, 大さじ1, 1/2カップ, 卵二個 (少々 and 適量 have no number, so never count)."""
    out = []
    for n in numbers(text):
        if n.enumerator:
            continue
        if n.unit in INGREDIENT_UNITS:
            out.append(f"{n.raw}{n.unit}")
        elif n.prefix in INGREDIENT_PREFIXES:
            out.append(f"{n.prefix}{n.raw}")
    return out


@register("quantities", _QTY_SCHEMA)
def quantities(output: Output, min_count: int) -> Verdict:
    amounts = ingredient_amounts(output.text)
    ev = {"amounts": amounts}
    if len(amounts) >= min_count:
        return Verdict(True, f"{len(amounts)} ingredient amounts ({', '.join(amounts[:8])})", ev)
    return Verdict(False, f"only {len(amounts)} ingredient amounts with a number and unit (need {min_count})" + (f": {', '.join(amounts)}" if amounts else ""), ev)
