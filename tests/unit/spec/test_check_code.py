"""code_function: the extracted Python function computes Fibonacci numbers, run in the sandbox."""

import pytest

from shisa_spec.spec.checks import Output, run

K = [1, 2, 3, 4, 5, 6, 10, 15]


def check(text, **params):
    return run("code_function", Output(text), {"k_values": K, **params})


ITERATIVE_0 = "```python\ndef fibonacci(k):\n    a, b = 0, 1\n    for _ in range(k):\n        a, b = b, a + b\n    return a\n```"
RECURSIVE_1 = "以下の関数です。\n\ndef fib(k):\n    if k <= 2:\n        return [0, 1][k - 1]\n    return fib(k - 1) + fib(k - 2)\n\nこの関数は…"


def test_correct_functions_pass_with_either_indexing():
    v = check(ITERATIVE_0)
    assert v.passed and v.evidence["indexing"] == "0-based"
    v = check(RECURSIVE_1)
    assert v.passed and v.evidence["indexing"] == "1-based"


def test_demo_driver_at_top_level_does_not_hide_a_correct_function():
    src = "```python\nmemo = {0: 0, 1: 1}\ndef fib(k):\n    if k not in memo:\n        memo[k] = fib(k - 1) + fib(k - 2)\n    return memo[k]\n\nk = int(input('k: '))\nprint(fib(k))\n```"
    v = check(src)
    assert v.passed and "tested the definitions alone" in v.detail and "EOFError" in v.detail
    broken = src.replace("fib(k - 2)", "fib(k - 3)")
    assert not check(broken).passed


def test_mixed_indexing_fails():
    src = "def f(k):\n    if k == 1:\n        return 0\n    a, b = 0, 1\n    for _ in range(k):\n        a, b = b, a + b\n    return a\n"
    v = check(src)
    assert not v.passed and "expected" in v.detail


def test_named_function_and_helpers():
    src = "```python\ndef helper(n):\n    return n\n\ndef fib(k, memo=None):\n    a, b = 0, 1\n    for _ in range(k):\n        a, b = b, a + b\n    return a\n```"
    v = check(src)
    assert v.passed and v.evidence["function"] == "fib"  # a name with "fib" is preferred over a helper
    assert not check(src, function="helper").passed
    v = check(src, function="fibo")
    assert not v.passed and "no one-argument function 'fibo'" in v.detail


def test_document_output_fails_with_type_error():
    doc = "def fibonacci_k(k):\n   # k番目のフィボナッチ数は0番目と1番目のフィボナッチの和です\n   return (fibonacci_k-1) + fibonacci_k-2"
    v = check(doc)
    assert not v.passed and "TypeError" in v.detail and "fibonacci_k(1)" in v.detail


@pytest.mark.parametrize(
    "text,why",
    [
        ("", "no Python code"),
        ("フィボナッチ数列とは…", "no Python code"),
        ("```python\ndef fib(k)\n    return k\n```", "does not parse"),
        ("```python\nx = 1\n```", "no function of one argument"),
        ("```python\ndef fib(a, b):\n    return a\n```", "no function of one argument"),
        ("```python\ndef fib(k):\n    return fib(k)\n```", "RecursionError"),
        ("```python\ndef fib(k):\n    raise ValueError('no')\n```", "ValueError"),
        ("```python\nimport numpy_not_installed\ndef fib(k):\n    return k\n```", "ModuleNotFoundError"),
        ("```python\ndef fib(k):\n    return str(k)\n```", "returned"),
    ],
)
def test_broken_code_fails_clearly(text, why):
    v = check(text)
    assert not v.passed and why in v.detail, v.detail


def test_hang_fails_without_hanging_the_suite():
    v = check("```python\ndef fib(k):\n    while True:\n        pass\n```", timeout_s=1)
    assert not v.passed and "timed out" in v.detail


def test_the_block_that_defines_the_function_is_tested_and_named():
    text = "使い方:\n```python\nprint(fibonacci(10))\n```\n定義:\n```python\ndef fibonacci(k):\n    return k if k < 2 else fibonacci(k - 1) + fibonacci(k - 2)\n```"
    v = run("code_function", Output(text), {"k_values": [1, 2, 10]})
    assert v.passed and "code block 2 of 2" in v.detail, v.detail


def test_a_function_in_a_list_item_fence_runs():
    text = "1. 関数:\n\n   ```python\n   def fib(k):\n       a, b = 0, 1\n       for _ in range(k):\n           a, b = b, a + b\n       return a\n   ```\n2. 以上です。"
    v = run("code_function", Output(text), {"k_values": [1, 2, 10]})
    assert v.passed, v.detail


def test_the_verdict_records_which_sandbox_ran():
    v = check(ITERATIVE_0)
    assert v.evidence["sandbox"] in ("bwrap", "namespaces", "none") and v.detail.endswith(f"[sandbox: {v.evidence['sandbox']}]")


def test_strict_sandbox_refuses_to_run_without_a_jail(monkeypatch, capsys):
    from shisa_spec.spec import sandbox

    monkeypatch.setattr(sandbox, "best_mode", lambda: "none")  # as on a machine where no jail can be made
    v = check(ITERATIVE_0, sandbox="strict")
    assert not v.passed and "refused to run model code without a jail" in v.detail and v.evidence["sandbox"] == "none"
    monkeypatch.setattr(sandbox, "_STRICT", True)  # what --sandbox strict sets
    assert "refused" in check(ITERATIVE_0).detail
    assert capsys.readouterr().err == ""  # nothing ran, so no "not contained" line
    monkeypatch.setattr(sandbox, "_STRICT", False)
    v = check(ITERATIVE_0)  # without strict it runs, unjailed, and says what is not contained
    assert v.passed and v.evidence["sandbox"] == "none"
    assert capsys.readouterr().err.count("NOT contained") == 1
