"""End to end on CPU with the tiny model: loading, chat template, seeded batched generation, checks,
transcripts, replay, the generation cache and outcome accounting, through the code users run
(real pytest subprocesses running tests/spec/test_spec.py). The runs take N=4 samples per case
(``--samples 4``), plus one N=1 run for the one-sample verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shisa_spec.generation.transcript import read
from shisa_spec.spec.cases import FIXTURES, load_suite
from shisa_spec.verdicts.aggregate import judge_samples

ROOT = FIXTURES.parent
TINY = FIXTURES / "tiny-shisa"
SUITE = load_suite()
N_TESTS = sum(1 for c in SUITE.cases for k in c.checks if k.check != "judge")  # judge checks skip: no judge given
N = 4
ROWS = sum(N if c.generation.do_sample else 1 for c in SUITE.cases)

pytestmark = pytest.mark.skipif(not (TINY / "config.json").exists(), reason="fixtures/tiny-shisa is not built (python tools/build_tiny_model.py)")


def spec(tmp: Path, *args: str, name: str = "t.jsonl", cache: str | None = "cache") -> tuple[subprocess.CompletedProcess, Path]:
    """Run `pytest -m gpu` on the tiny model in a subprocess; returns the process and its transcript path."""
    transcript = tmp / name
    argv = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "spec" / "test_spec.py"), "-m", "gpu", "-rA", "-q",
            "-p", "no:cacheprovider", "--rootdir", str(ROOT), "--model", str(TINY), "--device", "cpu",
            "--transcript", str(transcript), "--samples", str(N), *args]
    argv += ["--cache-dir", str(tmp / cache)] if cache else ["--no-cache"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONHASHSEED": "random"}
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)  # a guard against a hung run, not a timing
    return proc, transcript


def texts(path: Path) -> dict[tuple[str, int], tuple[str, str]]:
    """(case, sample) -> (output, finish reason); a key given twice fails."""
    out = {}
    for r in map(json.loads, path.read_text(encoding="utf-8").splitlines()):
        assert (r["case"], r["sample"]) not in out, r
        out[(r["case"], r["sample"])] = (r["output"], r["finish_reason"])
    return out


def expected_outcomes(path: Path) -> dict[str, str]:
    """The outcome word of every test, from the transcript's samples and the verdict rule."""
    records = read(path)
    word = {"pass": "PASSED", "fail": "FAILED", "xfail": "XFAIL", "xpass": "FAILED"}  # strict XPASS fails
    out = {}
    for case in SUITE.cases:
        marked = {k.id: case.known_failure(k.id, {"quantize": "none", "prompt_style": case.prompt_style, "model": str(TINY)}) is not None
                  for k in case.checks}
        for check, v in judge_samples(case, records[case.id], marked).items():
            out[f"test_spec[{case.id}.{check}]"] = word[v.decision.outcome]
    return out


def outcomes(proc: subprocess.CompletedProcess) -> dict[str, str]:
    """test id -> outcome word, from -rA's short summary."""
    out = {}
    for line in proc.stdout.splitlines():
        word = line.split(" ", 1)[0]
        if word in ("PASSED", "FAILED", "XFAIL", "XPASS", "ERROR", "SKIPPED") and "::" in line:
            out[line.split("::", 1)[1].split(" ")[0]] = word
    return out


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    proc, transcript = spec(tmp)
    assert "no CUDA" not in proc.stdout, proc.stdout[-2000:]
    return tmp, proc, transcript


def test_full_run_judges_k_of_n_by_the_verdict_rule(full):
    _, proc, transcript = full
    got = outcomes(proc)
    assert len(got) == N_TESTS, proc.stdout[-3000:]
    assert got == expected_outcomes(transcript)
    assert "PASSED" in got.values() and "XFAIL" in got.values()
    recs = [json.loads(l) for l in transcript.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == ROWS
    want = [(c.id, i) for c in SUITE.cases for i in range(N if c.generation.do_sample else 1)]
    assert [(r["case"], r["sample"]) for r in recs] == want
    assert len({r["sample_seed"] for r in recs}) == ROWS  # every sample has its own seed (the tiny model's texts hardly vary)
    first = recs[0]
    assert first["rendered_prompt"].startswith("<s>[INST] <<SYS>>\n") and first["rendered_prompt"].endswith("\n<</SYS>>\n\n")
    assert first["provenance"]["device"] == "cpu" and first["provenance"]["dtype"] == "float32"
    assert {r["finish_reason"] for r in recs} <= {"eos", "length"}
    calls = -(-ROWS // 16)
    assert f"{len(SUITE.cases)} cases, {ROWS} samples ({N} per case), {ROWS} generated in {calls} batched generate() call(s)" in proc.stdout


def test_one_sample_run_accounts_pass_fail_xfail_and_strict_xpass(full, tmp_path):
    _, _, transcript = full
    proc, t1 = spec(tmp_path, "--samples", "1", name="one.jsonl", cache=None)
    got = outcomes(proc)
    assert len(got) == N_TESTS, proc.stdout[-3000:]
    assert {"PASSED", "FAILED", "XFAIL"} <= set(got.values()), got
    # The tiny model was trained to answer ja-cookie-mystery correctly (a strict XPASS, reported as
    # FAILED) and ja-apples-remaining wrongly (a plain failure): see fixtures/tiny-shisa/README.md.
    assert got["test_spec[ja-cookie-mystery.taro-ate-it]"] == "FAILED"
    assert "[XPASS(strict)]" in proc.stdout
    assert got["test_spec[ja-apples-remaining.answer]"] == "FAILED"
    assert got["test_spec[en-first-president.washington]"] == "PASSED"
    assert "(1 sample: no interval)" in proc.stdout
    assert proc.returncode == 1
    assert got == expected_outcomes(t1)
    one = texts(t1)
    assert set(one) == {(c.id, 0) for c in SUITE.cases}
    assert one == {k: v for k, v in texts(transcript).items() if k[1] == 0}  # sample 0 is the one-sample run's text


def test_case_alone_and_in_reverse_order_with_other_batches_give_the_same_text(full, tmp_path):
    _, proc, transcript = full
    base = texts(transcript)
    alone, t1 = spec(tmp_path, "-k", "ja-json-format", name="alone.jsonl", cache=None)
    assert texts(t1) == {k: v for k, v in base.items() if k[0] == "ja-json-format"}, alone.stdout[-2000:]
    assert {k: v for k, v in outcomes(alone).items()} == {k: v for k, v in outcomes(proc).items() if "[ja-json-format." in k}
    node_ids = [f"{ROOT}/tests/spec/test_spec.py::test_spec[{c.id}.{k.id}]" for c in reversed(SUITE.cases) for k in c.checks]
    rev, t2 = spec(tmp_path, "--batch-size", "3", *node_ids, name="reversed.jsonl", cache=None)
    assert texts(t2) == base, rev.stdout[-2000:]
    assert outcomes(rev) == outcomes(proc)


def test_xdist_two_workers_give_the_same_texts_and_verdicts(full, tmp_path):
    _, proc, transcript = full
    par, t = spec(tmp_path, "-n", "2", name="xdist.jsonl", cache=None)
    assert texts(t) == texts(transcript), par.stdout[-2000:]
    assert outcomes(par) == outcomes(proc)


def test_replay_of_a_live_transcript_gives_the_same_verdicts(full, tmp_path):
    _, proc, transcript = full
    rep, _ = spec(tmp_path, "--replay", str(transcript), name="unused.jsonl")
    assert outcomes(rep) == outcomes(proc)
    assert "replayed from" in rep.stdout


def test_unchanged_rerun_is_served_from_the_cache(full):
    tmp, _, transcript = full
    again, t = spec(tmp, name="again.jsonl")
    assert f"0 generated in 0 batched generate() call(s) in this process, {ROWS} from cache (weights not loaded)" in again.stdout, again.stdout[-1500:]
    assert texts(t) == texts(transcript)
    assert all(json.loads(l)["from_cache"] for l in t.read_text(encoding="utf-8").splitlines())
