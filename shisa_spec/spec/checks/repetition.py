"""Check ``no_repetition``: the answer does not degenerate into a loop.

Lines are compared by shape: NFKC, stripped, every digit run replaced by '#', so that
「19. 次郎は生後0日です。」 and 「20. 次郎は生後12日です。」 are the same line. The check fails
when one shape (with at least ``min_line_chars`` characters besides digits and spaces: a list of bare numbers such as
「1. 0」「2. 1」 is not a repeated phrase) occurs ``max_repeats`` times or
more, or when a substring of at least ``loop_min_chars`` characters repeats back to back
``max_repeats`` times (a loop inside one line; 0 turns this off).

Lines of complete JSON values and closed ``` code blocks are left out of the line count: data
repeats its line shapes by design ("age": 29, for each of five people); the loop search still
reads the whole text, and an unfinished (runaway) JSON or code block is counted as prose.
"""

from __future__ import annotations

import re
from collections import Counter

from shisa_spec.spec.checks import Output, Verdict, register
from shisa_spec.spec.extract import fenced_blocks, find_json
from shisa_spec.spec.normalize import nfkc

_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_repeats": {"type": "integer", "minimum": 2},
        "min_line_chars": {"type": "integer", "minimum": 0},
        "loop_min_chars": {"type": "integer", "minimum": 0},
    },
}


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", nfkc(line).strip())


def _words(shape: str) -> int:
    """Characters of a shape other than its digits and spaces: a line of bare numbers is not a phrase."""
    return sum(1 for c in shape if c != "#" and not c.isspace())


def _prose_lines(text: str) -> list[str]:
    spans = [(a, b) for _, _, a, b in fenced_blocks(text) if b - a > 6 and text[a:b].endswith("```")]
    spans += [(j.start, j.end) for j in find_json(text) if j.error is None and "\n" in j.raw]
    keep = [True] * len(text)
    for a, b in spans:
        keep[a:b] = [False] * (b - a)
    return "".join(c if k or c == "\n" else " " for c, k in zip(text, keep)).splitlines()


@register("no_repetition", _SCHEMA)
def no_repetition(output: Output, max_repeats: int = 5, min_line_chars: int = 4, loop_min_chars: int = 20) -> Verdict:
    shapes = Counter(s for s in map(_shape, _prose_lines(output.text)) if _words(s) >= min_line_chars)
    if shapes:
        shape, count = shapes.most_common(1)[0]
        if count >= max_repeats:
            return Verdict(False, f"the line shape {shape[:60]!r} occurs {count} times (limit {max_repeats - 1})", {"shape": shape, "count": count})
    if loop_min_chars:
        flat = re.sub(r"\d+", "#", nfkc(output.text))
        m = re.search(r"(.{%d,400}?)\1{%d,}" % (loop_min_chars, max_repeats - 1), flat, re.S)
        if m:
            unit = m.group(1)
            times = len(m.group()) // len(unit)
            return Verdict(False, f"the text {unit[:60]!r} repeats {times} times in a row", {"loop": unit, "count": times})
    top = shapes.most_common(1)[0][1] if shapes else 0
    return Verdict(True, f"no repeated lines or loops (most frequent line shape occurs {top} times)", {"max_count": top})
