"""Run model-written Python in a separate, limited process; never in the test process.

A fresh ``python -I`` (isolated: no site, no PYTHON* variables, no cwd on sys.path) runs in a
throwaway temporary directory, in its own session, with rlimits on address space, CPU time,
file size, processes and core dumps, and an environment of only PATH and LANG. Source and
arguments go in as JSON on stdin; results come back as JSON on the process's original stdout
(the code's own prints go to /dev/null). On timeout the whole process group is killed.

This contains accidents (hangs, recursion, memory bombs, stray files), it is not a security
jail: the code still runs as this user and can read the file system.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

_RUNNER = r"""
import io, json, os, sys
req = json.loads(sys.stdin.buffer.read().decode("utf-8"))
out = os.fdopen(os.dup(1), "wb")
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1)
sys.stdin = io.StringIO("")
sys.setrecursionlimit(req["recursion_limit"])

def describe(e):
    return f"{type(e).__name__}: {e}"[:500]

def encode(v):
    try:
        return {"value": json.loads(json.dumps(v))}
    except (TypeError, ValueError, RecursionError):
        try:
            return {"repr": repr(v)[:200]}
        except BaseException as e:
            return {"error": "unrepresentable result: " + describe(e)}

def send(obj):
    out.write(json.dumps(obj).encode("ascii"))
    out.flush()

ns = {"__name__": "__sandbox__", "__builtins__": __builtins__}
try:
    exec(compile(req["source"], "<model code>", "exec"), ns)
except BaseException as e:
    send({"error": "while defining the code: " + describe(e)})
    raise SystemExit(0)
name = req["func"]
fn = ns.get(name)
if not callable(fn):
    send({"error": f"no function {name!r} defined"})
    raise SystemExit(0)
results = []
for args in req["args_list"]:
    try:
        results.append(encode(fn(*args)))
    except BaseException as e:
        results.append({"error": describe(e)})
send({"results": results})
"""


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # the code ran and every call returned a value (see results for per-call errors)
    results: list[dict[str, Any]] = field(default_factory=list)  # per call: {"value"}, {"repr"} or {"error"}
    error: str | None = None  # why nothing (or not everything) came back
    timed_out: bool = False
    stderr_tail: str = ""


def _limits(memory_mb: int, cpu_s: int) -> None:
    """Runs in the child between fork and exec."""
    mem = memory_mb * 1024 * 1024
    for res, val in (
        (resource.RLIMIT_AS, mem),
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_FSIZE, 1024 * 1024),
        (resource.RLIMIT_CORE, 0),
        (getattr(resource, "RLIMIT_NPROC", None), 0),  # no fork/exec: ignored for root, hence "where allowed"
    ):
        if res is None:
            continue
        try:
            resource.setrlimit(res, (val, val))
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write raises OSError instead of killing


def run_function(
    source: str,
    func: str,
    args_list: list[list[Any]],
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    recursion_limit: int = 3000,
) -> SandboxResult:
    """Define ``source`` in a fresh process and call ``func(*args)`` for each args in ``args_list``."""
    request = json.dumps({"source": source, "func": func, "args_list": args_list, "recursion_limit": recursion_limit})
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    with tempfile.TemporaryDirectory(prefix="shisa-sandbox-") as tmp:
        err_path = os.path.join(tmp, ".stderr")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _RUNNER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=tmp,
                env=env,
                start_new_session=True,
                preexec_fn=lambda: _limits(memory_mb, max(1, math.ceil(timeout_s)) + 1),
            )
            timed_out = False
            try:
                out, _ = proc.communicate(request.encode("utf-8"), timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                out, _ = proc.communicate()
            _kill_group(proc.pid)  # anything the code left running in the background
        with open(err_path, "rb") as f:
            f.seek(max(0, os.path.getsize(err_path) - 2000))
            stderr_tail = f.read().decode("utf-8", "replace")
    try:
        reply = json.loads(out.decode("ascii")) if out else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        reply = None
    if not isinstance(reply, dict):
        if timed_out:
            why = f"timed out after {timeout_s:g}s (hang or too slow)"
        elif proc.returncode and proc.returncode < 0:
            sig = signal.Signals(-proc.returncode).name if -proc.returncode in signal.valid_signals() else -proc.returncode
            why = f"killed by signal {sig} (CPU or memory limit, or a crash)"
        else:
            why = f"the process exited with status {proc.returncode} before returning results"
        return SandboxResult(False, [], why, timed_out, stderr_tail)
    if "error" in reply:
        return SandboxResult(False, [], str(reply["error"]), False, stderr_tail)
    results = reply.get("results", [])
    return SandboxResult(all("error" not in r for r in results), results, None, False, stderr_tail)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
