"""Judging one output record by a case's checks, and the run conditions a known-failure mark matches."""

from __future__ import annotations

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


def judge(case: Case, record: dict[str, Any]) -> dict[str, checks.Verdict]:
    """Every check of the case on the record's output (and the judge replies it holds); a check that raises counts as failed."""
    out = checks.Output(record["output"], record["finish_reason"], record.get("judge") or {})
    verdicts = {}
    for spec in case.checks:
        try:
            verdicts[spec.id] = checks.run(spec.check, out, spec.params)
        except checks.UnknownCheck:
            raise
        except Exception as e:  # noqa: BLE001 - a broken check must not hide the rest of the report
            verdicts[spec.id] = checks.Verdict(False, f"check raised {type(e).__name__}: {e}")
    return verdicts
