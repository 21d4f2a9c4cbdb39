"""eos: passes only when the model ended the answer itself."""

from shisa_spec.spec.checks import Output, run


def test_eos_passes():
    assert run("eos", Output("答えは3個です。", "eos")).passed


def test_length_fails_as_cut_off():
    v = run("eos", Output("最終回答：ボールは 5,", "length"))
    assert not v.passed and "cut off at the token budget" in v.detail


def test_unknown_or_garbage_finish_reason_fails_clearly():
    for reason in ("stop", "", "\x00garbage"):
        v = run("eos", Output("", reason))
        assert not v.passed and "unknown finish_reason" in v.detail
