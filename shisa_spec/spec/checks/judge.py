"""Check ``judge``: a rubric question asked of a judge model, its reply parsed into a verdict and a reason.

Checks are pure functions of an output, so the judge's reply is obtained before judging: the
output store asks the judge model after generation (``judge_request``) and puts the raw reply into
the record, the transcript and the cache, under ``judge_key(rubric)``. This check only parses it,
so a replayed transcript is judged without the judge model. A case never has a judge check as its
only check (the case loader refuses it): a model grading a model is evidence, not the spec.
"""

from __future__ import annotations

import hashlib
import re

from shisa_spec.spec.checks import Output, Verdict, register

JUDGE_PROMPT_VERSION = "1"  # bump when the prompt changes (part of the judge's cache key)

_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["rubric"],
    "properties": {"rubric": {"type": "string", "minLength": 1, "description": "a yes/no question about the answer; yes passes"}},
}

PROMPT = """You grade an AI assistant's answer against a rubric.

Question the assistant was asked:
{question}

The assistant's answer:
{answer}

Rubric (answer it about the assistant's answer): {rubric}

Reply with exactly two lines:
VERDICT: PASS or FAIL (PASS when the rubric is met)
REASON: one sentence"""

_VERDICT = re.compile(r"VERDICT\s*[:：]\s*\**\s*(PASS|FAIL)\b", re.I)
_REASON = re.compile(r"REASON\s*[:：]\s*(.+)", re.I)


def judge_key(rubric: str) -> str:
    """Where a rubric's reply sits in a record's ``judge`` mapping."""
    return hashlib.sha256(f"{JUDGE_PROMPT_VERSION}:{rubric}".encode()).hexdigest()[:16]


def has_reply(judged: dict | None, rubric: str) -> bool:
    """Whether a record's ``judge`` mapping holds the judge's reply to this rubric."""
    return bool(judged) and judge_key(rubric) in judged


def judge_prompt(question: str, answer: str, rubric: str) -> str:
    return PROMPT.format(question=question.strip(), answer=answer.strip() or "(empty)", rubric=rubric.strip())


def parse_reply(reply: str) -> tuple[bool | None, str]:
    """(passed, reason); passed is None when the reply holds no VERDICT line."""
    m = _VERDICT.search(reply)
    r = _REASON.search(reply)
    reason = " ".join(r.group(1).split()) if r else ""
    if m is None:
        return None, reason
    return m.group(1).upper() == "PASS", reason


@register("judge", _SCHEMA)
def judge(output: Output, rubric: str) -> Verdict:
    entry = output.judge.get(judge_key(rubric))
    if entry is None:
        return Verdict(False, "no judge reply for this rubric in the record: run live with a judge (--judge-model), or replay a transcript that has one",
                       {"rubric": rubric})
    reply = entry.get("reply", "") if isinstance(entry, dict) else str(entry)
    passed, reason = parse_reply(reply)
    evidence = {"rubric": rubric, "judge_model": entry.get("model") if isinstance(entry, dict) else None, "reply": reply}
    if passed is None:
        shown = " ".join(reply.split())[:200]
        return Verdict(False, f"the judge's reply has no 'VERDICT: PASS|FAIL' line: {shown!r}", evidence)
    who = evidence["judge_model"] or "the judge"
    return Verdict(passed, f"{who} says {'PASS' if passed else 'FAIL'} to {rubric!r}: {reason or '(no reason given)'}", evidence)
