"""Run model-written Python in a jail: a separate process that cannot reach the network, the
host's files, its environment or its processes, with limits that hold as root.

Three modes, the best available chosen once per process (``best_mode``):

- ``bwrap`` (bubblewrap): new user, PID, network, IPC, UTS and cgroup namespaces; a read-only
  root holding only ``/usr`` (with ``/lib``, ``/bin``... as on the host), ``/etc/ld.so.cache``
  and the interpreter's own prefix; a fresh ``/proc`` and minimal ``/dev``; an empty tmpfs
  ``/tmp`` (also ``$HOME`` and the working directory) of bounded size; no host environment; no
  capabilities, uid 65534 inside; no nested user namespaces; dies with its parent.
- ``namespaces``: the same namespaces made with ``unshare(1)`` where the kernel allows user
  namespaces, and the same file-system view built by a small setup script (tmpfs root, read-only
  binds, ``pivot_root``, old root detached, every capability dropped) before the runner starts.
- ``none``: no jail can be made; only the limits below, and each run prints one line saying
  what is not contained. ``require_jail=True`` refuses to run in this mode.

In every mode, the runner (a fresh ``python -I -S``: no .pth files run, but the site-packages
directories are on its path) sets rlimits on address space, CPU time, file
size, processes and core dumps, and installs a seccomp filter (x86_64 and aarch64) that refuses
``fork``/``clone`` and signals to other processes, which holds for root too (``RLIMIT_NPROC`` does
not); in ``none`` mode it also refuses sockets. Source and arguments go in as JSON on stdin;
results come back as JSON on the original stdout, read back with a size cap (the code's own prints
go to /dev/null). On timeout, and after every run, the process group is killed; in the jails the
PID namespace dies with it, so nothing the code started survives.
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

MODES = ("bwrap", "namespaces", "none")
JAILS = ("bwrap", "namespaces")
TMP_BYTES = 64 * 1024 * 1024  # the jail's /tmp (and home)
OUTPUT_CAP = 4 * 1024 * 1024  # bytes of results read back
SECCOMP = True  # the runner's filter; tests turn it off to show what the namespaces contain on their own
NOT_CONTAINED = (
    "sandbox: no jail (neither bubblewrap nor user namespaces work here): model code runs as this user and NOT "
    "contained are the host's files (read, and write where this user may) and disk space beyond 1 MiB a file; "
    "contained: rlimits, timeout, empty environment, no fork, no sockets, no signals to other processes"
)

_RUNNER = r"""
import ctypes, io, json, os, resource, signal, struct, sys
req = json.loads(sys.stdin.buffer.read().decode("utf-8"))
sys.path += req["site_packages"]  # started with -S: .pth files are not run, installed packages still import
out = os.fdopen(os.dup(1), "wb")
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1)
sys.stdin = io.StringIO("")
sys.setrecursionlimit(req["recursion_limit"])
for res, val in ((resource.RLIMIT_AS, req["memory"]), (resource.RLIMIT_CPU, req["cpu_s"]),
                 (resource.RLIMIT_FSIZE, 1024 * 1024), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, 0)):
    try:
        resource.setrlimit(res, (val, val))
    except (ValueError, OSError):
        pass
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write raises OSError instead of killing

def seccomp(no_sockets):
    # refuse fork/clone (RLIMIT_NPROC does not hold for root) and signals to any other process
    arch = os.uname().machine
    if arch == "x86_64":
        audit, deny, tgkill = 0xC000003E, [56, 57, 58, 435, 62, 200, 424, 129, 297, 101], 234
        deny += [41, 53] if no_sockets else []
    elif arch == "aarch64":
        audit, deny, tgkill = 0xC00000B7, [220, 435, 129, 130, 424, 138, 240, 117], 131
        deny += [198, 199] if no_sockets else []
    else:
        return "no seccomp filter on " + arch
    LD, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06
    ALLOW, ERRNO, KILL = 0x7FFF0000, 0x00050000 | 1, 0x80000000
    body = [(LD, 0, 0, 0)]
    if arch == "x86_64":
        body.append(("x32",))
    for nr in deny:
        body.append((JEQ, "E", 0, nr))
    body += [(JEQ, 0, 3, tgkill), (LD, 0, 0, 16), (JEQ, 0, "E", os.getpid()), (RET, 0, 0, ALLOW), (RET, 0, 0, ALLOW)]
    prog = [(LD, 0, 0, 4), (JEQ, 1, 0, audit), (RET, 0, 0, KILL)]
    start = len(prog)
    n = len(body)
    errno_at = start + n  # index of the ERRNO return, after the body
    code = []
    for i, ins in enumerate(body):
        at = start + i
        if ins == ("x32",):
            ins = (JGE, "E", 0, 0x40000000)
        op, jt, jf, k = ins
        jt = errno_at - at - 1 if jt == "E" else jt
        jf = errno_at - at - 1 if jf == "E" else jf
        code.append((op, jt, jf, k))
    prog += code + [(RET, 0, 0, ERRNO)]
    raw = b"".join(struct.pack("HBBI", *p) for p in prog)
    buf = ctypes.create_string_buffer(raw)
    fprog = struct.pack("HxxxxxxP", len(prog), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return "no_new_privs failed"
    fbuf = ctypes.create_string_buffer(fprog)
    if libc.prctl(22, 2, ctypes.c_void_p(ctypes.addressof(fbuf)), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        return "seccomp failed: " + os.strerror(ctypes.get_errno())
    return None

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

note = seccomp(req["no_sockets"]) if req["seccomp"] else None
if note:
    os.write(2, ("sandbox: " + note + "\n").encode())
del ctypes, struct, seccomp
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

# Runs inside `unshare` as root of a fresh user namespace: builds the jail's file-system view,
# pivots into it, drops every capability, then execs the runner. argv[1] is JSON (see _ns_command).
_NS_SETUP = r"""
import ctypes, json, os, sys
cfg = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
def check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        sys.stderr.write(f"sandbox setup: {what}: {os.strerror(e)}\n")
        os._exit(121)
def b(s):
    return None if s is None else s.encode()
def mount(src, dst, fs, flags, data=None):
    check(libc.mount(b(src), b(dst), b(fs), ctypes.c_ulong(flags), b(data)), f"mount {src or fs} on {dst}")
RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND, REC, PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
def keep(path):  # flags a bind remount must keep (locked in a user namespace)
    f = os.statvfs(path).f_flag
    return (f & (NOSUID | NODEV | NOEXEC | 1024 | 2048)) | ((1 << 21) if f & 4096 else 0)
def ro_bind(src, dst, is_dir=True):
    if is_dir:
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    mount(src, dst, None, BIND | REC)
    mount(None, dst, None, REMOUNT | BIND | RDONLY | keep(src))
mount(None, "/", None, REC | PRIVATE)
root = cfg["root"]
mount("jail", root, "tmpfs", NOSUID | NODEV, "size=1m,mode=755")
for kind, src, dst in cfg["entries"]:
    d = root + dst
    if kind == "symlink":
        os.symlink(src, d)
    elif kind == "dir":
        ro_bind(src, d)
    elif kind == "file":
        ro_bind(src, d, is_dir=False)
os.makedirs(root + "/dev")
mount("dev", root + "/dev", "tmpfs", NOSUID | NOEXEC, "size=64k,mode=755")
for dev in cfg["devices"]:
    open(root + "/dev/" + dev, "a").close()
    mount("/dev/" + dev, root + "/dev/" + dev, None, BIND)
os.symlink("/proc/self/fd", root + "/dev/fd")
os.makedirs(root + "/proc")
mount("proc", root + "/proc", "proc", NOSUID | NODEV | NOEXEC)
os.makedirs(root + "/tmp")
mount("tmp", root + "/tmp", "tmpfs", NOSUID | NODEV, f"size={cfg['tmp_bytes']},mode=1777")
os.makedirs(root + "/oldroot")
nr = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)
if nr is None:
    sys.stderr.write("sandbox setup: pivot_root unknown on " + os.uname().machine + "\n")
    os._exit(121)
check(libc.syscall(nr, b(root), b(root + "/oldroot")), "pivot_root")
os.chdir("/")
check(libc.umount2(b"/oldroot", 2), "umount old root")  # MNT_DETACH
os.rmdir("/oldroot")
mount(None, "/", None, REMOUNT | BIND | RDONLY | NOSUID | NODEV)
libc.sethostname(b"jail", 4)
for cap in range(64):  # empty the bounding set, so no exec regains a capability
    libc.prctl(24, cap, 0, 0, 0)
libc.prctl(47, 4, 0, 0, 0)  # clear ambient capabilities
hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)
data = (ctypes.c_uint32 * 6)()
check(libc.capset(hdr, data), "capset")
os.chdir("/tmp")
os.execve(cfg["python"], [cfg["python"], "-I", "-S", "-c", cfg["runner"]], cfg["env"])
"""


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # the code ran and every call returned a value (see results for per-call errors)
    results: list[dict[str, Any]] = field(default_factory=list)  # per call: {"value"}, {"repr"} or {"error"}
    error: str | None = None  # why nothing (or not everything) came back
    timed_out: bool = False
    stderr_tail: str = ""
    sandbox: str = "none"  # which mode ran it: bwrap, namespaces or none


@functools.lru_cache(maxsize=None)
def _site_packages() -> list[str]:
    return [p for p in site.getsitepackages() if os.path.isdir(p)]


def _python() -> str:
    return os.path.realpath(sys.executable)


def _entries() -> list[tuple[str, str, str]]:
    """What the jail's root holds, as (kind, host source, jail path): read-only, only what Python needs."""
    out: list[tuple[str, str, str]] = [("dir", "/usr", "/usr")]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            out.append(("symlink", os.readlink(d), d))
        elif os.path.isdir(d):
            out.append(("dir", d, d))
    if os.path.isfile("/etc/ld.so.cache"):
        out.append(("file", "/etc/ld.so.cache", "/etc/ld.so.cache"))
    prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, os.path.dirname(os.path.dirname(_python())))}
    for p in sorted(prefixes):
        if p != "/usr" and not p.startswith("/usr/") and p != "/" and os.path.isdir(p):
            out.append(("dir", p, p))
    return out


_DEVICES = ("null", "zero", "full", "random", "urandom")
_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}


def _bwrap_command(bwrap: str) -> list[str]:
    cmd = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    cmd += ["--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534"]
    cmd += ["--hostname", "jail"]
    for kind, src, dst in _entries():
        cmd += ["--symlink", src, dst] if kind == "symlink" else ["--ro-bind", src, dst]
    cmd += ["--proc", "/proc", "--size", "65536", "--tmpfs", "/dev"]  # not --dev: its tmpfs (and /dev/shm) has no size cap
    cmd += [a for d in _DEVICES for a in ("--dev-bind", "/dev/" + d, "/dev/" + d)] + ["--symlink", "/proc/self/fd", "/dev/fd"]
    cmd += ["--size", str(TMP_BYTES), "--tmpfs", "/tmp", "--remount-ro", "/"]
    cmd += ["--clearenv"] + [a for k, v in _ENV.items() for a in ("--setenv", k, v)] + ["--chdir", "/tmp"]
    return cmd + [_python(), "-I", "-S", "-c", _RUNNER]


def _ns_command(unshare: str, root: str) -> list[str]:
    cfg = {"root": root, "entries": _entries(), "tmp_bytes": TMP_BYTES, "python": _python(), "runner": _RUNNER, "env": _ENV, "devices": _DEVICES}
    flags = ["--user", "--map-root-user", "--pid", "--fork", "--kill-child", "--net", "--ipc", "--uts", "--mount", "--cgroup"]
    return [unshare, *flags, _python(), "-I", "-S", "-c", _NS_SETUP, json.dumps(cfg)]  # -S: the setup needs only the stdlib


def _plain_command() -> list[str]:
    return [_python(), "-I", "-S", "-c", _RUNNER]


def _command(mode: str, tmp: str) -> list[str]:
    if mode == "bwrap":
        return _bwrap_command(shutil.which("bwrap") or "bwrap")
    if mode == "namespaces":
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        return _ns_command(shutil.which("unshare") or "unshare", root)
    return _plain_command()


_STRICT = False


def set_strict(on: bool) -> None:
    """Process-wide: refuse to run model code without a jail (``--sandbox strict``)."""
    global _STRICT
    _STRICT = bool(on)


def strict() -> bool:
    return _STRICT


@functools.lru_cache(maxsize=None)
def available(mode: str) -> str | None:
    """None if ``mode`` works here, else why not (probed once per process with a trivial run)."""
    if mode == "none":
        return None
    tool = "bwrap" if mode == "bwrap" else "unshare"
    if not shutil.which(tool):
        return f"{tool} is not installed" + (" (Debian/Ubuntu: apt-get install bubblewrap)" if tool == "bwrap" else "")
    r = run_function("def f(x):\n    return x\n", "f", [[1]], timeout_s=10, mode=mode)
    if r.ok and r.results == [{"value": 1}]:
        return None
    return f"{tool} cannot make a jail here: {(r.error or '')} {r.stderr_tail.strip()[-300:]}".strip()


def best_mode() -> str:
    """The strongest mode that works on this machine: bwrap, else namespaces, else none."""
    return next(m for m in MODES if available(m) is None)


def run_function(
    source: str,
    func: str,
    args_list: list[list[Any]],
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    recursion_limit: int = 3000,
    mode: str | None = None,
    require_jail: bool = False,
) -> SandboxResult:
    """Define ``source`` in a fresh jailed process and call ``func(*args)`` for each args in ``args_list``.

    ``mode`` picks bwrap, namespaces or none (default: ``best_mode()``); ``require_jail`` refuses
    to run without one (the result's error says so)."""
    if mode is None:
        mode = best_mode()
    if mode not in MODES:
        raise ValueError(f"sandbox mode must be one of {', '.join(MODES)}, not {mode!r}")
    if require_jail and mode not in JAILS:
        why = "; ".join(f"{m}: {available(m) or 'works here, but was not chosen'}" for m in JAILS)
        return SandboxResult(False, [], f"refused to run model code without a jail (strict sandbox): {why}", sandbox=mode)
    if mode == "none":
        print(NOT_CONTAINED, file=sys.stderr)
    cpu_s = int(timeout_s) + 2
    request = json.dumps(
        {"source": source, "func": func, "args_list": args_list, "recursion_limit": recursion_limit,
         "memory": memory_mb * 1024 * 1024, "cpu_s": cpu_s, "no_sockets": mode == "none",
         "seccomp": SECCOMP, "site_packages": _site_packages()}
    ).encode("utf-8")
    env = dict(_ENV)
    with tempfile.TemporaryDirectory(prefix="shisa-sandbox-") as tmp:
        work = os.path.join(tmp, "work")
        os.mkdir(work)
        if mode == "none":
            env["HOME"] = work
        err_path = os.path.join(tmp, ".stderr")
        alive_r, alive_w = os.pipe()  # every process of the run inherits the write end: EOF = all are gone
        with open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(
                    _command(mode, tmp), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                    cwd=work, env=env, start_new_session=True, pass_fds=(alive_w,),
                )
            finally:
                os.close(alive_w)
            out, timed_out, overflow = _exchange(proc, request, timeout_s)
            _kill_group(proc.pid)  # anything the code left running; in a jail its PID namespace dies with it
            proc.wait()
            _wait_for_eof(alive_r, 5.0)  # the kernel tears a PID namespace down asynchronously
            os.close(alive_r)
        with open(err_path, "rb") as f:
            f.seek(max(0, os.path.getsize(err_path) - 2000))
            stderr_tail = f.read().decode("utf-8", "replace")
    try:
        reply = json.loads(out.decode("ascii")) if out and not overflow else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        reply = None
    if not isinstance(reply, dict):
        if overflow:
            why = f"it wrote more than {OUTPUT_CAP} bytes to the result channel"
        elif timed_out:
            why = f"timed out after {timeout_s:g}s (hang or too slow)"
        elif proc.returncode and proc.returncode < 0:
            sig = signal.Signals(-proc.returncode).name if -proc.returncode in signal.valid_signals() else -proc.returncode
            why = f"killed by signal {sig} (CPU or memory limit, or a crash)"
        else:
            why = f"the process exited with status {proc.returncode} before returning results"
        return SandboxResult(False, [], why, timed_out, stderr_tail, mode)
    if "error" in reply:
        return SandboxResult(False, [], str(reply["error"]), False, stderr_tail, mode)
    results = reply.get("results", [])
    return SandboxResult(all("error" not in r for r in results), results, None, False, stderr_tail, mode)


def _exchange(proc: subprocess.Popen, request: bytes, timeout_s: float) -> tuple[bytes, bool, bool]:
    """Send the request, read the reply until EOF, the deadline or the size cap: (reply, timed out, over the cap)."""

    def feed() -> None:
        try:
            proc.stdin.write(request)
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    threading.Thread(target=feed, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    size = 0
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return b"".join(chunks), True, False
            if not sel.select(left):
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
            size += len(data)
            if size > OUTPUT_CAP:
                return b"", False, True
    left = deadline - time.monotonic()
    try:
        proc.wait(max(left, 0.01))
    except subprocess.TimeoutExpired:
        return b"".join(chunks), True, False
    return b"".join(chunks), False, False


def _wait_for_eof(fd: int, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if sel.select(left) and not os.read(fd, 4096):
                return


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
