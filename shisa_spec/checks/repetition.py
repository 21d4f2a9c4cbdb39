"""Check ``no_repetition``: the answer does not degenerate into a loop.

Lines are compared by shape: NFKC, stripped, every digit run replaced by '#', so that
「19. 次郎は生後0日です。」 and 「20. 次郎は生後12日です。」 are the same line. The check fails
when one shape (of at least ``min_line_chars`` characters) occurs ``max_repeats`` times or
more, or when a substring of at least ``loop_min_chars`` characters repeats back to back
``max_repeats`` times (a loop inside one line; 0 turns this off).
"""

from __future__ import annotations

import re
from collections import Counter

from shisa_spec.checks import Output, Verdict, register
from shisa_spec.normalize import nfkc

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


@register("no_repetition", _SCHEMA)
def no_repetition(output: Output, max_repeats: int = 5, min_line_chars: int = 4, loop_min_chars: int = 20) -> Verdict:
    shapes = Counter(s for s in map(_shape, output.text.splitlines()) if len(s) >= min_line_chars)
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
