"""Shared fixtures for the harness's own tests: a pytester workspace that runs the real spec module."""

import json
from pathlib import Path

import pytest
import scipy.stats  # noqa: F401

# scipy.stats (and numpy with it) is imported before any inline pytester run: an inline run drops the
# modules first imported inside it, and numpy's extension modules cannot be loaded twice in one process,
# so a later inline run reaching the gate's statistics died (seen when test_gate_plugin ran alone).

ROOT = Path(__file__).resolve().parents[2]
SPEC_TEST = ROOT / "tests" / "spec" / "test_spec.py"
DOCUMENT = ROOT / "fixtures" / "transcripts" / "document.jsonl"


@pytest.fixture
def spec_pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir holding the project's spec test module and its marker config."""
    pytester.makefile(".ini", pytest='[pytest]\nmarkers =\n    gpu: spec\n    slow: slow\nxfail_strict = true\n')
    pytester.makepyfile(test_spec=SPEC_TEST.read_text(encoding="utf-8"))
    return pytester


@pytest.fixture
def run_spec(spec_pytester: pytest.Pytester):
    """Run the spec inside spec_pytester: run_spec(*pytest_args, subprocess=False) -> RunResult.

    Runs that import torch must use subprocess=True: an inline run drops the modules first
    imported inside it, and torch cannot be imported twice in one process.
    """

    def run(*args: str, subprocess: bool = False) -> pytest.RunResult:
        argv = ["-p", "shisa_spec.frontends.pytest_plugin", "-m", "gpu", "-p", "no:cacheprovider", "-rA", *args]
        if subprocess:
            return spec_pytester.runpytest_subprocess(*argv)
        return spec_pytester.runpytest(*argv)

    return run


@pytest.fixture
def edited_document(tmp_path: Path):
    """edited_document({case: (output, finish_reason)}) -> path of the document transcript with those answers replaced."""

    def edit(changes: dict, name: str = "edited.jsonl") -> Path:
        records = [json.loads(line) for line in DOCUMENT.read_text(encoding="utf-8").splitlines()]
        for r in records:
            if r["case"] in changes:
                r["output"], r["finish_reason"] = changes[r["case"]]
        path = tmp_path / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        return path

    return edit


APPLES_WRONG = "残りのりんごは2個です。"
FIB_WRONG = "The first ten numbers are 1, 2, 3, 4, 5, 6, 7, 8, 9, 10."


@pytest.fixture
def multi_transcripts(tmp_path: Path):
    """multi_transcripts({case: (passing samples of 16, wrong text)}, name) -> path of a hand-made 16-sample
    transcript: every case's 16 samples repeat the document's output, except that the named cases have
    only the given number of samples with it and the rest with the wrong text."""

    def make(changes: dict, name: str, n: int = 16) -> Path:
        lines = []
        for line in DOCUMENT.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            good, wrong = changes.get(r["case"], (n, None))
            for i in range(n):
                out = r["output"] if i < good else wrong
                lines.append(json.dumps({**r, "sample": i, "output": out, "finish_reason": r["finish_reason"] if i < good else "eos"},
                                        ensure_ascii=False))
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return make
