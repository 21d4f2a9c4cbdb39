"""Transcripts: one JSON Lines record per (case, sample), written from live runs and replayed through the spec.

A record needs ``case``, ``output`` and ``finish_reason``, and ``sample`` (0-based) in multi-sample
files; live runs add provenance (model, revision, dtype, device, library versions, seed, generation
settings, rendered prompt) and whether the output came from the generation cache. A file whose
records have no ``sample`` field holds one sample per case (the document's transcript, older runs).
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
    if "sample" in rec and (not isinstance(rec["sample"], int) or isinstance(rec["sample"], bool) or rec["sample"] < 0):
        raise TranscriptError(f"{where}: 'sample' of case {rec['case']!r} is {rec['sample']!r}; expected an integer >= 0")
    if rec["finish_reason"] not in FINISH_REASONS:
        raise TranscriptError(
            f"{where}: 'finish_reason' of case {rec['case']!r} is {rec['finish_reason']!r}; expected 'eos' or 'length'"
        )
    return rec


Records = dict[str, list[dict[str, Any]]]  # case id -> its samples' records, sample 0 first


def read(path: str | Path) -> Records:
    """Each case's sample records, in sample order; a TranscriptError (one line) for a malformed line,
    a (case, sample) given twice, a gap in a case's samples, or a file mixing records with and
    without ``sample``."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TranscriptError(f"{p}: no such transcript") from None
    except UnicodeDecodeError as e:
        raise TranscriptError(f"{p}: not UTF-8 ({e.reason} at byte {e.start})") from None
    found: dict[str, dict[int, dict[str, Any]]] = {}
    with_sample: tuple[bool, int] | None = None  # (has 'sample', first line) of the first record
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise TranscriptError(f"{where}: not JSON ({e.msg} at column {e.colno})") from None
        validate_record(rec, where)
        has = "sample" in rec
        if with_sample is None:
            with_sample = (has, n)
        elif has != with_sample[0]:
            first = "has" if with_sample[0] else "has no"
            raise TranscriptError(f"{where}: mixed transcript: line {with_sample[1]} {first} 'sample' field, this line "
                                  f"{'has' if has else 'has none'}; give every record a 'sample' or none")
        sample = rec["sample"] if has else 0
        samples = found.setdefault(rec["case"], {})
        if sample in samples:
            what = f"case {rec['case']!r} sample {sample}" if has else f"case {rec['case']!r}"
            raise TranscriptError(f"{where}: {what} appears twice")
        samples[sample] = rec
    records: Records = {}
    for case, samples in found.items():
        missing = sorted(set(range(max(samples) + 1)) - set(samples))
        if missing:
            raise TranscriptError(f"{p}: case {case!r} has sample {max(samples)} but not sample {missing[0]} "
                                  f"({len(missing)} missing): samples must run 0..N-1 without gaps")
        records[case] = [samples[i] for i in range(len(samples))]
    return records


def flatten(records: Records) -> list[dict[str, Any]]:
    """All sample records, case by case in the given order, samples in order."""
    return [rec for samples in records.values() for rec in samples]


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
