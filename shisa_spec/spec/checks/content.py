"""Check ``mentions``: the answer mentions one alternative of every group of terms.

Both sides are NFKC-normalised (and casefolded unless ``case_sensitive``); ``ignore`` strings are
removed first (たこ焼き must not count as たこ). ASCII-word ends match on word boundaries.
"""

from __future__ import annotations

from shisa_spec.spec.checks import Output, Verdict, register
from shisa_spec.spec.normalize import contains_term, fold

GROUPS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
}
_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["all_of"],
    "properties": {
        "all_of": GROUPS_SCHEMA,
        "ignore": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "case_sensitive": {"type": "boolean"},
    },
}


def match_groups(haystacks: list[str], all_of: list[list[str]], case_sensitive: bool = False) -> tuple[list[str], list[list[str]]]:
    """(the alternative found for each satisfied group, the groups with none found)."""
    found, missing = [], []
    for group in all_of:
        hit = next((alt for alt in group if any(contains_term(h, fold(alt, case_sensitive)) for h in haystacks)), None)
        if hit is None:
            missing.append(group)
        else:
            found.append(hit)
    return found, missing


@register("mentions", _SCHEMA)
def mentions(output: Output, all_of: list[list[str]], ignore: list[str] | None = None, case_sensitive: bool = False) -> Verdict:
    text = fold(output.text, case_sensitive)
    for s in sorted((fold(x, case_sensitive) for x in ignore or []), key=len, reverse=True):
        text = text.replace(s, " ")
    found, missing = match_groups([text], all_of, case_sensitive)
    ev = {"found": found, "missing": missing}
    if not text.strip():
        return Verdict(False, "empty answer: mentions none of the expected terms", ev)
    if missing:
        names = "; ".join("one of " + "/".join(g) for g in missing)
        return Verdict(False, f"missing {names}" + (f" (found {', '.join(found)})" if found else ""), ev)
    return Verdict(True, f"mentions {', '.join(found)}", ev)
