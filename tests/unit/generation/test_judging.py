"""The judge asked for real (the tiny model in this process, CPU): its raw reply goes into the record,
the cache and the transcript; a second run takes it from the cache; a replay judges without the judge."""

from pathlib import Path

import pytest

from shisa_spec.generation import loader, transcript
from shisa_spec.generation.cache import GenerationCache
from shisa_spec.generation.judging import JudgeOptions
from shisa_spec.generation.store import OutputStore, RunOptions
from shisa_spec.spec import checks
from shisa_spec.spec.cases import FIXTURES, load_suite
from shisa_spec.spec.checks.judge import judge_key, parse_reply

TINY = FIXTURES / "tiny-shisa"
RUBRIC = "Does the answer name George Washington?"

pytestmark = pytest.mark.skipif(not (TINY / "config.json").exists(), reason="fixtures/tiny-shisa is not built")


def suite(tmp_path: Path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "schemas").symlink_to(FIXTURES / "schemas")
    p = tmp_path / "cases" / "c.yaml"
    p.write_text(
        "suite: s\ndefaults: {generation: {max_new_tokens: 24}}\ncases:\n  - id: c1\n    language: en\n"
        "    prompt: Who was the first president of the United States?\n    checks:\n"
        "      - {id: name, check: mentions, params: {all_of: [[Washington]]}}\n"
        f"      - {{id: j, check: judge, params: {{rubric: '{RUBRIC}'}}}}\n", encoding="utf-8")
    return load_suite(p)


def store(s, cache):
    opts = loader.LoadOptions(model=str(TINY), device="cpu")
    return OutputStore(s, ["c1"], prepare=lambda: loader.prepare(opts), load=lambda p: loader.load(opts, p),
                       options=RunOptions(judge=JudgeOptions(model=str(TINY), device="cpu", max_new_tokens=24)), cache=cache)


def test_judge_reply_is_recorded_cached_and_replayed(tmp_path):
    s = suite(tmp_path)
    cache = GenerationCache(tmp_path / "cache")
    first = store(s, cache)
    rec = first.get("c1")[0]  # records per sample: the case has one
    entry = rec["judge"][judge_key(RUBRIC)]
    assert entry["model"] == str(TINY) and isinstance(entry["reply"], str) and not entry["from_cache"]
    assert "Who was the first president" in entry["prompt"] and rec["output"] in entry["prompt"] and RUBRIC in entry["prompt"]
    assert first.judge.asked == 1
    verdict = checks.run("judge", checks.Output(rec["output"], rec["finish_reason"], rec["judge"]), {"rubric": RUBRIC})
    passed, _ = parse_reply(entry["reply"])
    assert verdict.passed is bool(passed) and verdict.evidence["reply"] == entry["reply"]

    again = store(s, GenerationCache(tmp_path / "cache"))
    rec2 = again.get("c1")[0]
    assert rec2["from_cache"] and again.judge.asked == 0
    assert rec2["judge"][judge_key(RUBRIC)]["reply"] == entry["reply"] and rec2["judge"][judge_key(RUBRIC)]["from_cache"]

    path = transcript.write(tmp_path / "t.jsonl", [rec])
    replayed = OutputStore(s, ["c1"], replay=transcript.read(path)).get("c1")[0]
    v2 = checks.run("judge", checks.Output(replayed["output"], replayed["finish_reason"], replayed["judge"]), {"rubric": RUBRIC})
    assert (v2.passed, v2.detail) == (verdict.passed, verdict.detail)


def test_changed_judge_settings_are_another_cache_key(tmp_path):
    s = suite(tmp_path)
    first = store(s, GenerationCache(tmp_path / "cache"))
    first.get("c1")
    other = OutputStore(s, ["c1"], prepare=first._prepare, load=first._load,
                        options=RunOptions(judge=JudgeOptions(model=str(TINY), device="cpu", max_new_tokens=25)),
                        cache=GenerationCache(tmp_path / "cache"))
    other.get("c1")
    assert other.judge.asked == 1  # the judge's settings changed, so its reply is asked again
