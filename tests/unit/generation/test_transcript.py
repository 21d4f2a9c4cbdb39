"""Transcripts: strict reading with one-line errors, atomic writing, the document transcript's shape."""

import json

import pytest

from shisa_spec.spec.cases import FIXTURES, load_suite
from shisa_spec.generation.transcript import TranscriptError, read, write


def test_document_transcript_covers_every_case():
    recs = read(FIXTURES / "transcripts" / "document.jsonl")
    assert list(recs) == [c.id for c in load_suite().cases]
    assert all(len(samples) == 1 for samples in recs.values())  # no 'sample' fields: one sample per case
    lengths = {c for c, r in recs.items() if r[0]["finish_reason"] == "length"}
    assert lengths == {"ja-bat-and-ball", "ja-explain-llm", "ja-family-children"}  # cut off without </s> in the document
    assert not any("</s>" in r[0]["output"] for r in recs.values())


def test_write_then_read_round_trips_japanese(tmp_path):
    path = write(tmp_path / "sub" / "t.jsonl", [{"case": "a", "output": "日本語\n二行", "finish_reason": "eos", "extra": 1}])
    assert read(path)["a"][0]["output"] == "日本語\n二行"
    assert "日本語" in path.read_text(encoding="utf-8")  # not \\u-escaped: readable in a diff
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("line, message", [
    ("[1, 2]", "a record must be a JSON object"),
    ('{"case": "", "output": "x", "finish_reason": "eos"}', "'case' must be a non-empty string"),
    ('{"case": "a", "output": 3, "finish_reason": "eos"}', "'output' of case 'a' must be a string"),
    ('{"case": "a", "output": "x"}', "record has no 'finish_reason'"),
])
def test_malformed_records(tmp_path, line, message):
    p = tmp_path / "t.jsonl"
    p.write_text('{"case": "ok", "output": "", "finish_reason": "length"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(TranscriptError, match=f"t.jsonl:2: {message}".replace("(", r"\(").replace(")", r"\)")):
        read(p)


def test_duplicate_case_and_missing_file(tmp_path):
    p = tmp_path / "t.jsonl"
    rec = json.dumps({"case": "a", "output": "", "finish_reason": "eos"})
    p.write_text(rec + "\n\n" + rec + "\n", encoding="utf-8")
    with pytest.raises(TranscriptError, match="t.jsonl:3: case 'a' appears twice"):
        read(p)
    with pytest.raises(TranscriptError, match="no such transcript"):
        read(tmp_path / "nope.jsonl")


def rec(case, sample=None, output="x"):
    r = {"case": case, "output": output, "finish_reason": "eos"}
    if sample is not None:
        r["sample"] = sample
    return json.dumps(r)


def test_multi_sample_records_are_grouped_by_case_in_sample_order(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join([rec("a", 1, "a1"), rec("b", 0, "b0"), rec("a", 0, "a0"), rec("a", 2, "a2")]) + "\n", encoding="utf-8")
    got = read(p)
    assert list(got) == ["a", "b"]
    assert [r["output"] for r in got["a"]] == ["a0", "a1", "a2"] and [r["output"] for r in got["b"]] == ["b0"]
    written = write(tmp_path / "w.jsonl", [r for samples in got.values() for r in samples])
    assert read(written) == got


@pytest.mark.parametrize("lines, message", [
    ([rec("a", 0), rec("a", 0)], "t.jsonl:2: case 'a' sample 0 appears twice"),
    ([rec("a", 0), rec("a", 2)], "case 'a' has sample 2 but not sample 1 (1 missing): samples must run 0..N-1 without gaps"),
    ([rec("a", 1)], "case 'a' has sample 1 but not sample 0"),
    ([rec("a", 0), rec("b")], "t.jsonl:2: mixed transcript: line 1 has 'sample' field, this line has none"),
    ([rec("b"), rec("a", 0)], "t.jsonl:2: mixed transcript: line 1 has no 'sample' field, this line has"),
    ([rec("a", -1)], "t.jsonl:1: 'sample' of case 'a' is -1; expected an integer >= 0"),
    ([json.dumps({"case": "a", "sample": "0", "output": "", "finish_reason": "eos"})], "'sample' of case 'a' is '0'"),
])
def test_duplicates_gaps_and_mixed_files_are_one_line(tmp_path, lines, message):
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TranscriptError) as e:
        read(p)
    assert message in str(e.value) and "\n" not in str(e.value)
