"""Transcripts: one JSON Lines record per case, written from live runs and replayed through the spec.

A record needs ``case``, ``output`` and ``finish_reason``; live runs add provenance (model,
revision, dtype, device, library versions, seed, generation settings, rendered prompt) and
whether the output came from the generation cache.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

FINISH_REASONS = ("eos", "length")


class TranscriptError(ValueError):
    """A transcript that cannot be replayed; the message is one line naming file and line."""


def validate_record(rec: Any, where: str) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise TranscriptError(f"{where}: a record must be a JSON object")
    for key in ("case", "output", "finish_reason"):
        if key not in rec:
            raise TranscriptError(f"{where}: record has no {key!r}")
    if not isinstance(rec["case"], str) or not rec["case"]:
        raise TranscriptError(f"{where}: 'case' must be a non-empty string")
    if not isinstance(rec["output"], str):
        raise TranscriptError(f"{where}: 'output' of case {rec['case']!r} must be a string")
    if rec["finish_reason"] not in FINISH_REASONS:
        raise TranscriptError(
            f"{where}: 'finish_reason' of case {rec['case']!r} is {rec['finish_reason']!r}; expected 'eos' or 'length'"
        )
    return rec


def read(path: str | Path) -> dict[str, dict[str, Any]]:
    """Records by case id; a malformed line or a case given twice is a TranscriptError."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TranscriptError(f"{p}: no such transcript") from None
    except UnicodeDecodeError as e:
        raise TranscriptError(f"{p}: not UTF-8 ({e.reason} at byte {e.start})") from None
    records: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise TranscriptError(f"{where}: not JSON ({e.msg} at column {e.colno})") from None
        validate_record(rec, where)
        if rec["case"] in records:
            raise TranscriptError(f"{where}: case {rec['case']!r} appears twice")
        records[rec["case"]] = rec
    return records


def write(path: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    """Write records atomically (a crash never leaves a half-written transcript)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
