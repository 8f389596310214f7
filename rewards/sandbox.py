"""Running untrusted model-written Python: isolated, bounded, and always cleaned up.

Each call runs `python -I -S main.py` (standard library only, no site import) under
bubblewrap, through a chain of small launchers that all exec into the next:
    sh (waits until it is in a fresh pids cgroup) -> prlimit (rlimits) -> bwrap -> python
- namespaces: no network, its own PID namespace (when its init dies the kernel kills every
  process of the program, daemonised grandchildren included), user, IPC and UTS;
- filesystem: a new root holding only the system directories and the interpreter, read-only,
  plus a size-capped tmpfs /tmp as the working directory; home, /etc, the project are absent;
- a scrubbed environment; rlimits on CPU seconds, address space, file size and open files;
  processes capped by the cgroup (RLIMIT_NPROC when no cgroup can be made; root ignores it);
- a wall-clock timeout that kills the process group and the cgroup;
- stdout/stderr go to files, read back capped at 1 MB and decoded with replacement.
Without a working bubblewrap the sandbox refuses, unless the caller opts into rlimits only
(`isolation="rlimits"` or R1KIT_SANDBOX=rlimits): that stops runaway programs, not malicious ones.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Literal

OUTPUT_CAP = 1 << 20
FILE_CAP_MB = 16
TMPFS_MB = 64
MAX_PROCESSES = 64
MAX_OPEN_FILES = 64
PIDS_CGROUP = Path("/sys/fs/cgroup/pids")
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache")
# sh: wait for a go line, then become the sandbox with the program's stdin ($1) as its stdin.
GATE = 'read -r _ && stdin=$1 && shift && exec "$@" <"$stdin"'

Isolation = Literal["bwrap", "rlimits"]
Status = Literal["ok", "error", "timeout", "memory", "killed"]


class SandboxUnavailable(RuntimeError):
    """Bubblewrap is missing or broken here and the weaker mode was not asked for."""


class SandboxArgumentError(ValueError):
    """A sandbox option out of range."""


@dataclass(frozen=True)
class ExecResult:
    """What a program did. `exit_code` is negative for a signal (as in subprocess), None on
    timeout."""

    status: Status
    stdout: str
    stderr: str
    exit_code: int | None
    wall_s: float


@dataclass(frozen=True)
class Job:
    """One program to run, as the pool takes it."""

    code: str
    stdin: str = ""
    timeout_s: float = 5.0
    memory_mb: int = 512


def isolation_mode(requested: str | None = None) -> Isolation:
    """The isolation a call gets (argument, else R1KIT_SANDBOX, else bwrap); raises
    SandboxUnavailable rather than silently weakening."""
    mode = requested or os.environ.get("R1KIT_SANDBOX") or "bwrap"
    if mode not in ("bwrap", "rlimits"):
        raise SandboxArgumentError(f"sandbox isolation must be bwrap or rlimits, not {mode!r}")
    if mode == "bwrap":
        problem = _bwrap_problem(shutil.which("bwrap"))
        if problem:
            raise SandboxUnavailable(
                f"the code sandbox needs a working bubblewrap: {problem}. Install it "
                "(`apt-get install bubblewrap`) or, to run with resource limits only (no network "
                "or filesystem isolation), set R1KIT_SANDBOX=rlimits"
            )
    return mode


def run_python(
    code: str,
    stdin: str = "",
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    isolation: Isolation | None = None,
) -> ExecResult:
    """Run `code` as a Python program fed `stdin`; never raises for anything the code does."""
    if timeout_s <= 0:
        raise SandboxArgumentError(f"timeout_s must be positive, got {timeout_s}")
    if memory_mb < 64:
        raise SandboxArgumentError(f"memory_mb must be at least 64 (Python's own), got {memory_mb}")
    mode = isolation_mode(isolation)
    scratch = Path(tempfile.mkdtemp(prefix="r1kit-sandbox-"))
    cgroup = _make_cgroup()
    try:
        (scratch / "main.py").write_text(code, "utf-8", "surrogateescape")
        (scratch / "stdin").write_text(stdin, "utf-8", "surrogateescape")
        (scratch / "work").mkdir()
        command = [*_rlimits(timeout_s, memory_mb), *_isolate(mode, scratch)]
        return _execute(command, scratch, timeout_s, cgroup)
    finally:
        _kill_cgroup(cgroup)
        shutil.rmtree(scratch, ignore_errors=True)


class SandboxPool:
    """Runs many programs at once: `max_workers` threads, each driving one sandboxed process."""

    def __init__(self, max_workers: int = 4, isolation: Isolation | None = None) -> None:
        if max_workers < 1:
            raise SandboxArgumentError(f"max_workers must be at least 1, got {max_workers}")
        self.isolation = isolation_mode(isolation)
        self._threads = ThreadPoolExecutor(max_workers, thread_name_prefix="r1kit-sandbox")

    def submit(self, job: Job) -> Future[ExecResult]:
        return self._threads.submit(
            run_python, job.code, job.stdin, job.timeout_s, job.memory_mb, self.isolation
        )

    def map(self, jobs: Iterable[Job]) -> list[ExecResult]:
        """Results in the order of `jobs`."""
        return [future.result() for future in [self.submit(job) for job in jobs]]

    def close(self) -> None:
        self._threads.shutdown(cancel_futures=True)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def _bwrap_problem(bwrap: str | None) -> str | None:
    """Why bubblewrap cannot build our sandbox here (None when it can): a one-off self-test."""
    if bwrap is None:
        return "`bwrap` is not on PATH"
    probe = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc"]
    try:
        done = subprocess.run([*probe, "true"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"its self-test failed ({err})"
    return f"its self-test failed ({done.stderr.strip()})" if done.returncode else None


def _rlimits(timeout_s: float, memory_mb: int) -> list[str]:
    cpu = int(timeout_s) + 1
    return [
        "prlimit",
        f"--cpu={cpu}:{cpu}",
        f"--as={memory_mb << 20}:{memory_mb << 20}",
        f"--fsize={FILE_CAP_MB << 20}:{FILE_CAP_MB << 20}",
        f"--nofile={MAX_OPEN_FILES}:{MAX_OPEN_FILES}",
        f"--nproc={MAX_PROCESSES}:{MAX_PROCESSES}",
        "--",
    ]


def _isolate(mode: Isolation, scratch: Path) -> list[str]:
    """The command that runs scratch/main.py; under bwrap it sees only what it needs."""
    python = str(Path(sys.base_prefix) / "bin" / "python3")
    if mode == "rlimits":
        return [python, "-I", "-S", str(scratch / "main.py")]
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
    for path in [*SYSTEM_PATHS, sys.base_prefix]:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        else:
            args += ["--ro-bind-try", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(TMPFS_MB << 20), "--tmpfs", "/tmp"]
    args += ["--ro-bind", str(scratch / "main.py"), "/tmp/main.py", "--chdir", "/tmp"]
    args += ["--remount-ro", "/"]  # the new root itself (where /root, /etc were made) too
    return [*args, python, "-I", "-S", "/tmp/main.py"]


def _execute(
    command: list[str], scratch: Path, timeout_s: float, cgroup: Path | None
) -> ExecResult:
    start = time.monotonic()
    with open(scratch / "out", "w+b") as out, open(scratch / "err", "w+b") as err:
        proc = _start(command, scratch / "stdin", out, err, scratch / "work", cgroup)
        finished = _wait(proc, timeout_s)
        _kill_group(proc)
        exit_code = proc.wait()
        wall = time.monotonic() - start
        stdout, stderr = _read(out), _read(err)
    if not finished:
        return ExecResult("timeout", stdout, stderr, None, wall)
    if exit_code > 128:  # bwrap reports a signal as 128 + its number
        exit_code = 128 - exit_code
    return ExecResult(_status(exit_code, stderr), stdout, stderr, exit_code, wall)


def _start(command, stdin: Path, out, err, cwd: Path, cgroup: Path | None) -> subprocess.Popen:
    """Start `command` in a new session; with a cgroup, only once it is inside it (so every
    process it forks is counted), through a shell that waits for a go line."""
    popen = functools.partial(
        subprocess.Popen,
        stdout=out,
        stderr=err,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        start_new_session=True,
    )
    if cgroup is None:
        with open(stdin, "rb") as file:
            return popen(command, stdin=file)
    proc = popen(["/bin/sh", "-c", GATE, "r1kit-sandbox", str(stdin), *command], stdin=PIPE)
    try:
        (cgroup / "cgroup.procs").write_text(str(proc.pid))
        proc.stdin.write(b"go\n")
    finally:
        proc.stdin.close()  # without the go line the shell exits at end of file
    return proc


def _wait(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Whether the process exits within the timeout (a pidfd: no polling)."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        return bool(select.select([pidfd], [], [], timeout_s)[0])
    finally:
        os.close(pidfd)


def _status(exit_code: int, stderr: str) -> Status:
    if exit_code == 0:
        return "ok"
    if exit_code == -signal.SIGXCPU:
        return "timeout"
    # A stack that cannot grow within the address-space limit arrives as SIGSEGV.
    if exit_code == -signal.SIGSEGV or stderr.rstrip().rpartition("\n")[2].startswith(
        "MemoryError"
    ):
        return "memory"
    return "killed" if exit_code < 0 else "error"


def _make_cgroup() -> Path | None:
    """A pids cgroup capping the program's processes, where this machine lets us make one."""
    path = PIDS_CGROUP / f"r1kit-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(MAX_PROCESSES))
    except OSError:
        with contextlib.suppress(OSError):
            path.rmdir()
        return None
    return path


def _kill_cgroup(cgroup: Path | None) -> None:
    """Kill whatever is left in the cgroup (rlimits mode has no PID namespace), then remove it."""
    if cgroup is None:
        return
    for _ in range(100):
        pids = (cgroup / "cgroup.procs").read_text().split()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.01)
    with contextlib.suppress(OSError):
        cgroup.rmdir()


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _read(file) -> str:
    file.seek(0)
    return file.read(OUTPUT_CAP).decode("utf-8", errors="replace")
