"""What an engine's processes leave behind when they are killed: child processes, /dev/shm files.

vLLM runs an engine-core and a worker process beside its owner and shares memory with them
through /dev/shm; a killed owner leaves both behind (hundreds of MB). The owner records them
while alive (`collect`); whoever restarts it removes what is left (`clean`).
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from rollout.weights import remove_stale

SHM = Path("/dev/shm")
MULTIPROCESSING_SHM = ("psm_", "sem.mp-")  # shared_memory blocks, named semaphores


@dataclass(frozen=True)
class Leftovers:
    processes: list[tuple[int, float]] = field(default_factory=list)  # (pid, create time)
    shm_files: list[str] = field(default_factory=list)


def collect() -> Leftovers:
    """This process's descendants, the /dev/shm files they map, and the ones this process maps
    that Python's multiprocessing made for them (other mappings of a Ray actor include Ray's)."""
    children = psutil.Process().children(recursive=True)
    theirs = {inode for child in children for inode in _shm_inodes(child.pid)}
    ours = _shm_inodes(os.getpid())
    files = []
    for path in SHM.iterdir() if SHM.is_dir() else []:
        with contextlib.suppress(OSError):  # removed meanwhile
            inode = path.stat().st_ino
            if inode in theirs or (inode in ours and path.name.startswith(MULTIPROCESSING_SHM)):
                files.append(str(path))
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


def _shm_inodes(pid: int) -> set[int]:
    """Inodes of the /dev/shm files process `pid` maps. By inode, not name: a named semaphore
    is mapped under the temporary name it was created with ("(deleted)")."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:  # gone already, or no /proc (not Linux)
        return set()
    fields = (line.split(None, 5) for line in maps.splitlines())
    return {int(f[4]) for f in fields if len(f) == 6 and f[5].startswith(f"{SHM}/")}
