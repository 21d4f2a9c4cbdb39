"""The spec as data: load, validate and write case files (YAML, checked by a JSON Schema).

A malformed file raises ``CaseFileError`` with one line naming the file, the case and the
field. Check params are validated against the schema each check kind declares, and a
``schema`` param naming a file is resolved against the ``schemas/`` folder beside the
case file's folder, so checks receive plain dicts.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

from shisa_spec.spec import checks
from shisa_spec.spec.paths import FIXTURES

DEFAULT_CASES = FIXTURES / "cases" / "shisa-7b-v1-document.yaml"
CASES_IN_CHECKOUT = Path("fixtures") / "cases" / DEFAULT_CASES.name


def default_cases(root: str | Path | None = None) -> Path:
    """The case file a run uses by default: the checkout's (``root``, else the working directory) when there is
    one, so edits there count even with the package installed from a wheel; else the package's own."""
    here = Path(root if root is not None else Path.cwd()) / CASES_IN_CHECKOUT
    return here if here.is_file() else DEFAULT_CASES
CASES_SCHEMA = FIXTURES / "schemas" / "cases.schema.json"

DOCUMENT_GENERATION = {
    "max_new_tokens": 256,
    "do_sample": True,
    "temperature": 0.3,
    "top_p": 0.95,
    "repetition_penalty": 1.15,
}


DEFAULT_MIN_PASS_RATE = 0.5  # a check's required pass rate unless the case file says otherwise


class CaseFileError(ValueError):
    """A case file that cannot be used; the message is one line naming file, case and field."""


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 256
    do_sample: bool = True
    temperature: float = 0.3
    top_p: float = 0.95
    repetition_penalty: float = 1.15

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "repetition_penalty": self.repetition_penalty,
        }


@dataclass(frozen=True)
class CheckSpec:
    id: str
    check: str
    params: dict[str, Any] = field(default_factory=dict)
    min_pass_rate: float = DEFAULT_MIN_PASS_RATE  # the check's, else the file's top-level, else the default


@dataclass(frozen=True)
class KnownFailure:
    check: str
    reason: str
    when: dict[str, str] = field(default_factory=dict)
    rate: str | None = None  # "k/N": how often the known model passed when the mark was calibrated

    def applies(self, run: dict[str, str]) -> bool:
        """True when every condition in ``when`` matches the run's settings."""
        return all(run.get(k) == v for k, v in self.when.items())


@dataclass(frozen=True)
class Case:
    id: str
    language: str
    prompt: str
    checks: tuple[CheckSpec, ...]
    category: str = ""
    prompt_style: str = "document"
    system_prompt: str | None = None
    generation: GenerationSettings = GenerationSettings()
    known_failures: tuple[KnownFailure, ...] = ()

    def known_failure(self, check_id: str, run: dict[str, str]) -> KnownFailure | None:
        for kf in self.known_failures:
            if kf.check == check_id and kf.applies(run):
                return kf
        return None


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    cases: tuple[Case, ...]
    raw: dict[str, Any]

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(case_id)


def _where(path: Iterable[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _case_label(data: Any, path: list[Any]) -> str:
    if len(path) >= 2 and path[0] == "cases" and isinstance(path[1], int):
        try:
            cid = data["cases"][path[1]].get("id")
        except (AttributeError, IndexError, KeyError, TypeError):
            cid = None
        return f"case {cid!r}" if cid else f"case #{path[1] + 1}"
    if path and path[0] == "defaults":
        return "defaults"
    return "file"


def _fail(file: Path, where: str, field_: str, msg: str) -> CaseFileError:
    return CaseFileError(f"{file}: {where}: field {field_}: {msg}")


def _schema_dir(file: Path) -> Path:
    return file.resolve().parent.parent / "schemas"


def _resolve_check_params(file: Path, where: str, fpath: str, spec: dict[str, Any]) -> dict[str, Any]:
    try:
        kind = checks.get(spec["check"])
    except checks.UnknownCheck as e:
        raise _fail(file, where, f"{fpath}.check", str(e.args[0])) from None
    params = copy.deepcopy(spec.get("params") or {})
    validator = jsonschema.Draft202012Validator(kind.params_schema)
    err = jsonschema.exceptions.best_match(validator.iter_errors(params))
    if err is not None:
        sub = _where(["params", *err.absolute_path])
        raise _fail(file, where, f"{fpath}.{sub}", f"{err.message} (check {spec['check']!r})")
    if isinstance(params.get("schema"), str):
        sfile = _schema_dir(file) / params["schema"]
        try:
            params["schema"] = json.loads(sfile.read_text(encoding="utf-8"))
            jsonschema.Draft202012Validator.check_schema(params["schema"])
        except FileNotFoundError:
            raise _fail(file, where, f"{fpath}.params.schema", f"no schema file {sfile}") from None
        except (json.JSONDecodeError, jsonschema.SchemaError) as e:
            msg = e.message if isinstance(e, jsonschema.SchemaError) else str(e)
            raise _fail(file, where, f"{fpath}.params.schema", f"{sfile} is not a valid JSON Schema: {msg}") from None
    return params


def load_suite(path: str | Path = DEFAULT_CASES) -> Suite:
    """Read and validate a case file; raise CaseFileError (one line) on any problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaseFileError(f"{file}: no such case file") from None
    except UnicodeDecodeError as e:
        raise CaseFileError(f"{file}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise CaseFileError(f"{file}: file: YAML syntax error at {loc}: {problem}") from None
    schema = json.loads(CASES_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    err = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if err is not None:
        path_ = list(err.absolute_path)
        label = _case_label(data, path_)
        sub = path_[2:] if label.startswith("case") else path_[1:] if label == "defaults" else path_
        raise _fail(file, label, _where(sub) if sub else "(whole entry)", err.message)
    return _build(file, data)


def _build(file: Path, data: dict[str, Any]) -> Suite:
    defaults = data.get("defaults") or {}
    gen_defaults = {**DOCUMENT_GENERATION, **(defaults.get("generation") or {})}
    default_checks = defaults.get("checks") or []
    default_ids = [c["id"] for c in default_checks]
    if len(set(default_ids)) != len(default_ids):
        raise _fail(file, "defaults", "checks", "check ids must be unique")
    suite_rate = float(data.get("min_pass_rate", DEFAULT_MIN_PASS_RATE))
    default_specs = [
        CheckSpec(c["id"], c["check"], _resolve_check_params(file, "defaults", f"checks[{i}]", c), float(c.get("min_pass_rate", suite_rate)))
        for i, c in enumerate(default_checks)
    ]
    seen: set[str] = set()
    cases = []
    for raw in data["cases"]:
        cid = raw["id"]
        where = f"case {cid!r}"
        if cid in seen:
            raise _fail(file, where, "id", "duplicate case id")
        seen.add(cid)
        skip = raw.get("skip_default_checks") or []
        for s in skip:
            if s not in default_ids:
                raise _fail(file, where, "skip_default_checks", f"{s!r} is not a default check id ({', '.join(default_ids)})")
        specs = [d for d in default_specs if d.id not in skip]
        for i, c in enumerate(raw["checks"]):
            if c["id"] in {s.id for s in specs}:
                raise _fail(file, where, f"checks[{i}].id", f"duplicate check id {c['id']!r}")
            specs.append(CheckSpec(c["id"], c["check"], _resolve_check_params(file, where, f"checks[{i}]", c),
                                   float(c.get("min_pass_rate", suite_rate))))
        if not specs:
            raise _fail(file, where, "checks", "a case needs at least one check")
        if all(s.check == "judge" for s in specs):
            raise _fail(file, where, "checks", "a judge check cannot be a case's only kind of check: add a rule-based check beside it")
        ids = {s.id for s in specs}
        kfs = []
        for i, kf in enumerate(raw.get("known_failures") or []):
            if kf["check"] not in ids:
                raise _fail(file, where, f"known_failures[{i}].check", f"{kf['check']!r} is not one of this case's checks ({', '.join(sorted(ids))})")
            rate = kf.get("rate")
            if rate is not None and int(rate.split("/")[0]) > int(rate.split("/")[1]):
                raise _fail(file, where, f"known_failures[{i}].rate", f"{rate!r}: more passes than samples")
            kfs.append(KnownFailure(kf["check"], kf["reason"], dict(kf.get("when") or {}), rate))
        gen = GenerationSettings(**{**gen_defaults, **(raw.get("generation") or {})})
        cases.append(
            Case(
                id=cid,
                language=raw["language"],
                prompt=raw["prompt"],
                checks=tuple(specs),
                category=raw.get("category", ""),
                prompt_style=raw.get("prompt_style", defaults.get("prompt_style", "document")),
                system_prompt=raw.get("system_prompt", defaults.get("system_prompt")),
                generation=gen,
                known_failures=tuple(kfs),
            )
        )
    return Suite(name=data["suite"], path=file, cases=tuple(cases), raw=data)


class _Dumper(yaml.SafeDumper):
    """Writes case files people can edit: literal blocks for multi-line text, short lists inline."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _list_presenter(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = all(isinstance(v, (int, float, str)) and (not isinstance(v, str) or "\n" not in v) for v in value) or all(
        isinstance(v, list) and all(isinstance(x, (int, float, str)) for x in v) for v in value
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow and bool(value))


_Dumper.add_representer(str, _str_presenter)
_Dumper.add_representer(list, _list_presenter)


def dump_suite_data(data: dict[str, Any]) -> str:
    """Serialise raw case-file data (as loaded by yaml) back to YAML, keeping key order."""
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10_000, indent=2)
