"""Running untrusted model-written Python: isolated, bounded, and always cleaned up.

Each call runs `python -I -S main.py` in a fresh scratch directory under bubblewrap:
- namespaces: no network, its own PID namespace (when its init dies, every process of the
  program dies with it, daemonised grandchildren included), IPC and UTS;
- filesystem: all read-only except the scratch directory; /tmp, /home, /root and the
  project tree are empty tmpfs (the interpreter's own install is mapped back read-only);
- a scrubbed environment (nothing of the trainer's, no secrets);
- resource limits: CPU seconds, address space, file size, open files, and processes
  (a pids cgroup when this machine lets us create one, RLIMIT_NPROC otherwise);
- a wall-clock timeout that kills the whole process group and cgroup;
- stdout/stderr captured through files, capped at 1 MB each, decoded with replacement.
Without bubblewrap the sandbox refuses, unless the caller opts into rlimits-only isolation
(`isolation="rlimits"` or R1KIT_SANDBOX=rlimits), which contains runaway programs but not
malicious ones.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

OUTPUT_CAP = 1 << 20
MAX_PROCESSES = 64
PIDS_CGROUP = Path("/sys/fs/cgroup/pids")
Isolation = Literal["bwrap", "rlimits"]


class SandboxUnavailable(RuntimeError):
    """No isolation mechanism is available and the weaker mode was not asked for."""


@dataclass
class ExecResult:
    status: Literal["ok", "error", "timeout", "memory", "killed"]
    stdout: str
    stderr: str
    exit_code: int | None
    wall_s: float


def isolation_mode(requested: Isolation | None = None) -> Isolation:
    """The isolation a call will get; raises SandboxUnavailable rather than silently weakening."""
    requested = requested or os.environ.get("R1KIT_SANDBOX") or None
    if requested == "rlimits":
        return "rlimits"
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable(
            "the code sandbox needs bubblewrap (`apt-get install bubblewrap`); to run with "
            "resource limits only (no network or filesystem isolation) set R1KIT_SANDBOX=rlimits"
        )
    return "bwrap"


def run_python(
    code: str,
    stdin: str = "",
    timeout_s: float = 5.0,
    memory_mb: int = 512,
    isolation: Isolation | None = None,
) -> ExecResult:
    """Run `code` as a Python program with `stdin`; never raises for anything the code does."""
    mode = isolation_mode(isolation)
    scratch = Path(tempfile.mkdtemp(prefix="r1kit-sandbox-"))
    cgroup = _make_cgroup()
    try:
        (scratch / "main.py").write_text(code)
        (scratch / "stdin.txt").write_text(stdin)
        return _execute(scratch, mode, timeout_s, memory_mb, cgroup)
    finally:
        _kill_cgroup(cgroup)
        shutil.rmtree(scratch, ignore_errors=True)


def _execute(
    scratch: Path, mode: Isolation, timeout_s: float, memory_mb: int, cgroup: Path | None
) -> ExecResult:
    work = scratch / "work"
    work.mkdir()
    python = str(Path(sys.base_prefix) / "bin" / "python3")
    program = [python, "-I", "-S", str(scratch / "main.py")]
    if mode == "bwrap":
        program = [*_bwrap_args(scratch, work), python, "-I", "-S", "/tmp/main.py"]
    start = time.monotonic()
    with (
        open(scratch / "stdin.txt", "rb") as stdin,
        open(scratch / "out", "w+b") as out,
        open(scratch / "err", "w+b") as err,
    ):
        proc = subprocess.Popen(
            program,
            stdin=stdin,
            stdout=out,
            stderr=err,
            cwd=work,
            env=_clean_env(),
            start_new_session=True,
            preexec_fn=lambda: _limit(timeout_s, memory_mb, cgroup),
        )
        try:
            exit_code = proc.wait(timeout=timeout_s)
            status = _status(exit_code)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            exit_code, status = None, "timeout"
        wall = time.monotonic() - start
        stdout, stderr = _read(out), _read(err)
    if status == "error" and ("MemoryError" in stderr or "Cannot allocate memory" in stderr):
        status = "memory"
    return ExecResult(status, stdout, stderr, exit_code, wall)


def _bwrap_args(scratch: Path, work: Path) -> list[str]:
    base = sys.base_prefix
    masked = ["/tmp", "/home", "/root", "/work", "/run", "/var/tmp", str(Path.home())]
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/"]
    for path in dict.fromkeys(masked):
        if Path(path).is_dir():
            args += ["--tmpfs", path]
    return [
        *args,
        "--ro-bind",
        base,
        base,
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--ro-bind",
        str(scratch / "main.py"),
        "/tmp/main.py",
        "--bind",
        str(work),
        "/tmp/work",
        "--chdir",
        "/tmp/work",
    ]


def _limit(timeout_s: float, memory_mb: int, cgroup: Path | None) -> None:
    """In the child, before exec: join the pids cgroup and set resource limits."""
    if cgroup is not None:
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    cpu = int(timeout_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))  # not for root


def _make_cgroup() -> Path | None:
    """A pids cgroup capping the program's processes (RLIMIT_NPROC does not bind root)."""
    path = PIDS_CGROUP / f"r1kit-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(MAX_PROCESSES))
    except OSError:
        return None
    return path


def _kill_cgroup(cgroup: Path | None) -> None:
    if cgroup is None:
        return
    for _ in range(50):
        pids = [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    with contextlib.suppress(OSError):
        cgroup.rmdir()


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _status(exit_code: int) -> str:
    if exit_code == 0:
        return "ok"
    if exit_code < 0 or exit_code > 128:  # killed by a signal (directly, or inside bwrap)
        return "memory" if exit_code in (-signal.SIGSEGV, 128 + signal.SIGSEGV) else "killed"
    return "error"


def _clean_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp/work", "PYTHONHASHSEED": "0"}


def _read(file) -> str:
    file.seek(0)
    return file.read(OUTPUT_CAP).decode("utf-8", errors="replace")
