"""What a new user types, from the repository root, with absolute paths outside the repository.

pytest chooses its rootdir before entry-point plugins are loaded; these runs (no --rootdir, no test path)
are the ones that broke when `--model /abs/dir` was read as a test path.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shisa_spec.frontends.paths_check import output_problem
from shisa_spec.frontends.progress import Progress
from shisa_spec.spec.cases import FIXTURES

ROOT = FIXTURES.parent
DOC = FIXTURES / "transcripts" / "document.jsonl"


def pytest_at_root(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the repository, holding a copy of the document's transcript."""
    assert ROOT not in tmp_path.parents
    shutil.copy(DOC, tmp_path / "doc.jsonl")
    return tmp_path


def test_replay_with_absolute_paths_from_the_root(outside: Path):
    proc = pytest_at_root("-m", "gpu", "--replay", str(outside / "doc.jsonl"), "--transcript", str(outside / "out" / "t.jsonl"),
                          "--baseline", str(outside / "doc.jsonl"), "--report", str(outside / "r.html"),
                          "--junitxml", str(outside / "j.xml"), "-p", "no:cacheprovider")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "48 passed, 3 skipped" in out and "17 xfailed" in out, out  # the 3 skipped: model-graded checks, no judge given
    assert "Warning" not in out, out  # no record_property/xunit2 warning, no other warning
    assert len((outside / "out" / "t.jsonl").read_text(encoding="utf-8").splitlines()) == 16  # --replay with --transcript writes
    assert (outside / "r.html").is_file()
    xml = (outside / "j.xml").read_text(encoding="utf-8")
    assert xml.count('<property name="shisa"') == 65  # per-check details kept in the XML


def test_gpu_marker_collects_only_the_spec(outside: Path):
    proc = pytest_at_root("-m", "gpu", "--replay", str(outside / "doc.jsonl"), "--collect-only", "-q", "-p", "no:cacheprovider")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tests/spec/test_spec.py::test_spec[" in proc.stdout
    assert "tests/unit" not in proc.stdout
    # a named path is always collected
    named = pytest_at_root("-m", "gpu", "tests/unit/frontends/test_newcomer.py", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert "deselected" in named.stdout, named.stdout


@pytest.mark.parametrize("args, line", [
    (["--transcript", "/etc/hostname/t.jsonl"], "--transcript /etc/hostname/t.jsonl: /etc/hostname is a file, so /etc/hostname/t.jsonl cannot be created"),
    (["--report", "{tmp}"], "--report {tmp}: is a directory"),
    (["--cache-dir", "/etc/hostname"], "--cache-dir /etc/hostname: exists and is not a directory"),
    (["--model", "/no/such/model-dir"], "--model /no/such/model-dir: no such directory"),
    (["--model", "./no-such-model", "--device", "cpu"], "--model ./no-such-model: no such directory"),
])
def test_bad_paths_get_one_line_before_anything_loads(tmp_path: Path, args: list[str], line: str):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = pytest_at_root("-m", "gpu", *args, "-p", "no:cacheprovider", timeout=120)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert proc.stderr.strip().splitlines() == [f"ERROR: {line.replace('{tmp}', str(tmp_path))}"]
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("path, directory, problem", [
    ("{tmp}/new/deeper/t.jsonl", False, None),
    ("{tmp}", False, "is a directory"),
    ("{tmp}/f/t.jsonl", False, "{tmp}/f is a file, so {tmp}/f/t.jsonl cannot be created"),
    ("{tmp}/f", True, "exists and is not a directory"),
    ("{tmp}/cache", True, None),
])
def test_output_problem(tmp_path: Path, path: str, directory: bool, problem: str | None):
    (tmp_path / "f").write_text("x")
    fill = lambda s: s.replace("{tmp}", str(tmp_path))  # noqa: E731
    assert output_problem(fill(path), directory=directory) == (fill(problem) if problem else None)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _events(progress: Progress, clock: Clock) -> None:
    progress("load", {"model": "/m/tiny"})
    clock.t = 2.0
    progress("loaded", {"seconds": 2.0})
    progress("generate", {"total": 32, "batch": 0, "done": 0, "tokens": 0})
    clock.t = 4.0
    progress("batch", {"total": 32, "batch": 1, "done": 16, "tokens": 2000})
    clock.t = 6.0
    progress("batch", {"total": 32, "batch": 2, "done": 32, "tokens": 4000})
    progress("done", {"total": 32, "batch": 2, "done": 32, "tokens": 4000})


def test_progress_one_line_per_batch_when_not_a_terminal():
    out, clock = io.StringIO(), Clock()
    _events(Progress(out, tty=False, clock=clock), clock)
    assert out.getvalue().splitlines() == [
        "shisa-spec: loading /m/tiny (0 s elapsed)",
        "shisa-spec: loaded in 2.0 s",
        "shisa-spec: generating batch 1, 16/32 samples, 2000 tokens, 1000 tok/s, 4 s elapsed, ~2 s left",
        "shisa-spec: generating batch 2, 32/32 samples, 4000 tokens, 1000 tok/s, 6 s elapsed",
    ]


def test_progress_rewrites_one_line_on_a_terminal():
    out, clock = io.StringIO(), Clock()
    _events(Progress(out, tty=True, clock=clock), clock)
    text = out.getvalue()
    assert text.count("\n") == 2  # after "loaded" and at the end: every other update rewrites the line
    assert text.count("\r\x1b[2K") == 6
    assert text.endswith("32/32 samples, 4000 tokens, 1000 tok/s, 6 s elapsed\n")


def test_progress_reaches_the_terminal_through_capture(tmp_path: Path):
    """A real run on the tiny model: the progress lines are on stderr although pytest captures output."""
    tiny = tmp_path / "tiny"
    shutil.copytree(FIXTURES / "tiny-shisa", tiny)
    proc = pytest_at_root("-m", "gpu", "-k", "ja-apples-remaining", "--model", str(tiny), "--device", "cpu", "--no-cache", "--samples", "1", "-q",
                          "-p", "no:cacheprovider")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert any(line.startswith(f"shisa-spec: loading {tiny}") for line in lines), proc.stderr
    assert any(line.startswith("shisa-spec: generating batch 1, 1/1 samples") for line in lines), proc.stderr
