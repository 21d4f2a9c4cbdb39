"""JSON checks: a valid document (against a JSON Schema), the names it holds, the numbers it holds.

JSON is found by ``extract.find_json`` (```json fences or prose, strictly parsed); structure is
judged by ``jsonschema`` (draft 2020-12).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import jsonschema

from shisa_spec.spec.checks import Output, Verdict, register
from shisa_spec.spec.paths import FIXTURES
from shisa_spec.spec.checks.content import GROUPS_SCHEMA, match_groups
from shisa_spec.spec.extract import JsonFound, find_json, json_scalars, json_strings, numbers
from shisa_spec.spec.normalize import fold, nfkc

SCHEMAS = FIXTURES / "schemas"

_VALID_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["schema"],
    "properties": {
        "schema": {"type": ["string", "object"], "minLength": 1},
        "multiple": {"type": "boolean"},
        "forbid_unicode_escapes": {"type": "boolean"},
    },
}
_ESCAPE_RE = re.compile(r"(?<!\\)(?:\\\\)*\\u([0-9a-fA-F]{4})")


def _path(err: jsonschema.ValidationError) -> str:
    out = "$"
    for p in err.absolute_path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _load_schema(schema: str | dict[str, Any]) -> dict[str, Any]:
    """A schema dict as given, or read from fixtures/schemas/<name> (callers outside the case loader)."""
    return schema if isinstance(schema, dict) else json.loads((SCHEMAS / schema).read_text(encoding="utf-8"))


def documents(found: list[JsonFound], multiple: bool) -> list[Any]:
    """The JSON documents an answer gives: one (the largest), or with ``multiple`` every one.

    With ``multiple``, a single array is the list of documents and a single object a list of one.
    """
    values = [f.value for f in found]
    if not multiple:
        return [max(found, key=lambda f: f.end - f.start).value]
    if len(values) == 1:
        return values[0] if isinstance(values[0], list) else values
    return values


@register("json_valid", _VALID_SCHEMA)
def json_valid(output: Output, schema: str | dict[str, Any], multiple: bool = False, forbid_unicode_escapes: bool = False) -> Verdict:
    try:
        schema = _load_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
    except (OSError, json.JSONDecodeError) as e:
        return Verdict(False, f"cannot read the JSON Schema {schema!r}: {e}")
    found = find_json(output.text)
    if not found:
        return Verdict(False, "no JSON object or array in the answer", {"text_start": output.text[:80]})
    chosen = found if multiple else [max(found, key=lambda f: f.end - f.start)]
    broken = [f for f in chosen if f.error]
    if broken:
        b = broken[0]
        return Verdict(False, f"the JSON does not parse: {b.error} (in {b.raw[:60]!r})", {"error": b.error})
    if forbid_unicode_escapes:
        esc = [m.group() for f in chosen for m in _ESCAPE_RE.finditer(f.raw) if int(m.group(1), 16) >= 0x80]
        if esc:
            return Verdict(False, f"the JSON escapes non-ASCII text ({', '.join(esc[:3])}) instead of writing UTF-8", {"escapes": esc[:10]})
    docs = documents(chosen, multiple)
    if multiple and not docs:
        return Verdict(False, "the answer's JSON is an empty list: no documents", {"documents": 0})
    for i, doc in enumerate(docs):
        err = jsonschema.exceptions.best_match(validator.iter_errors(doc))
        if err is not None:
            which = f"document {i + 1} of {len(docs)} " if multiple else ""
            return Verdict(False, f"{which}at {_path(err)}: {err.message[:200]}", {"path": _path(err), "documents": len(docs)})
    title = schema.get("title", "the schema")
    return Verdict(True, f"{len(docs)} JSON document(s) valid against {title}", {"documents": len(docs)})


def _valid_values(text: str) -> list[Any]:
    return [f.value for f in find_json(text) if f.error is None]


_MENTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["all_of"],
    "properties": {"all_of": GROUPS_SCHEMA, "case_sensitive": {"type": "boolean"}},
}


@register("json_mentions", _MENTIONS_SCHEMA)
def json_mentions(output: Output, all_of: list[list[str]], case_sensitive: bool = False) -> Verdict:
    values = _valid_values(output.text)
    if not values:
        return Verdict(False, "no parseable JSON in the answer, so it names no one", {})
    strings = [fold(s, case_sensitive) for v in values for s in json_strings(v)]
    found, missing = match_groups(strings, all_of, case_sensitive)
    ev = {"found": found, "missing": missing, "strings": strings[:40]}
    if missing:
        names = "; ".join("one of " + "/".join(g) for g in missing)
        return Verdict(False, f"the JSON's strings lack {names}" + (f" (found {', '.join(found)})" if found else ""), ev)
    return Verdict(True, f"the JSON names {', '.join(found)}", ev)


_VALUES_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expected"],
    "properties": {"expected": {"type": "array", "minItems": 1, "items": {"type": "number"}}},
}
_AGE_WORDS = re.compile(r"(?:years?|yrs?)(?: old)?", re.I)


def numeric_value(v: Any) -> float | None:
    """A JSON number, or a string that is just a number with an optional unit ("29", "29歳", "29 years old")."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if not isinstance(v, str):
        return None
    s = nfkc(v).strip()
    nums = numbers(s)
    if len(nums) != 1 or nums[0].start != 0:
        return None
    rest = s[nums[0].end :].strip()
    return nums[0].value if rest in ("", nums[0].unit) or _AGE_WORDS.fullmatch(rest) else None


@register("json_values", _VALUES_SCHEMA)
def json_values(output: Output, expected: list[float]) -> Verdict:
    values = _valid_values(output.text)
    if not values:
        return Verdict(False, f"no parseable JSON in the answer; expected the values {expected}", {})
    nums = [x for v in values for s in json_scalars(v) if (x := numeric_value(s)) is not None]
    missing = [e for e in expected if not any(math.isclose(x, e, rel_tol=1e-9, abs_tol=1e-9) for x in nums)]
    ev = {"found": nums[:40], "missing": missing}
    if missing:
        return Verdict(False, f"the JSON lacks the value(s) {missing}; its numbers are {nums[:20]}", ev)
    return Verdict(True, f"the JSON holds {expected}", ev)
