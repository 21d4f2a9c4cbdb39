"""The labelled corpus agrees with every check; the held-out set agrees at least 98%.

Each answer in ``fixtures/corpus/labelled/`` carries a careful grader's label per check of its case.
The test prints a confusion table per check kind and fails on any disagreement, naming the answer,
the check, the label and the check's finding. ``fixtures/corpus/heldout/`` holds answers written
before the checks were tuned, and never used to tune them: its agreement must stay >= 98%.
"""

from pathlib import Path

import pytest
import yaml

from shisa_spec.spec.cases import load_suite
from shisa_spec.spec.corpus import HELDOUT, LABELLED, CorpusError, evaluate, format_table, load_corpus

SUITE = load_suite()
FORMS_WANTED = 5  # at least this many correct and this many wrong answers per case


def test_labelled_corpus_agrees_with_every_check():
    tables, _ = evaluate(load_corpus(LABELLED, SUITE), SUITE)
    print("\n" + format_table(tables))
    wrong = [o for t in tables.values() for o in t.disagreements]
    assert not wrong, f"{len(wrong)} disagreement(s):\n" + "\n".join(
        f"{o.entry.case}/{o.entry.id} {o.check_id} ({o.kind}): label {'pass' if o.label else 'fail'}, "
        f"check {'pass' if o.verdict else 'fail'}: {o.detail[:200]}"
        for o in wrong
    )


def test_every_case_has_five_correct_and_five_wrong_answers():
    entries = load_corpus(LABELLED, SUITE)
    for case in SUITE.cases:
        own = [e for e in entries if e.case == case.id]
        correct = [e for e in own if all(e.labels.values())]
        wrong = [e for e in own if not all(e.labels.values())]
        assert len(correct) >= FORMS_WANTED and len(wrong) >= FORMS_WANTED, (case.id, len(correct), len(wrong))


def test_heldout_agreement_is_at_least_98_percent():
    entries = load_corpus(HELDOUT, SUITE)
    assert len(entries) >= 40
    tables, outcomes = evaluate(entries, SUITE)
    print("\n" + format_table(tables))
    agree = sum(o.label == o.verdict for o in outcomes)
    assert agree / len(outcomes) >= 0.98, f"held-out agreement {agree}/{len(outcomes)}"


def write(tmp_path: Path, data) -> Path:
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    "answer,where",
    [
        ({"id": "a", "forms": ["polite"], "text": "x", "labels": {"answer": "yes"}}, "answer 'a': field labels.answer"),
        ({"id": "a", "forms": ["prose"], "text": "x", "labels": {"answer": "pass"}}, "answer 'a': field forms[0]"),
        ({"id": "a", "forms": ["polite"], "labels": {"answer": "pass"}}, "answer 'a': field text"),
        ({"id": "a", "forms": ["polite"], "text": "x", "labels": {"japanese": "pass"}}, "answer 'a': field labels: no label for check 'answer'"),
        ({"id": "a", "forms": ["polite"], "text": "x", "labels": {"answer": "pass", "japanese": "pass", "nope": "fail"}}, "answer 'a': field labels.nope"),
    ],
)
def test_a_malformed_corpus_file_fails_naming_file_answer_and_field(tmp_path, answer, where):
    folder = write(tmp_path, {"case": "ja-apples-remaining", "answers": [answer]})
    with pytest.raises(CorpusError) as e:
        load_corpus(folder, SUITE)
    msg = str(e.value)
    assert "\n" not in msg and "x.yaml" in msg
    assert where in msg, msg


def test_a_corpus_file_for_an_unknown_case_fails(tmp_path):
    folder = write(tmp_path, {"case": "no-such-case", "answers": [{"id": "a", "forms": ["polite"], "text": "x", "labels": {"a": "pass"}}]})
    with pytest.raises(CorpusError, match="field case: no case 'no-such-case'"):
        load_corpus(folder, SUITE)
