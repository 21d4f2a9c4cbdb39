"""Labelled answer corpora: answers a careful grader has judged, and how the checks agree with them.

A corpus folder holds one YAML file per case (``fixtures/corpus/labelled/``, and a held-out set in
``fixtures/corpus/heldout/``), validated by ``fixtures/schemas/corpus.schema.json``. Each answer
carries a label per check of its case; ``evaluate`` runs the case's checks on every answer and
counts, per check kind, how the checks' verdicts agree with the labels (a confusion table).

A malformed file raises ``CorpusError`` with one line naming the file, the answer and the field.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from shisa_spec.spec import checks
from shisa_spec.spec.cases import FIXTURES, Suite, load_suite
from shisa_spec.spec.checks import Output

LABELLED = FIXTURES / "corpus" / "labelled"
HELDOUT = FIXTURES / "corpus" / "heldout"
CORPUS_SCHEMA = FIXTURES / "schemas" / "corpus.schema.json"
DEFAULT_PASS = ("eos", "no-repetition")  # checks an answer need not label: a finished, loop-free answer passes them
MODEL_GRADED = ("judge",)  # check kinds a judge model decides: labels optional, not run here (bench/bench_judge.py asks a judge)


class CorpusError(ValueError):
    """A corpus file that cannot be used; one line naming file, answer and field."""


@dataclass(frozen=True)
class Entry:
    file: str
    case: str
    id: str
    forms: tuple[str, ...]
    text: str
    finish_reason: str
    labels: dict[str, bool]  # check id -> should pass


@dataclass(frozen=True)
class Outcome:
    entry: Entry
    check_id: str
    kind: str
    label: bool
    verdict: bool
    detail: str


@dataclass
class Table:
    """Agreement of one check kind with the labels: tp (both pass), tn (both fail), fp (check passes, label fails), fn."""

    tp: int = 0
    tn: int = 0
    fp: int = 0
    fn: int = 0
    disagreements: list[Outcome] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.tp + self.tn + self.fp + self.fn

    @property
    def agreement(self) -> float:
        return (self.tp + self.tn) / self.total if self.total else 1.0


def _where(path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "file"


def load_corpus(folder: str | Path = LABELLED, suite: Suite | None = None) -> list[Entry]:
    """Every answer of every ``*.yaml`` file in ``folder``, validated against the schema and the suite."""
    suite = suite or load_suite()
    validator = jsonschema.Draft202012Validator(json.loads(CORPUS_SCHEMA.read_text(encoding="utf-8")))
    out: list[Entry] = []
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise CorpusError(f"{folder}: no corpus files (*.yaml)")
    for file in files:
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise CorpusError(f"{file}: file: YAML syntax error: {str(e).splitlines()[0]}") from None
        err = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if err is not None:
            path = list(err.absolute_path)
            entry = ""
            if len(path) >= 2 and path[0] == "answers" and isinstance(path[1], int):
                entry = f"answer {data['answers'][path[1]].get('id', path[1])!r}: " if isinstance(data["answers"][path[1]], dict) else f"answer {path[1]}: "
                path = path[2:]
            if err.validator == "required":  # name the missing field itself
                path = [*path, next(r for r in err.validator_value if r not in err.instance)]
            raise CorpusError(f"{file}: {entry}field {_where(path)}: {err.message[:160]}")
        try:
            case = suite.case(data["case"])
        except KeyError:
            raise CorpusError(f"{file}: field case: no case {data['case']!r} in the suite") from None
        check_ids = [c.id for c in case.checks]
        seen: set[str] = set()
        for a in data["answers"]:
            if a["id"] in seen:
                raise CorpusError(f"{file}: answer {a['id']!r}: field id: used twice")
            seen.add(a["id"])
            unknown = sorted(set(a["labels"]) - set(check_ids))
            if unknown:
                raise CorpusError(f"{file}: answer {a['id']!r}: field labels.{unknown[0]}: case {case.id} has no check {unknown[0]!r} (its checks: {', '.join(check_ids)})")
            graded = {c.id for c in case.checks if c.check in MODEL_GRADED}
            missing = [c for c in check_ids if c not in a["labels"] and c not in DEFAULT_PASS and c not in graded]
            if missing:
                raise CorpusError(f"{file}: answer {a['id']!r}: field labels: no label for check {missing[0]!r}")
            labels = {c: a["labels"].get(c, "pass") == "pass" for c in check_ids if c not in graded or c in a["labels"]}
            out.append(Entry(file.name, case.id, a["id"], tuple(a["forms"]), a["text"], a.get("finish_reason", "eos"), labels))
    return out


def evaluate(entries: list[Entry], suite: Suite | None = None) -> tuple[dict[str, Table], list[Outcome]]:
    """Run every case check on every answer: per check kind, a confusion table; and all outcomes."""
    suite = suite or load_suite()
    tables: dict[str, Table] = defaultdict(Table)
    outcomes: list[Outcome] = []
    for e in entries:
        case = suite.case(e.case)
        for spec in case.checks:
            if spec.check in MODEL_GRADED:  # needs a judge model's reply; measured by bench/bench_judge.py
                continue
            v = checks.run(spec.check, Output(e.text, e.finish_reason), spec.params)
            o = Outcome(e, spec.id, spec.check, e.labels[spec.id], v.passed, v.detail)
            outcomes.append(o)
            t = tables[spec.check]
            if o.label and o.verdict:
                t.tp += 1
            elif not o.label and not o.verdict:
                t.tn += 1
            elif o.verdict:
                t.fp += 1
                t.disagreements.append(o)
            else:
                t.fn += 1
                t.disagreements.append(o)
    return dict(sorted(tables.items())), outcomes


def format_table(tables: dict[str, Table]) -> str:
    """The confusion tables, one row per check kind (label pass/fail x check pass/fail)."""
    rows = [f"{'check kind':<16} {'n':>4} {'pass/pass':>9} {'fail/fail':>9} {'label fail, check pass':>22} {'label pass, check fail':>22} {'agreement':>9}"]
    tot = Table()
    for name, t in tables.items():
        rows.append(f"{name:<16} {t.total:>4} {t.tp:>9} {t.tn:>9} {t.fp:>22} {t.fn:>22} {t.agreement:>9.1%}")
        tot.tp, tot.tn, tot.fp, tot.fn = tot.tp + t.tp, tot.tn + t.tn, tot.fp + t.fp, tot.fn + t.fn
    rows.append(f"{'all':<16} {tot.total:>4} {tot.tp:>9} {tot.tn:>9} {tot.fp:>22} {tot.fn:>22} {tot.agreement:>9.1%}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:  # python -m shisa_spec.spec.corpus [FOLDER] [--show]
    import sys

    args = sys.argv[1:] if argv is None else argv
    show = "--show" in args
    folder = next((a for a in args if not a.startswith("--")), str(LABELLED))
    tables, _ = evaluate(load_corpus(folder))
    print(format_table(tables))
    if show:
        for t in tables.values():
            for o in t.disagreements:
                print(f"{o.entry.case}/{o.entry.id} {o.check_id}: label {'pass' if o.label else 'fail'}, check {'pass' if o.verdict else 'fail'}: {o.detail[:160]}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
