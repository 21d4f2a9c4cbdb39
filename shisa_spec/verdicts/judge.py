"""Judging one output record by a case's checks, and the run conditions a known-failure mark matches."""

from __future__ import annotations

import json
from typing import Any

from shisa_spec.spec import checks
from shisa_spec.spec.cases import Case


def record_conditions(case: Case, record: dict[str, Any] | None) -> dict[str, str]:
    """The run conditions a known-failure ``when`` is matched against, read from a transcript record."""
    rec = record or {}
    prov = rec.get("provenance") or {}
    return {
        "quantize": str(prov.get("quantize") or "none"),
        "prompt_style": str(rec.get("prompt_style") or prov.get("prompt_style") or case.prompt_style),
        "model": str(prov.get("model") or ""),
    }


def output_of(record: dict[str, Any]) -> checks.Output:
    """What a check sees of a record: the output, why it ended, and the judge replies it holds.
    The pytest front end and the gate both build it here, so they cannot judge different things."""
    return checks.Output(record["output"], record["finish_reason"], record.get("judge") or {})


def sample_key(record: dict[str, Any]) -> tuple[str, str, str]:
    """Records with equal keys get equal verdicts (checks are pure): judge each distinct one once."""
    return record["output"], record["finish_reason"], json.dumps(record.get("judge") or {}, sort_keys=True)


def judge(case: Case, record: dict[str, Any]) -> dict[str, checks.Verdict]:
    """Every check of the case on the record's output (and the judge replies it holds); a check that raises counts as failed."""
    out = output_of(record)
    verdicts = {}
    for spec in case.checks:
        try:
            verdicts[spec.id] = checks.run(spec.check, out, spec.params)
        except checks.UnknownCheck:
            raise
        except Exception as e:  # noqa: BLE001 - a broken check must not hide the rest of the report
            verdicts[spec.id] = checks.Verdict(False, f"check raised {type(e).__name__}: {e}")
    return verdicts
