"""Helpers for the tests of worker processes: which are alive, and which a process started."""

import os
from pathlib import Path

import pytest

from rewards.deadline import _WORKER_CODE

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def live_workers(parent: int | None = None) -> set[int]:
    """The live worker processes that `parent` (this process by default) started."""
    started_by = str(parent or os.getpid())
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                argv = (entry / "cmdline").read_text().split("\0")[:-1]
                if argv[1:3] == ["-c", _WORKER_CODE] and argv[-1] == started_by:
                    found.add(int(entry.name))
        except OSError:
            continue
    return {pid for pid in found if alive(pid)}
