"""Transcripts: strict reading with one-line errors, atomic writing, the document transcript's shape."""

import json

import pytest

from shisa_spec.spec.cases import FIXTURES, load_suite
from shisa_spec.generation.transcript import TranscriptError, read, write


def test_document_transcript_covers_every_case():
    recs = read(FIXTURES / "transcripts" / "document.jsonl")
    assert list(recs) == [c.id for c in load_suite().cases]
    lengths = {c for c, r in recs.items() if r["finish_reason"] == "length"}
    assert lengths == {"ja-bat-and-ball", "ja-explain-llm", "ja-family-children"}  # cut off without </s> in the document
    assert not any("</s>" in r["output"] for r in recs.values())


def test_write_then_read_round_trips_japanese(tmp_path):
    path = write(tmp_path / "sub" / "t.jsonl", [{"case": "a", "output": "日本語\n二行", "finish_reason": "eos", "extra": 1}])
    assert read(path)["a"]["output"] == "日本語\n二行"
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
