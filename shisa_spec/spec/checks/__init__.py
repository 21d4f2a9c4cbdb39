"""The check registry: every module in this package registers its checks by name.

A check is a pure function ``fn(output: Output, **params) -> Verdict``. Each module declares
the JSON Schema of its checks' params with ``@register(name, params_schema)``; the case
loader validates a case file's params against it. Adding a check kind touches one file:
a new module here (modules are discovered, not listed).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Output:
    """What a check judges: the decoded answer and why generation stopped."""

    text: str
    finish_reason: str = "eos"  # "eos" or "length"
    judge: dict[str, Any] = field(default_factory=dict)  # judge_key(rubric) -> {"model", "prompt", "reply"}: see checks/judge.py


@dataclass(frozen=True)
class Verdict:
    passed: bool
    detail: str  # one line a person can read: what was found and what was expected
    evidence: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:  # pragma: no cover - convenience only
        return self.passed


CheckFn = Callable[..., Verdict]


@dataclass(frozen=True)
class CheckKind:
    name: str
    fn: CheckFn
    params_schema: dict[str, Any]


_REGISTRY: dict[str, CheckKind] = {}
_loaded = False


class UnknownCheck(KeyError):
    pass


def register(name: str, params_schema: dict[str, Any] | None = None) -> Callable[[CheckFn], CheckFn]:
    schema = params_schema or {"type": "object", "additionalProperties": False, "properties": {}}

    def deco(fn: CheckFn) -> CheckFn:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"check {name!r} registered twice")
        _REGISTRY[name] = CheckKind(name, fn, schema)
        return fn

    return deco


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    _loaded = True


def names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get(name: str) -> CheckKind:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownCheck(f"unknown check {name!r}; known checks: {', '.join(sorted(_REGISTRY))}") from None


def run(name: str, output: Output, params: dict[str, Any] | None = None) -> Verdict:
    """Run one check; params are assumed validated against its schema."""
    return get(name).fn(output, **(params or {}))
