"""Where the spec's data lives: the repository's ``fixtures/`` in a checkout, the package's copy once installed."""

from __future__ import annotations

from pathlib import Path


def _fixtures_dir() -> Path:
    repo = Path(__file__).resolve().parents[2] / "fixtures"
    if (repo / "cases").is_dir():
        return repo
    return Path(__file__).resolve().parents[1] / "_data" / "fixtures"  # installed from a wheel (pyproject.toml maps it)


FIXTURES = _fixtures_dir()
SPEC_TESTS = FIXTURES.parent / ("tests/spec" if FIXTURES.parent.joinpath("tests", "spec").is_dir() else "spec_tests")
