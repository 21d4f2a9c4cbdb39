"""sandbox: model code runs in a separate, limited process and cannot hang or harm the suite."""

import os
import time

from shisa_spec.spec.sandbox import run_function

FIB = "def fib(k):\n    a, b = 0, 1\n    for _ in range(k):\n        a, b = b, a + b\n    return a\n"


def test_normal_function_returns_values_per_call():
    r = run_function(FIB, "fib", [[0], [1], [10], [100]])
    assert r.ok and not r.timed_out and r.error is None
    assert [x["value"] for x in r.results] == [0, 1, 55, 354224848179261915075]


def test_exceptions_are_reported_per_call():
    r = run_function("def f(x):\n    return 10 // x\n", "f", [[2], [0]])
    assert not r.ok and r.results[0] == {"value": 5}
    assert r.results[1]["error"].startswith("ZeroDivisionError")


def test_infinite_loop_times_out_without_hanging():
    t = time.monotonic()
    r = run_function("def f(x):\n    while True:\n        pass\n", "f", [[1]], timeout_s=1)
    assert r.timed_out and not r.ok and "timed out" in r.error
    assert time.monotonic() - t < 5


def test_sleeping_code_times_out():
    r = run_function("import time\ndef f(x):\n    time.sleep(60)\n", "f", [[1]], timeout_s=0.5)
    assert r.timed_out and not r.ok


def test_infinite_recursion_is_an_error_not_a_crash():
    r = run_function("def f(x):\n    return f(x + 1)\n", "f", [[1]])
    assert not r.ok and r.results[0]["error"].startswith("RecursionError")


def test_memory_bomb_is_stopped_by_the_address_space_limit():
    r = run_function("def f(x):\n    return len(bytearray(4 * 1024**3))\n", "f", [[1]], memory_mb=256)
    assert not r.ok and "MemoryError" in r.results[0]["error"]


def test_memory_bomb_at_definition_time():
    r = run_function("x = [0] * (10**10)\ndef f(k):\n    return k\n", "f", [[1]], memory_mb=256)
    assert not r.ok and r.error.startswith("while defining the code: MemoryError")


def test_files_land_in_a_throwaway_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = "import os\ndef f(x):\n    open('out.txt', 'w').write('hi')\n    return os.getcwd()\n"
    r = run_function(src, "f", [[1]])
    assert r.ok
    sandbox_dir = r.results[0]["value"]
    assert sandbox_dir != str(tmp_path)
    if r.sandbox == "none":  # a host folder, removed afterwards; in a jail it is the jail's own /tmp
        assert "shisa-sandbox-" in sandbox_dir and not os.path.exists(sandbox_dir)
    else:
        assert sandbox_dir == "/tmp"
    assert list(tmp_path.iterdir()) == []


def test_big_files_are_refused():
    r = run_function("def f(x):\n    open('big', 'wb').write(b'0' * (8 * 1024 * 1024))\n    return 1\n", "f", [[1]])
    assert not r.ok and ("OSError" in r.results[0]["error"] or "File too large" in r.results[0]["error"])


def test_syntax_error_is_reported():
    r = run_function("def f(x)\n    return x\n", "f", [[1]])
    assert not r.ok and "SyntaxError" in r.error


def test_missing_function_is_reported():
    r = run_function("def g(x):\n    return x\n", "f", [[1]])
    assert not r.ok and "no function 'f'" in r.error


def test_os_system_and_process_state_do_not_reach_the_test_process():
    cwd, env = os.getcwd(), dict(os.environ)
    src = (
        "import os, sys\n"
        "os.system('echo escaped > marker.txt; exit 3')\n"
        "os.chdir('/')\n"
        "os.environ['SHISA_SANDBOX_LEAK'] = '1'\n"
        "print('noise on stdout')\n"
        "def f(x):\n    return [os.environ.get('PYTHONPATH'), sorted(os.environ)]\n"
    )
    r = run_function(src, "f", [[1]])
    assert r.ok
    pythonpath, keys = r.results[0]["value"]
    assert pythonpath is None and set(keys) <= {"PATH", "LANG", "LC_CTYPE", "HOME", "PWD", "SHISA_SANDBOX_LEAK"}
    assert os.getcwd() == cwd and dict(os.environ) == env and "SHISA_SANDBOX_LEAK" not in os.environ
    assert not os.path.exists(os.path.join(cwd, "marker.txt"))


def test_exit_and_stdin_reads_are_contained():
    assert "status 7" in run_function("import os\nos._exit(7)\n", "f", [[1]]).error
    assert "SystemExit" in run_function("import sys\nsys.exit(1)\n", "f", [[1]]).error
    r = run_function("def f(x):\n    return input()\n", "f", [[1]])
    assert not r.ok and "EOFError" in r.results[0]["error"]


def test_unserialisable_results_come_back_as_repr():
    r = run_function("def f(x):\n    return {1, 2}\n", "f", [[1]])
    assert r.ok and r.results[0] == {"repr": "{1, 2}"}


def test_every_mode_that_exists_here_runs_code_and_an_unknown_one_is_refused():
    import pytest

    from shisa_spec.spec import sandbox

    for mode in sandbox.MODES:
        if sandbox.available(mode) is None:
            r = run_function(FIB, "fib", [[10]], mode=mode)
            assert r.ok and r.results == [{"value": 55}] and r.sandbox == mode
    assert sandbox.available("none") is None and sandbox.best_mode() in sandbox.MODES
    with pytest.raises(ValueError, match="sandbox mode must be one of"):
        run_function(FIB, "fib", [[1]], mode="chroot")


def test_fork_and_signals_are_refused_even_as_root():
    src = (
        "import os, signal\n"
        "def f(x):\n"
        "    out = []\n"
        "    for call in (os.fork, lambda: os.kill(os.getppid(), signal.SIGUSR1)):\n"
        "        try:\n            call()\n            out.append('allowed')\n"
        "        except OSError as e:\n            out.append(e.errno)\n"
        "    return out\n"
    )
    r = run_function(src, "f", [[1]])
    assert r.ok and r.results[0]["value"][0] == 1  # EPERM from the seccomp filter, whatever the uid
    assert r.results[0]["value"][1] in (1, 3)  # EPERM (filter) or ESRCH (outside the PID namespace)
