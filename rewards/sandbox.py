"""Running untrusted model-written Python: isolated, bounded, and always cleaned up.

Each call runs `python -I -S main.py` (standard library only, no site import) under
bubblewrap, through a chain of small launchers that all exec into the next:
    sh (waits until it is in fresh cgroups) -> prlimit (rlimits) -> bwrap -> python
- namespaces: no network, its own PID namespace (when its init dies the kernel kills every
  process of the program, daemonised grandchildren included), user, IPC and UTS;
- privileges: uid/gid 65534 inside its user namespace, every capability dropped (bubblewrap
  keeps them for uid 0 unless told), no new privileges;
- filesystem: a new root holding only the system directories and the interpreter, read-only,
  plus a size-capped tmpfs /tmp as the working directory; home, /etc, the project, /sys are
  absent; its own /proc, read-only (/proc/sys included); a read-only /dev with only null, zero,
  full, random, urandom and a size-capped /dev/shm;
- a scrubbed environment; rlimits on CPU seconds, address space, file size and open files;
  memory and processes of the whole tree capped by cgroups (rewards/cgroups.py; RLIMIT_NPROC
  where none can be made, which root ignores);
- `private_input`, readable once on fd 3 and in no file the program can open;
- a wall-clock timeout that kills the process group and the cgroups;
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
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Literal

from rewards import cgroups

OUTPUT_CAP = 1 << 20
FILE_CAP_MB = 16
TMPFS_MB = 64
SHM_MB = 16
DEV_MB = 1
MAX_PROCESSES = 64
MAX_OPEN_FILES = 64
SANDBOX_ID = "65534"  # uid and gid inside the namespace: "nobody"
PRIVATE_FD = 3
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache")
DEVICES = ("null", "zero", "full", "random", "urandom")
# Namespaces and privileges (checked by the self-test too): an unprivileged uid in its own user
# namespace, with no capabilities (which bubblewrap keeps for uid 0 unless told).
_BWRAP_FLAGS = ("--unshare-all", "--unshare-user", "--die-with-parent", "--cap-drop", "ALL")
_BWRAP_FLAGS += ("--uid", SANDBOX_ID, "--gid", SANDBOX_ID)
# Its own /proc, read-only: run as root, the sandbox's uid is uid 0 outside, whom the owner bits
# let write /proc/sys, host-wide settings (kernel.core_pattern) included; bubblewrap's own cover
# skips /proc/sys (it tests the directory, which is never writable, not its files). The mount is
# locked: a user namespace made inside can neither remount it writable nor mount a writable /proc.
_PROC = ("--proc", "/proc", "--remount-ro", "/proc")
# sh: wait for a go line, then become the sandbox with the program's stdin ($1) as its stdin
# and its private input ($2) on PRIVATE_FD.
GATE = (
    f'read -r _ && stdin=$1 && private=$2 && shift 2 && exec "$@" <"$stdin" {PRIVATE_FD}<"$private"'
)

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
    private_input: str = ""


class Budget:
    """Wall-clock seconds shared by several jobs, counted from the first one's start: each runs
    with at most what is left, and none starts once it is spent."""

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise SandboxArgumentError(f"a time budget must be positive, got {seconds}")
        self.seconds = seconds
        self._end: float | None = None
        self._lock = threading.Lock()

    def left(self) -> float:
        with self._lock:
            if self._end is None:
                self._end = time.monotonic() + self.seconds
            return self._end - time.monotonic()


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
    private_input: str = "",
) -> ExecResult:
    """Run `code` as a Python program fed `stdin` (and `private_input` on fd 3); never raises
    for anything the code does."""
    if timeout_s <= 0:
        raise SandboxArgumentError(f"timeout_s must be positive, got {timeout_s}")
    if memory_mb < 64:
        raise SandboxArgumentError(f"memory_mb must be at least 64 (Python's own), got {memory_mb}")
    mode = isolation_mode(isolation)
    scratch = Path(tempfile.mkdtemp(prefix="r1kit-sandbox-"))
    # The tree's memory: the program's own plus what it may keep in its tmpfs mounts.
    tree_mb = memory_mb + TMPFS_MB + SHM_MB + DEV_MB
    groups = cgroups.make(tree_mb << 20, MAX_PROCESSES)
    try:
        for name, text in [("main.py", code), ("stdin", stdin), ("private", private_input)]:
            (scratch / name).write_text(text, "utf-8", "surrogateescape")
        (scratch / "work").mkdir()
        command = [*_rlimits(timeout_s, memory_mb), *_isolate(mode, scratch)]
        return _execute(command, scratch, timeout_s, groups)
    finally:
        if groups is not None:
            groups.remove()
        shutil.rmtree(scratch, ignore_errors=True)


class SandboxPool:
    """Runs many programs at once: `max_workers` threads, each driving one sandboxed process."""

    def __init__(self, max_workers: int = 4, isolation: Isolation | None = None) -> None:
        if max_workers < 1:
            raise SandboxArgumentError(f"max_workers must be at least 1, got {max_workers}")
        self.isolation = isolation_mode(isolation)
        self._threads = ThreadPoolExecutor(max_workers, thread_name_prefix="r1kit-sandbox")

    def submit(self, job: Job, budget: Budget | None = None) -> Future[ExecResult]:
        """Run `job` when a worker is free, within what is left of `budget` if given."""
        return self._threads.submit(self._run, job, budget)

    def map(self, jobs: Iterable[Job]) -> list[ExecResult]:
        """Results in the order of `jobs`."""
        return [future.result() for future in [self.submit(job) for job in jobs]]

    def close(self) -> None:
        self._threads.shutdown(cancel_futures=True)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, job: Job, budget: Budget | None) -> ExecResult:
        timeout = job.timeout_s if budget is None else min(job.timeout_s, budget.left())
        if timeout <= 0:
            return ExecResult("timeout", "", "the time budget was spent", None, 0.0)
        return run_python(
            job.code, job.stdin, timeout, job.memory_mb, self.isolation, job.private_input
        )


@functools.cache
def _bwrap_problem(bwrap: str | None) -> str | None:
    """Why bubblewrap cannot build our sandbox here (None when it can): a one-off self-test."""
    if bwrap is None:
        return "`bwrap` is not on PATH"
    probe = [bwrap, *_BWRAP_FLAGS, "--ro-bind", "/", "/", *_PROC]
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
    args = ["bwrap", *_BWRAP_FLAGS, "--new-session"]
    for path in [*SYSTEM_PATHS, sys.base_prefix]:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        else:
            args += ["--ro-bind-try", path, path]
    args += [*_PROC, *_devices()]
    args += ["--size", str(TMPFS_MB << 20), "--perms", "1777", "--tmpfs", "/tmp"]
    args += ["--ro-bind", str(scratch / "main.py"), "/tmp/main.py", "--chdir", "/tmp"]
    args += ["--remount-ro", "/"]  # the new root itself (where /root, /etc were made) too
    return [*args, python, "-I", "-S", "/tmp/main.py"]


def _devices() -> list[str]:
    """A read-only /dev with the nodes Python uses, the fd links and a size-capped /dev/shm
    (multiprocessing's semaphores); no ptys, no other devices."""
    args = ["--size", str(DEV_MB << 20), "--tmpfs", "/dev"]
    for name in DEVICES:
        args += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    args += ["--symlink", "/proc/self/fd", "/dev/fd"]
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        args += ["--symlink", f"/proc/self/fd/{fd}", f"/dev/{name}"]
    args += ["--size", str(SHM_MB << 20), "--perms", "1777", "--tmpfs", "/dev/shm"]
    return [*args, "--remount-ro", "/dev"]


def _execute(
    command: list[str], scratch: Path, timeout_s: float, groups: cgroups.RunCgroups | None
) -> ExecResult:
    start = time.monotonic()
    with open(scratch / "out", "w+b") as out, open(scratch / "err", "w+b") as err:
        proc = _start(command, scratch, out, err, groups)
        finished = _wait(proc, timeout_s)
        _kill_group(proc)
        exit_code = proc.wait()
        wall = time.monotonic() - start
        stdout, stderr = _read(out), _read(err)
    if not finished:
        return ExecResult("timeout", stdout, stderr, None, wall)
    if exit_code > 128:  # bwrap reports a signal as 128 + its number
        exit_code = 128 - exit_code
    out_of_memory = exit_code != 0 and groups is not None and groups.oom_kills() > 0
    status = "memory" if out_of_memory else _status(exit_code, stderr)
    return ExecResult(status, stdout, stderr, exit_code, wall)


def _start(command, scratch: Path, out, err, groups: cgroups.RunCgroups | None) -> subprocess.Popen:
    """Start `command` in a new session, only once it is inside the run's cgroups (so every
    process it forks is counted), through a shell that waits for a go line."""
    gate = [
        "/bin/sh",
        "-c",
        GATE,
        "r1kit-sandbox",
        str(scratch / "stdin"),
        str(scratch / "private"),
    ]
    proc = subprocess.Popen(
        [*gate, *command],
        stdin=PIPE,
        stdout=out,
        stderr=err,
        cwd=scratch / "work",
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        start_new_session=True,
    )
    try:
        if groups is not None:
            groups.add(proc.pid)
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


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _read(file) -> str:
    file.seek(0)
    return file.read(OUTPUT_CAP).decode("utf-8", errors="replace")
