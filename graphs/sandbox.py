"""Run a short Python program in a sandboxed subprocess: :func:`run_program`.

Used by the program-execution critic (:mod:`graphs.critique.program`) to check a draft's answer
against a program's printed result. Opt-in only: nothing in sc-chains runs model-written code
unless you construct a :class:`~graphs.critique.program.ProgramCritic` or pass
:func:`~graphs.critique.program.program_verifier` yourself.

Trust model
-----------
The program is model-written code, treated as *careless, not hostile*: it may loop forever,
allocate without bound, print megabytes, fork, write files or try the network by accident. The
sandbox bounds all of that and keeps your secrets out of its reach where the OS makes that
cheap. It is **not** a security boundary against an adversary who targets it (no seccomp, no
read-only file system, no separate kernel): for untrusted users' code run the whole host process
in a container or VM (gVisor, nsjail, firejail, a throwaway VM). What is applied, per run:

- **Interpreter**: ``sys.executable -I`` (isolated mode: no ``PYTHON*`` variables, no user
  site-packages, the script's folder not on ``sys.path``).
- **Environment**: empty (no inherited variables, so no API keys or tokens from the
  environment).
- **Working directory**: a fresh temporary folder holding ``main.py``; the program's relative
  writes land there; the folder is deleted afterwards, whatever happened.
- **Resource limits** (``setrlimit`` before exec): CPU seconds, address space (memory), size of
  any file written, no core dumps, open files; number of processes (``RLIMIT_NPROC``) when not
  root. The kernel ignores ``RLIMIT_NPROC`` for root, so as root a ``pids`` cgroup (v1
  ``/sys/fs/cgroup/pids`` or a v2 folder with the ``pids`` controller) bounds the process count
  when it is writable.
- **Output**: at most ``output_bytes`` per stream are kept; more kills the program
  (``killed_by_limit="output"``).
- **Wall clock**: after ``timeout_s`` the whole process group is killed (``SIGKILL``).
- **Namespaces** (Linux ``unshare``, used when it works here: as root, or unprivileged user
  namespaces with ``-r``): a new network namespace (no interfaces but a down loopback, so the
  network is off), a new PID namespace (killing its first process kills every process the
  program started, even ones that left the process group) with a private ``/proc`` (other
  processes' environments and command lines are not visible), and new IPC/UTS namespaces.
  Without ``unshare`` the network stays reachable; :attr:`ProgramResult.isolation` lists which
  protections applied, so a caller can refuse to run without ``"network"``.

Not covered: the program can read any file the host user can read (run the host process as an
unprivileged user to shrink that), and it shares the CPU with you within its CPU-second limit.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from adapters.errors import InvalidRequestError, SCChainsError
from graphs.validate import check_choice, check_int, check_number

__all__ = [
    "LimitReason",
    "SandboxUnavailableError",
    "ProgramResult",
    "SandboxLimits",
    "extract_program",
    "run_program",
]

LimitReason = Literal["cpu", "memory", "output", "file_size", "processes"]

_MAX_CODE_CHARS = 100_000
_NS_FLAGS = ("-n", "-p", "-f", "--kill-child", "-m", "--mount-proc", "-i", "-u")


@dataclass(frozen=True)
class SandboxLimits:
    """Bounds for one sandboxed run (every field is capped: no argument lifts the bounds)."""

    timeout_s: float = 10.0
    """Wall-clock seconds before the process group is killed; in (0, 120]."""
    cpu_s: int = 5
    """CPU seconds (``RLIMIT_CPU``); 1..60."""
    memory_mb: int = 512
    """Address space in MiB (``RLIMIT_AS``); 64..8192. The interpreter itself needs ~30 MiB."""
    output_bytes: int = 65_536
    """Bytes kept per stream (stdout, stderr); more kills the program. 1..10 MiB."""
    file_bytes: int = 1_048_576
    """Largest file the program may write (``RLIMIT_FSIZE``); 0..64 MiB."""
    max_processes: int = 16
    """Processes and threads the program may have at once (``RLIMIT_NPROC`` / pids cgroup); 1..256."""
    network: Literal["off", "best_effort"] = "best_effort"
    """``"off"``: refuse to run (``RuntimeError``) when no network namespace can be made;
    ``"best_effort"``: run anyway and leave ``"network"`` out of :attr:`ProgramResult.isolation`."""
    python: str = field(default_factory=lambda: sys.executable)
    """The interpreter (default: the current one), run with ``-I``."""

    def __post_init__(self) -> None:
        check_number("timeout_s", self.timeout_s, low=0.1, high=120)
        for name, low, high in (("cpu_s", 1, 60), ("memory_mb", 64, 8192), ("output_bytes", 1, 10 * 2**20),
                                ("file_bytes", 0, 64 * 2**20), ("max_processes", 1, 256)):
            check_int(name, getattr(self, name), minimum=low, maximum=high)
        check_choice("network", self.network, ("off", "best_effort"))
        if not isinstance(self.python, str) or not os.path.isabs(self.python):
            raise InvalidRequestError("python", self.python, "pass an absolute interpreter path")


@dataclass(frozen=True)
class ProgramResult:
    """What one sandboxed run did."""

    stdout: str
    """Standard output (at most ``output_bytes``, decoded as UTF-8 with replacement)."""
    stderr: str
    """Standard error (same cap)."""
    exit_status: int | None
    """The exit code; negative ``-N`` when killed by signal ``N``; ``None`` if never reaped."""
    timed_out: bool
    """The wall-clock timeout killed it."""
    killed_by_limit: LimitReason | None
    """Which resource limit stopped it, if any (``memory`` and ``processes`` are read from the
    program's own ``MemoryError`` / failed ``fork`` in its stderr; the others are certain)."""
    duration_s: float
    """Wall-clock seconds."""
    isolation: tuple[str, ...] = ()
    """Protections that applied: ``"network"``, ``"pid"`` (PID namespace + private /proc),
    ``"processes"`` (a process-count limit the kernel enforces)."""

    @property
    def ok(self) -> bool:
        """Exited 0, on time, within every limit."""
        return self.exit_status == 0 and not self.timed_out and self.killed_by_limit is None


# -- extracting a program from a reply ----------------------------------------------------------
_FENCE = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def extract_program(text: str) -> str | None:
    """The Python program in a reply, or ``None``.

    Takes the fenced blocks tagged ``python``/``py`` (untagged fences only when no block is
    tagged and they parse as Python), joined in order. When the program prints nothing and its
    last statement is an expression, that expression is printed (so ``total`` at the end of a
    block reports its value). A program that does not parse is returned as is (it fails when run).
    """
    blocks = [(tag, body) for tag, body in _FENCE.findall(text or "")]
    code = [b for t, b in blocks if t]
    if not code:
        code = [b for _, b in blocks if b.strip() and _parses(b)]
    src = "\n".join(c.rstrip() for c in code).strip()
    if not src:
        return None
    return _print_last_expression(src) + "\n"


def _parses(src: str) -> bool:
    try:
        ast.parse(src)
    except (SyntaxError, ValueError):
        return False
    return True


def _print_last_expression(src: str) -> str:
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError):
        return src
    prints = any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print" for n in ast.walk(tree))
    last = tree.body[-1] if tree.body else None
    if prints or not isinstance(last, ast.Expr) or last.end_lineno is None:
        return src
    lines = src.split("\n")
    head = "\n".join(lines[: last.lineno - 1])
    expr = ast.get_source_segment(src, last)
    return f"{head}\nprint({expr})" if head else f"print({expr})"


# -- isolation probes ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _unshare_prefix(python: str) -> tuple[str, ...]:
    """The ``unshare`` command prefix that works here (``()`` when none does)."""
    exe = shutil.which("unshare")
    if not exe or not sys.platform.startswith("linux"):
        return ()
    for extra in ((), ("-r",)):
        cmd = (exe, *extra, *_NS_FLAGS, "--")
        try:
            done = subprocess.run([*cmd, python, "-I", "-c", "pass"], env={}, capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return cmd
    return ()


def _pids_cgroup_root() -> Path | None:
    """A writable cgroup folder with the ``pids`` controller (used as root), or ``None``."""
    v1, v2 = Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")
    if (v1 / "cgroup.procs").exists() and os.access(v1, os.W_OK):
        return v1
    if "pids" in _read(v2 / "cgroup.subtree_control").split() and os.access(v2, os.W_OK):
        return v2
    return None


def _read(p: Path) -> str:
    try:
        return p.read_text()
    except OSError:
        return ""


def _tasks_of_uid(uid: int) -> int:
    """Threads (tasks) the user runs now: ``RLIMIT_NPROC`` counts them all."""
    n = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        text = _read(status)
        m = re.search(r"^Uid:\s+(\d+)", text, re.M)
        t = re.search(r"^Threads:\s+(\d+)", text, re.M)
        if m and int(m.group(1)) == uid:
            n += int(t.group(1)) if t else 1
    return n


def _process_bound(limits: SandboxLimits) -> tuple[Path | None, int | None]:
    """``(pids cgroup, RLIMIT_NPROC value)``: how the process count is bounded (see the docstring).

    ``+ 2`` leaves room for ``unshare`` and its forked child.
    """
    if os.geteuid() != 0:
        return None, _tasks_of_uid(os.getuid()) + limits.max_processes + 2
    root = _pids_cgroup_root()
    if root is None:
        return None, None
    cg = root / f"sc-chains-sandbox-{os.getpid()}-{time.monotonic_ns()}"
    try:
        cg.mkdir()
        (cg / "pids.max").write_text(str(limits.max_processes + 2))
    except OSError:
        _remove_cgroup(cg)
        return None, None
    return cg, None


def _remove_cgroup(cg: Path | None) -> None:
    for _ in range(40):  # bounded: the PID namespace is torn down by the time we reaped it
        if cg is None or not cg.exists():
            return
        try:
            cg.rmdir()
            return
        except OSError:
            time.sleep(0.05)


def _preexec(limits: SandboxLimits, cgroup: Path | None, nproc: int | None):
    """Runs in the child between fork and exec: join the pids cgroup, set the rlimits."""
    mem = limits.memory_mb * 2**20
    procs = None if cgroup is None else str(cgroup / "cgroup.procs")

    def apply() -> None:  # only system calls here: other threads' locks may be held at fork
        if procs is not None:
            try:
                fd = os.open(procs, os.O_WRONLY)
                try:
                    os.write(fd, b"0")  # "0": the writing process itself (v1 and v2)
                finally:
                    os.close(fd)
            except OSError:
                pass  # then "processes" is left out of the result's isolation
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return apply


class SandboxUnavailableError(SCChainsError, RuntimeError):
    """The sandbox cannot give a protection the limits require (``network="off"``)."""

    def __init__(self, missing: str, fix: str) -> None:
        self.missing, self.fix = missing, fix
        super().__init__(f"the program sandbox cannot provide {missing} here; {fix}")


def run_program(code: str, limits: SandboxLimits | None = None) -> ProgramResult:
    """Run ``code`` (Python source) in the sandbox described in the module docstring."""
    limits = limits or SandboxLimits()
    if not isinstance(code, str) or not code.strip() or len(code) > _MAX_CODE_CHARS:
        shown = code[:60] if isinstance(code, str) else code
        raise InvalidRequestError("code", shown, f"pass non-empty Python source of at most {_MAX_CODE_CHARS} characters")
    prefix = _unshare_prefix(limits.python)
    if limits.network == "off" and not prefix:
        raise SandboxUnavailableError(
            "network isolation (no working `unshare -n`)",
            "run where user namespaces or root are available, or pass network='best_effort'",
        )
    tmp = Path(tempfile.mkdtemp(prefix="sc-chains-sandbox-"))
    cgroup = None
    try:
        (tmp / "main.py").write_text(code, encoding="utf-8")
        cgroup, nproc = _process_bound(limits)
        start = time.monotonic()
        proc = subprocess.Popen(
            [*prefix, limits.python, "-I", "main.py"], cwd=tmp, env={}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=_preexec(limits, cgroup, nproc),
        )
        in_cgroup = cgroup is not None and str(proc.pid) in _read(cgroup / "cgroup.procs").split()
        run = _collect(proc, limits, start + limits.timeout_s)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_cgroup(cgroup)
    isolation = (("network", "pid") if prefix else ()) + (("processes",) if nproc or in_cgroup else ())
    return _result(run, limits, time.monotonic() - start, isolation)


@dataclass
class _Run:
    out: bytes
    err: bytes
    status: int | None
    cpu_s: float
    timed_out: bool
    overflow: bool


def _collect(proc: subprocess.Popen, limits: SandboxLimits, deadline: float) -> _Run:
    """Read both pipes up to the cap until they close or the deadline passes; then reap."""
    bufs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    timed_out = overflow = False
    with selectors.DefaultSelector() as sel:
        for f in bufs:
            sel.register(f, selectors.EVENT_READ)
        while sel.get_map() and not overflow:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(min(left, 0.25)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = bufs[key.fileobj]
                buf += chunk[: limits.output_bytes + 1 - len(buf)]
                overflow = overflow or len(buf) > limits.output_bytes
    status, cpu, late = _reap(proc, deadline, kill_now=timed_out or overflow)
    for f in bufs:
        f.close()
    out, err = (bytes(b[: limits.output_bytes]) for b in bufs.values())
    return _Run(out, err, status, cpu, timed_out or late, overflow)


def _reap(proc: subprocess.Popen, deadline: float, *, kill_now: bool) -> tuple[int | None, float, bool]:
    """Wait (until ``deadline``) for the program to exit, kill its group, reap it with rusage.

    Returns ``(status, cpu seconds, timed out while waiting)``. The group is killed while the
    leader is still unreaped (a zombie), so its id cannot have been reused.
    """
    late = False
    if not kill_now:
        while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            if time.monotonic() >= deadline:
                late = True
                break
            time.sleep(0.02)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    give_up = time.monotonic() + 10.0  # a SIGKILLed process is gone within this on any sane system
    while time.monotonic() < give_up:
        pid, raw, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = os.waitstatus_to_exitcode(raw)
            proc.returncode = status
            return status, usage.ru_utime + usage.ru_stime, late
        time.sleep(0.02)
    return None, 0.0, late


_TAIL = 2000
_UNSHARE_SIGKILL = "unshare: sigprocmask unblock failed: Invalid argument\n"


def _result(run: _Run, limits: SandboxLimits, duration: float, isolation: tuple[str, ...]) -> ProgramResult:
    out = run.out.decode("utf-8", "replace")
    err = run.err.decode("utf-8", "replace")
    status = run.status
    if status == 1 and err.endswith(_UNSHARE_SIGKILL):  # util-linux cannot re-raise SIGKILL
        status, err = -signal.SIGKILL, err[: -len(_UNSHARE_SIGKILL)]
    tail = err[-_TAIL:]
    sig = -status if status is not None and status < 0 else None
    reason: LimitReason | None = None
    if run.overflow:
        reason = "output"
    elif sig in (signal.SIGXCPU, signal.SIGKILL) and not run.timed_out and run.cpu_s >= limits.cpu_s:
        reason = "cpu"
    elif sig == signal.SIGXFSZ or "File too large" in tail:
        reason = "file_size"
    elif re.search(r"^MemoryError\b", tail, re.M):
        reason = "memory"
    elif re.search(r"BlockingIOError|Resource temporarily unavailable", tail) and "fork" in tail:
        reason = "processes"
    return ProgramResult(
        stdout=out, stderr=err, exit_status=status, timed_out=run.timed_out,
        killed_by_limit=reason, duration_s=duration, isolation=isolation,
    )
