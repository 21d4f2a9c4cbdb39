"""The tokenizer and chat-template spec: per-model profiles, their selection, and the measurements.

Profiles live in ``fixtures/tokenizers/*.yaml`` (checked against ``PROFILE_SCHEMA``; a mistake
raises ``ProfileError`` naming the file and the field). ``tests/spec/test_tokenizer.py`` runs one
set of tests per selected profile; without ``--tokenizer-profile``, every profile whose tokenizer
is available locally runs and the others skip with one reason.

Options (added to pytest by ``add_tokenizer_options``): ``--tokenizer-profile NAME|PATH``
(repeatable), ``--baseline-tokenizer DIR|HUB_ID``, ``--update-snapshots``. Hub tokenizers are
loaded from the local Hugging Face cache only (never downloaded); ``--revision`` applies to the
profile whose tokenizer is the ``--model`` being gated, and ``--trust-remote-code`` to all.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shisa_spec.spec.cases import DEFAULT_CASES, FIXTURES

REPO = FIXTURES.parent
PROFILES_DIR = FIXTURES / "tokenizers"
SNAPSHOTS_DIR = FIXTURES / "snapshots"
SNAPSHOT_KINDS = ("prompt", "document", "chat")

_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]*$"}
_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "additionalProperties": False,
    "properties": {"role": {"enum": ["system", "user", "assistant"]}, "content": {"type": "string"}},
}
PROFILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "tokenizer", "efficiency", "max_drop", "special_tokens"],
    "additionalProperties": False,
    "properties": {
        "name": _NAME,
        "tokenizer": {"type": "string", "minLength": 1},
        "revision": {"type": ["string", "null"]},
        "description": {"type": "string"},
        "efficiency": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["corpus", "min_chars_per_token"],
                "additionalProperties": False,
                "properties": {
                    "corpus": {"type": "string", "minLength": 1},
                    "min_chars_per_token": {"type": "number", "exclusiveMinimum": 0},
                },
            },
        },
        "max_drop": {"type": "number", "minimum": 0, "maximum": 1},
        "special_tokens": {
            "type": "object",
            "required": ["bos", "eos", "pad", "bos_added_by_encode"],
            "additionalProperties": False,
            "properties": {
                "bos": {"$ref": "#/$defs/token"},
                "eos": {"$ref": "#/$defs/token"},
                "unk": {"$ref": "#/$defs/token"},
                "pad": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/token"}]},
                "bos_added_by_encode": {"type": "boolean"},
            },
        },
        "known_lossy": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "text", "pattern", "reason"],
                "additionalProperties": False,
                "properties": {
                    "id": _NAME, "text": {"type": "string"}, "pattern": {"type": "string", "format": "regex"},
                    "reason": {"type": "string", "minLength": 1},
                },
            },
        },
        "template_quirks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "messages", "expected"],
                "additionalProperties": False,
                "properties": {
                    "id": _NAME, "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
                    "add_generation_prompt": {"type": "boolean"}, "expected": {"type": "string"},
                    "note": {"type": "string"},
                },
            },
        },
    },
    "$defs": {
        "token": {
            "type": "object", "required": ["token", "id"], "additionalProperties": False,
            "properties": {"token": {"type": "string", "minLength": 1}, "id": {"type": "integer", "minimum": 0}},
        },
    },
}


class ProfileError(ValueError):
    """A profile file that cannot be used; the message is one line naming the file and the field."""


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    tokenizer: str
    efficiency: dict[str, tuple[Path, float]]
    max_drop: float
    special_tokens: dict[str, Any]
    revision: str | None = None
    known_lossy: tuple[dict[str, str], ...] = ()
    template_quirks: tuple[dict[str, Any], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def snapshot_path(self, directory: str | Path | None = None) -> Path:
        return (_repo_path(str(directory)) if directory else SNAPSHOTS_DIR) / f"{self.name}.json"


def _field(path: list[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _repo_path(p: str) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else REPO / q


def load_profile(path: str | Path) -> Profile:
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{file}: no such tokenizer profile") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ProfileError(f"{file}: YAML syntax error at {loc}: {getattr(e, 'problem', None) or e}") from None
    validator = jsonschema.Draft202012Validator(PROFILE_SCHEMA, format_checker=jsonschema.FormatChecker())
    err = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if err is not None:
        raise ProfileError(f"{file}: field {_field(list(err.absolute_path))}: {err.message}")
    eff = {}
    for lang, spec in data["efficiency"].items():
        corpus = _repo_path(spec["corpus"])
        if not corpus.is_file():
            raise ProfileError(f"{file}: field efficiency.{lang}.corpus: no such file {corpus}")
        eff[lang] = (corpus, float(spec["min_chars_per_token"]))
    seen: set[str] = set()
    for kind in ("known_lossy", "template_quirks"):
        for n, entry in enumerate(data.get(kind) or []):
            if entry["id"] in seen:
                raise ProfileError(f"{file}: field {kind}[{n}].id: duplicate id {entry['id']!r}")
            seen.add(entry["id"])
    return Profile(
        name=data["name"], path=file, tokenizer=data["tokenizer"], efficiency=eff, max_drop=float(data["max_drop"]),
        special_tokens=data["special_tokens"], revision=data.get("revision"),
        known_lossy=tuple(data.get("known_lossy") or ()), template_quirks=tuple(data.get("template_quirks") or ()),
        raw=data,
    )


def profile_paths() -> list[Path]:
    return sorted(PROFILES_DIR.glob("*.yaml"))


def find_profile(spec: str) -> Path:
    """NAME (a file in fixtures/tokenizers/) or a PATH to a profile YAML."""
    p = Path(spec).expanduser()
    if p.suffix in (".yaml", ".yml") or p.is_file():
        return p
    named = PROFILES_DIR / f"{spec}.yaml"
    if named.is_file():
        return named
    known = ", ".join(q.stem for q in profile_paths())
    raise ProfileError(f"--tokenizer-profile {spec}: no such profile (known: {known}) and no such file")


# --------------------------------------------------------------------------------------------
# Where a profile's tokenizer comes from


@dataclass(frozen=True)
class Target:
    """A profile bound to this run's options: the tokenizer source and how to load it."""

    profile: Profile
    source: str
    revision: str | None
    trust_remote_code: bool
    unavailable: str | None = None
    snapshot_dir: str | None = None

    @property
    def name(self) -> str:
        return self.profile.name

    def tokenizer(self) -> Any:
        return load_tokenizer(self.source, self.revision, self.trust_remote_code)

    @property
    def snapshot_path(self) -> Path:
        return self.profile.snapshot_path(self.snapshot_dir)

    def snapshot_header(self) -> dict[str, Any]:
        return {"profile": self.name, "tokenizer": self.profile.tokenizer, "cases": _rel(DEFAULT_CASES)}


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def _is_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or _repo_path(name).exists() or name.count("/") != 1


def availability(source: str, revision: str | None) -> str | None:
    """None when the tokenizer can be loaded without the network, else why not (one line)."""
    if _is_local(source):
        p = _repo_path(source)
        if not p.is_dir():
            return f"tokenizer directory {source} does not exist"
        if not any((p / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")):
            return f"{source} holds no tokenizer files (tokenizer.json, tokenizer.model or tokenizer_config.json)"
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a dependency of transformers
        return f"{source}: huggingface_hub is not installed"
    found = [try_to_load_from_cache(source, f, revision=revision) for f in ("tokenizer_config.json", "tokenizer.json", "tokenizer.model")]
    if any(isinstance(f, str) for f in found):
        return None
    rev = f" (revision {revision})" if revision else ""
    return (
        f"{source} tokenizer{rev} not in the local Hugging Face cache; pass --tokenizer-profile with the path "
        f"of a profile whose tokenizer is a local directory (or download it: huggingface-cli download {source})"
    )


@functools.lru_cache(maxsize=8)
def load_tokenizer(source: str, revision: str | None = None, trust_remote_code: bool = False) -> Any:
    """The raw tokenizer (no harness padding), from a directory or the local HF cache only."""
    from transformers import AutoTokenizer

    local = _is_local(source)
    where = str(_repo_path(source)) if local else source
    return AutoTokenizer.from_pretrained(
        where, revision=None if local else revision, use_fast=True, trust_remote_code=trust_remote_code,
        local_files_only=True,
    )


def targets(config: pytest.Config) -> list[Target]:
    opt = config.option
    chosen = getattr(opt, "shisa_tokenizer_profile", None) or []
    try:
        paths = [find_profile(s) for s in chosen] if chosen else profile_paths()
        profiles = [load_profile(p) for p in paths]
    except ProfileError as e:
        raise pytest.Collector.CollectError(str(e)) from None  # shown as the message alone
    out = []
    for prof in profiles:
        revision = prof.revision
        if getattr(opt, "shisa_revision", None) and prof.tokenizer == getattr(opt, "shisa_model", None):
            revision = opt.shisa_revision
        why = availability(prof.tokenizer, revision)
        if why and chosen:
            raise pytest.Collector.CollectError(f"--tokenizer-profile {prof.name}: {why}")
        out.append(Target(prof, prof.tokenizer, revision, bool(getattr(opt, "shisa_trust_remote_code", False)), why,
                          getattr(opt, "shisa_snapshot_dir", None)))
    return out


# --------------------------------------------------------------------------------------------
# Measurements


def encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def round_trip(tokenizer: Any, text: str) -> str:
    return tokenizer.decode(encode(tokenizer, text), skip_special_tokens=False, clean_up_tokenization_spaces=False)


def chars_per_token(tokenizer: Any, text: str) -> float:
    """Characters of ``text`` per token, special tokens excluded (0 for empty text)."""
    n = len(encode(tokenizer, text))
    return len(text) / n if n else 0.0


def efficiency_failure(lang: str, measured: float, minimum: float, baseline: float | None = None,
                       max_drop: float = 0.0, baseline_name: str = "baseline") -> str | None:
    """Why ``measured`` is unacceptable (below the floor, or more than max_drop below the baseline), else None."""
    problems = []
    if measured < minimum:
        problems.append(f"{lang}: {measured:.3f} chars/token, below the profile's minimum {minimum}")
    if baseline is not None and baseline > 0:
        drop = (baseline - measured) / baseline
        if drop > max_drop:
            problems.append(
                f"{lang}: {measured:.3f} chars/token against {baseline:.3f} for {baseline_name}: "
                f"a drop of {drop:.1%}, more than the allowed {max_drop:.1%}"
            )
    return "; ".join(problems) or None


def entry(tokenizer: Any, text: str, rendered: bool = False) -> dict[str, Any]:
    ids = encode(tokenizer, text)
    out: dict[str, Any] = {"ids": ids, "pieces": tokenizer.convert_ids_to_tokens(ids)}
    if rendered:
        out["text"] = text
    return out


def snapshot_value(tokenizer: Any, prompt: str, kind: str) -> dict[str, Any]:
    """The drift snapshot of one case: the prompt's ids, or a style's rendered template and its ids."""
    from shisa_spec.generation.prompting import render

    if kind == "prompt":
        return entry(tokenizer, prompt)
    return entry(tokenizer, render(tokenizer, prompt, kind), rendered=True)


def snapshot_keys(case_ids: list[str]) -> list[str]:
    return [f"{c}/{k}" for c in case_ids for k in SNAPSHOT_KINDS]


# --------------------------------------------------------------------------------------------
# pytest glue: options and the snapshot report


def add_tokenizer_options(parser: pytest.Parser) -> None:
    g = parser.getgroup("shisa-spec")
    g.addoption("--tokenizer-profile", dest="shisa_tokenizer_profile", action="append", default=None, metavar="NAME|PATH",
                help="tokenizer profile to run (a name in fixtures/tokenizers/ or a YAML path; repeatable); "
                     "default: every profile whose tokenizer is available locally")
    g.addoption("--baseline-tokenizer", dest="shisa_baseline_tokenizer", default=None, metavar="DIR|HUB_ID",
                help="compare chars/token with this tokenizer: a drop beyond the profile's max_drop fails")
    g.addoption("--update-snapshots", dest="shisa_update_snapshots", action="store_true",
                help="accept token-id/template drift: rewrite fixtures/snapshots/<profile>.json and report the changes")
    g.addoption("--snapshot-dir", dest="shisa_snapshot_dir", default=None, metavar="DIR",
                help="where the tokenizer snapshots live (default fixtures/snapshots)")


class SnapshotReport:
    """Collects snapshot outcomes in this process and prints them in the terminal summary."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[str, str, str]] = []  # (profile, key, outcome)
        self.unused: list[tuple[str, str, list[str]]] = []  # (profile, file, keys)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Under xdist, hand this worker's outcomes to the controller, which prints the summary."""
        out = getattr(session.config, "workeroutput", None)
        if out is not None:
            out["shisa_snapshots"] = json.dumps({"outcomes": self.outcomes, "unused": self.unused})

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        data = (getattr(node, "workeroutput", None) or {}).get("shisa_snapshots")
        if data:
            got = json.loads(data)
            self.outcomes += [tuple(o) for o in got["outcomes"] if tuple(o) not in self.outcomes]
            self.unused += [tuple(u) for u in got["unused"] if tuple(u) not in self.unused]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tr = terminalreporter
        changed = [o for o in self.outcomes if o[2] != "unchanged"]
        for prof, path, keys in self.unused:
            tr.write_line(f"WARNING shisa-spec snapshots: {len(keys)} unused entr{'y' if len(keys) == 1 else 'ies'} in {path} "
                          f"(cases no longer in the case file): {', '.join(keys)}; --update-snapshots removes them",
                          yellow=True)
        if not changed:
            return
        tr.write_line(f"shisa-spec snapshots: {len(changed)} entr{'y' if len(changed) == 1 else 'ies'} written")
        for prof, key, outcome in changed:
            tr.write_line(f"  {prof} {key}: {outcome}")


REPORT_KEY = pytest.StashKey[SnapshotReport]()


def report(config: pytest.Config) -> SnapshotReport:
    if REPORT_KEY not in config.stash:
        rep = SnapshotReport()
        config.stash[REPORT_KEY] = rep
        config.pluginmanager.register(rep, "shisa_spec.frontends.tokenizer_spec.report")
    return config.stash[REPORT_KEY]
