"""Drift snapshots: stored token ids and rendered templates, compared by one ``check_snapshot``.

A snapshot file (``fixtures/snapshots/<profile>.json``) maps entry keys (``<case>/<kind>``) to
values: ``{"ids": [...], "pieces": [...]}`` and, for rendered chat templates, ``"text"``.

- equal: passes;
- changed: ``SnapshotMismatch`` naming the entry and the first difference (the token index, old
  id/piece, new id/piece, or the first differing character of the text), unless ``update`` is
  set, in which case the entry is rewritten and the change is returned for the report;
- missing: the entry is written and ``SnapshotMissing`` is raised, so a new snapshot is reviewed
  before it passes (as pytest-regressions does); with ``update`` it is written and passes;
- an unreadable file: ``SnapshotError``, one line, never overwritten.

Writes are read-modify-write under a file lock, so xdist workers can update one file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

FORMAT = 1


class SnapshotError(RuntimeError):
    """The snapshot file cannot be used; the message is one line naming the file."""


class SnapshotMismatch(AssertionError):
    """A stored entry differs from what the tokenizer gives now."""


class SnapshotMissing(AssertionError):
    """No stored entry: it has just been written; review it and run again."""


def _fmt_piece(piece: Any) -> str:
    return repr(piece) if piece is not None else "(none)"


def _at(seq: list[Any] | None, i: int) -> Any:
    return seq[i] if seq is not None and 0 <= i < len(seq) else None


def first_token_difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """'token 3: old id 12 '▁a' -> new id 40 'a'' for the first differing id, or None when ids agree."""
    a, b = list(old.get("ids") or []), list(new.get("ids") or [])
    if a == b:
        return None
    n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    po, pn = old.get("pieces"), new.get("pieces")
    left = f"old id {a[n]} {_fmt_piece(_at(po, n))}" if n < len(a) else "old: (ends)"
    right = f"new id {b[n]} {_fmt_piece(_at(pn, n))}" if n < len(b) else "new: (ends)"
    return f"first differing token at index {n}: {left} -> {right} ({len(a)} -> {len(b)} tokens)"


def first_text_difference(old: str, new: str, context: int = 15) -> str | None:
    if old == new:
        return None
    n = next((i for i, (x, y) in enumerate(zip(old, new)) if x != y), min(len(old), len(new)))
    lo = max(0, n - context)
    return f"text differs at character {n}: old {old[lo:n + context]!r} -> new {new[lo:n + context]!r}"


def describe_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    parts = []
    if "text" in old or "text" in new:
        t = first_text_difference(str(old.get("text", "")), str(new.get("text", "")))
        if t:
            parts.append(f"rendered {t}")
    tok = first_token_difference(old, new)
    if tok:
        parts.append(tok)
    if not parts:
        keys = sorted(set(old) | set(new))
        parts.append(f"fields differ ({', '.join(k for k in keys if old.get(k) != new.get(k))})")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# The file


def read(path: str | Path) -> dict[str, Any] | None:
    """The parsed file, or None when it does not exist; SnapshotError when it is unusable."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise SnapshotError(f"{p}: cannot read snapshot file ({e})") from None
    hint = "fix it, or delete it and run with --update-snapshots to write it afresh"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SnapshotError(f"{p}: corrupt snapshot file: {e.msg} at line {e.lineno}, column {e.colno}; {hint}") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise SnapshotError(f"{p}: not a snapshot file (expected an object with an 'entries' object); {hint}")
    for key, value in data["entries"].items():
        if not isinstance(value, dict) or not isinstance(value.get("ids"), list):
            raise SnapshotError(f"{p}: entry {key!r} is malformed (expected an object with an 'ids' list); {hint}")
    return data


def dumps(data: dict[str, Any]) -> str:
    """Stable, diff-friendly JSON: one line per field of each entry."""
    j = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    lines = ["{"]
    for k, v in data.items():
        if k != "entries":
            lines.append(f"  {j(k)}: {j(v)},")
    lines.append('  "entries": {')
    entries = data.get("entries", {})
    for n, key in enumerate(sorted(entries)):
        value = entries[key]
        fields = [f"      {j(f)}: {j(value[f])}" for f in sorted(value)]
        lines.append(f"    {j(key)}: {{")
        lines.append(",\n".join(fields))
        lines.append("    }" + ("," if n < len(entries) - 1 else ""))
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    lock = Path(tempfile.gettempdir()) / f"shisa-spec-snapshot-{digest}.lock"
    try:
        import fcntl
    except ImportError:  # not POSIX: no concurrent writers to guard against there
        yield
        return
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _store(path: Path, key: str, value: dict[str, Any], header: dict[str, Any]) -> None:
    with _locked(path):
        data = read(path) or {"format": FORMAT, **header, "entries": {}}
        data.update({k: v for k, v in header.items()})
        data["entries"][key] = value
        _write(path, data)


def unused(path: str | Path, wanted: Iterable[str]) -> list[str]:
    """Keys in the file that no current entry asks for (e.g. cases removed from the case file)."""
    data = read(path)
    if data is None:
        return []
    keep = set(wanted)
    return sorted(k for k in data["entries"] if k not in keep)


def remove(path: str | Path, keys: Iterable[str]) -> list[str]:
    p = Path(path)
    drop = set(keys)
    with _locked(p):
        data = read(p)
        if data is None:
            return []
        gone = sorted(k for k in data["entries"] if k in drop)
        for k in gone:
            del data["entries"][k]
        if gone:
            _write(p, data)
    return gone


def check_snapshot(
    path: str | Path,
    key: str,
    actual: dict[str, Any],
    *,
    update: bool = False,
    header: dict[str, Any] | None = None,
    label: str = "",
) -> str:
    """Compare ``actual`` with the stored entry ``key``; return 'unchanged', 'added' or 'updated: …'.

    Raises SnapshotMismatch (changed, no ``update``), SnapshotMissing (absent: written, no
    ``update``) or SnapshotError (unusable file). ``label`` prefixes messages (e.g. the profile).
    """
    p = Path(path)
    data = read(p)
    stored = (data or {}).get("entries", {}).get(key)
    who = f"{label}: " if label else ""
    if stored is None:
        _store(p, key, actual, header or {})
        if update:
            return "added"
        raise SnapshotMissing(
            f"{who}snapshot {key!r} was missing from {p}: written now; review it (git diff), commit it and run again"
        )
    # JSON round trip so tuples vs lists and the like never count as a change
    actual_n = json.loads(json.dumps(actual, ensure_ascii=False))
    if stored == actual_n:
        return "unchanged"
    change = describe_change(stored, actual_n)
    if update:
        _store(p, key, actual_n, header or {})
        return f"updated: {change}"
    raise SnapshotMismatch(
        f"{who}snapshot {key!r} changed: {change}\n"
        f"(stored in {p}; if the change is intended, accept it with --update-snapshots and commit the file)"
    )
