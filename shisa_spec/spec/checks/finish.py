"""Check ``eos``: the model ended its answer itself rather than running into the token budget."""

from __future__ import annotations

from shisa_spec.spec.checks import Output, Verdict, register

_SCHEMA = {"type": "object", "additionalProperties": False, "properties": {}}


@register("eos", _SCHEMA)
def eos(output: Output) -> Verdict:
    reason = output.finish_reason
    if reason == "eos":
        return Verdict(True, "the model ended its answer (end-of-sequence token)", {"finish_reason": reason})
    if reason == "length":
        return Verdict(False, "the answer was cut off at the token budget (finish_reason 'length')", {"finish_reason": reason})
    return Verdict(False, f"unknown finish_reason {reason!r}: expected 'eos' (or 'length' for a cut-off answer)", {"finish_reason": reason})
