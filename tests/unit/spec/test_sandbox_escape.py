"""Escape attempts against the jail, in each jail mode (bwrap, namespaces).

Every attack sits beside a correct ``fibonacci`` in a model answer run by the ``code_function``
check: the check must pass (so the attack ran to its end, and found nothing it could turn into a
wrong answer: a leaked secret makes ``fibonacci`` return -1), and the host is then examined for
the attack's effect. A mode that cannot exist on this machine is skipped with the reason why.
"""

import os
import secrets
import signal
import socket
import tempfile
import textwrap
from pathlib import Path

import pytest

from shisa_spec.spec import sandbox
from shisa_spec.spec.checks import Output, run

K = [1, 2, 3, 10, 15]
FIB = """
def fibonacci(k):
    if LEAKED:
        return -1
    a, b = 0, 1
    for _ in range(k):
        a, b = b, a + b
    return a
"""


@pytest.fixture(params=sandbox.JAILS)
def mode(request, monkeypatch):
    why = sandbox.available(request.param)
    if why:
        pytest.skip(f"no {request.param} jail on this machine: {why}")
    monkeypatch.setattr(sandbox, "best_mode", lambda: request.param)
    return request.param


@pytest.fixture(params=[True, False], ids=["seccomp", "namespaces-only"])
def seccomp(request, monkeypatch):
    """With the runner's seccomp filter, and without it: what the namespaces contain on their own."""
    monkeypatch.setattr(sandbox, "SECCOMP", request.param)
    return request.param


def attack(mode: str, code: str, timeout_s: float = 5):
    """Run ``code`` (which sets LEAKED) beside a correct fibonacci through the check; it must pass in ``mode``."""
    src = "LEAKED = False\n" + textwrap.dedent(code) + FIB
    v = run("code_function", Output(f"```python\n{src}\n```"), {"k_values": K, "timeout_s": timeout_s, "sandbox": "strict"})
    assert v.passed, v.detail
    assert v.evidence["sandbox"] == mode and f"[sandbox: {mode}]" in v.detail
    assert "definitions alone" not in v.detail  # the attack ran in full, it was not dropped
    return v


def processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


def test_write_outside_the_jails_tmp(mode, tmp_path):
    home_dir = Path(tempfile.mkdtemp(dir=Path.home(), prefix=".shisa-escape-"))
    try:
        targets = [tmp_path / "escaped", home_dir / "escaped", Path.cwd() / f".escaped-{secrets.token_hex(4)}"]
        attack(mode, f"""
            import os
            for p in {[str(t) for t in targets]!r}:
                for q in (p, "/proc/1/root" + p, "/proc/self/root" + p):
                    try:
                        os.makedirs(os.path.dirname(q), exist_ok=True)
                        open(q, "w").write("escaped")
                    except OSError:
                        pass
            """)
        assert [t for t in targets if t.exists()] == []
    finally:
        for t in targets:
            t.unlink(missing_ok=True)
        os.rmdir(home_dir) if not any(home_dir.iterdir()) else None


def test_read_a_secret_in_the_real_home(mode):
    token = secrets.token_hex(16)
    secret = Path.home() / f".shisa-escape-secret-{token[:8]}"
    secret.write_text(token)
    try:
        attack(mode, f"""
            import os
            path = {str(secret)!r}
            for p in (path, "/proc/1/root" + path, "/proc/self/root" + path, os.path.expanduser("~/" + os.path.basename(path))):
                try:
                    LEAKED = LEAKED or {token!r} in open(p).read()
                except OSError:
                    pass
            for d in ("/root", "/home", os.path.expanduser("~"), "/proc/1/root/root"):
                try:
                    names = os.listdir(d)
                except OSError:
                    continue
                for f in names:
                    try:
                        LEAKED = LEAKED or {token!r} in open(os.path.join(d, f), errors="replace").read()
                    except OSError:
                        pass
            """)
    finally:
        secret.unlink()


def test_read_a_token_in_the_parents_environment(mode, monkeypatch):
    token = "hf_" + secrets.token_hex(16)
    monkeypatch.setenv("HF_TOKEN", token)
    attack(mode, f"""
        import os
        LEAKED = {token!r} in repr(dict(os.environ))
        for pid in ["self", str(os.getppid()), {str(os.getpid())!r}] + os.listdir("/proc"):
            try:
                LEAKED = LEAKED or {token!r}.encode() in open(f"/proc/{{pid}}/environ", "rb").read()
            except OSError:
                pass
        """)


def test_connect_to_a_listener_on_the_hosts_loopback(mode):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.setblocking(False)
    port = srv.getsockname()[1]
    try:
        attack(mode, f"""
            import socket
            for host in ("127.0.0.1", "localhost", "::1"):
                try:
                    s = socket.create_connection((host, {port}), timeout=1)
                    s.sendall(b"leak")
                    LEAKED = True
                except OSError:
                    pass
            """)
        with pytest.raises(BlockingIOError):
            srv.accept()  # nobody connected
    finally:
        srv.close()


def test_bounded_fork_bomb_ends_and_leaves_no_process(mode, seccomp):
    marker = f"shisa-escape-bomb-{secrets.token_hex(4)}"
    attack(mode, f"""
        import os, subprocess, threading, time
        for i in range(300):
            try:
                if os.fork() == 0:
                    os.execv("/usr/bin/sleep", [{marker!r}, "1000"])
            except OSError:
                break
        for i in range(50):
            try:
                threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()
            except RuntimeError:
                break
        try:
            subprocess.Popen([{marker!r}, "1000"], executable="/usr/bin/sleep")
        except OSError:
            pass
        """, timeout_s=10)
    assert processes_with(marker) == []


def test_daemonised_child_is_killed_when_the_check_ends(mode, seccomp):
    marker = f"shisa-escape-daemon-{secrets.token_hex(4)}"
    attack(mode, f"""
        import os
        try:
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv("/usr/bin/sleep", [{marker!r}, "100000"])
                os._exit(0)
            os.wait()
        except OSError:
            pass
        """)
    assert processes_with(marker) == []


def test_signal_or_kill_the_parent_pytest_process(mode, seccomp):
    got = []
    old = signal.signal(signal.SIGUSR1, lambda *a: got.append(a))
    try:
        me = os.getpid()
        attack(mode, f"""
            import os, signal
            # pytest's pid and group, and the parent (pytest itself were the code not jailed);
            # not the jail's own init (1) or this process, which would only end the run
            for pid in {{{me}, os.getppid()}} - {{0, 1, os.getpid()}}:
                for sig in (signal.SIGUSR1, signal.SIGKILL):
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            try:
                os.killpg({os.getpgid(me)}, signal.SIGUSR1)
            except OSError:
                pass
            """)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert got == []  # and this test process is still alive to say so


def test_gigabytes_to_stdout_and_stderr(mode):
    attack(mode, """
        import os, sys
        chunk = b"x" * (1 << 20)
        for fd in (1, 2):
            for _ in range(2048):  # 2 GiB each
                try:
                    os.write(fd, chunk)
                except OSError:
                    break
        print("y" * (1 << 20))
        """, timeout_s=30)


def test_gigabytes_to_disk_are_capped_by_the_jails_tmpfs(mode):
    fill = """
        import os
        WRITTEN = 0
        chunk = b"x" * (1 << 20)
        for n, d in enumerate((os.getcwd(), "/tmp", os.path.expanduser("~"), "/var/tmp", "/dev/shm", "/dev")):
            for i in range(2048):
                try:
                    with open(os.path.join(d, f"fill{n}-{i}"), "wb") as f:
                        f.write(chunk)
                    WRITTEN += len(chunk)
                except OSError:
                    break
        def written(_):
            return WRITTEN
        """
    attack(mode, fill, timeout_s=30)
    r = sandbox.run_function(textwrap.dedent(fill), "written", [[0]], timeout_s=30, mode=mode)
    assert r.ok, r.error
    assert 32 << 20 <= r.results[0]["value"] <= sandbox.TMP_BYTES  # it really wrote, and hit the tmpfs cap


def test_flooding_the_result_channel_fails_cleanly(mode):
    src = textwrap.dedent("""
        import os
        def fibonacci(k):
            chunk = b"[" * (1 << 20)
            for fd in range(3, 10):
                for _ in range(1024):
                    try:
                        os.write(fd, chunk)
                    except OSError:
                        break
            return 1
        """)
    r = sandbox.run_function(src, "fibonacci", [[1]], timeout_s=20, mode=mode)
    assert not r.ok and f"more than {sandbox.OUTPUT_CAP} bytes" in r.error
