"""What an engine's processes leave behind when they are killed: child processes, /dev/shm files.

vLLM runs an engine-core and a worker process beside its owner and shares memory with them
through /dev/shm; a killed owner leaves both behind (hundreds of MB). The owner records them
while alive (`collect`); whoever restarts it removes what is left (`clean`).
"""

from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from rollout.weights import remove_stale


@dataclass(frozen=True)
class Leftovers:
    processes: list[tuple[int, float]] = field(default_factory=list)  # (pid, create time)
    shm_files: list[str] = field(default_factory=list)


def collect() -> Leftovers:
    """This process's descendants and the /dev/shm files they map. Not this process's own
    mappings: inside a Ray actor those include Ray's object store."""
    children = psutil.Process().children(recursive=True)
    files = {path for child in children for path in _shm_maps(child.pid)}
    return Leftovers([(p.pid, p.create_time()) for p in children], sorted(files))


def clean(leftovers: Leftovers) -> None:
    """Kill the recorded processes still running, remove the recorded and stale shm files."""
    for pid, created in leftovers.processes:
        if running(pid, created):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).send_signal(signal.SIGKILL)
    for path in leftovers.shm_files:
        Path(path).unlink(missing_ok=True)
    remove_stale()


def running(pid: int, created: float) -> bool:
    """Whether the process recorded as (pid, create time) still runs (a zombie does not; a new
    process that reuses the pid is another one)."""
    try:
        process = psutil.Process(pid)
        return process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _shm_maps(pid: int) -> set[str]:
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:  # gone already, or no /proc (not Linux)
        return set()
    paths = [f[5] for f in (line.split(None, 5) for line in maps.splitlines()) if len(f) == 6]
    # A "(deleted)" file is unlinked already: its name may belong to a new file by now.
    return {p for p in paths if p.startswith("/dev/shm/") and not p.endswith("(deleted)")}
