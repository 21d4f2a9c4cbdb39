"""Number checks: the final answer, a sequence, numbers present, recipe quantities.

Numbers come from ``extract.numbers`` (digits, full-width digits, kanji numerals, fractions,
comma thousands); these functions only judge them.
"""

from __future__ import annotations

import math
import re

from shisa_spec.spec.checks import Output, Verdict, register
from shisa_spec.spec.extract import Number, final_answer, numbers, sentences, unit_in
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
        "subject": {"type": "array", "items": {"type": "string", "minLength": 1}},
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
    """The number a grader reads as the final answer when the answer asserts nothing else, and where it came from.

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


# Statements that assert an answer wherever they stand (not only at the end).
_STRONG = re.compile(r"最終回答|最終的な答え|最終的に(?:は)?|最終的な|答えは|答え\s*:|答\s*:|正解は|正解\s*:|\bthe answer is\b|\bfinal answer\b|\banswer\s*:", re.I)
# After the subject: the words that assign it a value (ボールは, 残りのりんごの数:, the ball costs).
_ASSIGN = re.compile(r"\s*(?:は|が|:|=|\bcosts?\b|\bis\b|\bwas\b|\b(?:would|must|should|will) be\b|\bequals\b|\bcomes to\b)\s*", re.I)
_CLAUSE_END = re.compile(r"[、。,;!?！？\n(（]|\band\b|\bbut\b|\bwhich\b")
_COMPARE = re.compile(r"より|\bthan\b|\bmore\b|\bless\b|\bcheaper\b|差")
_COMPUTE = re.compile(r"から|引|足|減|\s[-−]\s|[+×÷]|\bplus\b|\bminus\b")


def _scaled(n: Number, units: list[str] | None, unit_scale: dict[str, float] | None) -> float:
    scale = {nfkc(k): v for k, v in (unit_scale or {}).items()}.get(_has_unit(n, units) or "", 1)
    return n.value * scale


def _pick_in(region: list[Number], units: list[str] | None, text: str, a: int) -> Number | None:
    """The value a clause assigns: after its last '=', else its number with a unit (the last one when it computes)."""
    if not region:
        return None
    eq = text.rfind("=", a, region[-1].start)
    if eq >= 0:
        after = [n for n in region if n.start > eq]
        region = after or region
    with_unit = [n for n in region if _has_unit(n, units)]
    computing = _COMPUTE.search(text[a : region[-1].start]) is not None
    if with_unit:
        return with_unit[-1] if computing else with_unit[0]
    return region[-1] if eq >= 0 or computing else region[0]


def subject_statements(text: str, subject: list[str], units: list[str] | None) -> list[tuple[Number, str]]:
    """Numbers the answer assigns to the question's subject: 「ボールは50円です」, "the ball costs $0.50",
    「残りのりんごの数：5 - 2 = 3個」, and the counted form 「2人の子供」 / "2 children".

    A subject named beside another (バットとボール, "a bat and a ball") or compared (ボールより) is
    not a statement of its value.
    """
    t = nfkc(text)
    low = t.casefold()
    nums = [n for n in numbers(t) if not n.enumerator]
    out: list[tuple[Number, str]] = []
    for term in sorted({nfkc(x).casefold() for x in subject}, key=len, reverse=True):
        left = r"(?<![A-Za-z])" if term[0].isascii() else ""
        right = r"(?![A-Za-z])" if term[-1].isascii() else ""
        for m in re.finditer(left + re.escape(term) + right, low):
            before = low[max(0, m.start() - 8) : m.start()]
            if re.search(r"(?:[とや]|\band (?:a |the )?)$", before):
                continue
            # 「残りのりんごの数は」: the subject may be followed by a short の-phrase before the particle
            k = m.end()
            mod = re.match(r"の[^\s、。,.!?！？:は が]{1,8}?(?=は|が|:)", t[k:])
            if mod:
                k += mod.end()
            asg = _ASSIGN.match(t, k)
            if asg and asg.end() > k:
                end_m = _CLAUSE_END.search(t, asg.end())
                end = end_m.start() if end_m else len(t)
                region = [n for n in nums if asg.end() <= n.start < end]
                if region and not _COMPARE.search(t[asg.end() : region[0].start]):
                    n = _pick_in(region, units, t, asg.end())
                    if n is not None:
                        out.append((n, f"the statement {t[m.start() : end][:60].strip()!r}"))
                        continue
            # counted form: the number and its unit right before the subject (2人の子供, 2 children)
            prev = [n for n in nums if n.end <= m.start() and len(t[n.end : m.start()].strip()) <= 4]
            if prev:
                n = prev[-1]
                gap = t[n.end : m.start()]
                if _has_unit(n, units) or re.fullmatch(r"\s*", gap):
                    out.append((n, f"the statement {t[n.start : m.end()]!r}"))
    return out


def asserted_answers(text: str, units: list[str] | None, subject: list[str] | None) -> list[tuple[Number, str]]:
    """Every answer the text asserts, in order: statements after an answer marker (答えは, the answer is,
    最終回答, wherever they stand), statements of the subject's value (stated first and explained, or
    restated at the end), and the last sentence's answer (したがって…, so…, ``x = 50``)."""
    t = nfkc(text)
    nums = [n for n in numbers(t) if not n.enumerator]
    found: list[tuple[Number, str]] = []
    for s in sentences(t):
        hits = list(_STRONG.finditer(s.text))
        if not hits:
            continue
        a = s.start + hits[-1].end()
        region = [n for n in nums if a <= n.start < s.end]
        n = _pick_in(region, units, t, a)
        if n is not None:
            found.append((n, f"answer sentence {s.text.strip()[:60]!r}"))
    if subject:
        found += subject_statements(t, subject, units)
    last, where = pick_final(t, units)
    ans = final_answer(t)
    if last is not None and ans is not None:
        mentions_subject = not subject or any(nfkc(x).casefold() in ans.sentence.casefold() for x in subject)
        if mentions_subject or not found:
            found.append((last, where))
    return sorted(found, key=lambda f: f[0].start)


@register("final_number", _FINAL_SCHEMA)
def final_number(
    output: Output,
    expected: float,
    units: list[str] | None = None,
    unit_scale: dict[str, float] | None = None,
    tolerance: float = 1e-9,
    subject: list[str] | None = None,
) -> Verdict:
    claims = asserted_answers(output.text, units, subject)
    values: dict[float, tuple[Number, str]] = {}
    for n, w in claims:
        values.setdefault(round(_scaled(n, units, unit_scale), 9), (n, w))
    if len(values) > 1:
        (a, wa), (b, wb) = list(values.values())[:2]
        ev = {"expected": expected, "asserted": [_scaled(n, units, unit_scale) for n, _ in values.values()]}
        return Verdict(False, f"the answer asserts two different answers: {a.raw} ({wa}) and {b.raw} ({wb}); expected {_fmt(expected)}", ev)
    if values:
        num, where = next(iter(values.values()))
    else:
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
    "個", "个", "本", "枚", "杯", "玉", "切れ", "切", "片", "粒", "尾", "匹", "束", "袋", "缶", "株", "房", "合", "かけ",
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
