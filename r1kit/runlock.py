"""One writer per run directory: a POSIX record lock on RUN/.lock, held while a command runs.

The lock is `fcntl.lockf` (F_SETLK), not `flock`: a record lock belongs to the process that
took it, so a child it forks (a reward worker, a sandbox, a Ray or vLLM process) never holds
it, and the OS drops it the instant its holder dies, SIGKILL included. An orphan child of a
killed run therefore never blocks that run's `--resume`. The file lives inside RUN, so every
path to the directory (relative, absolute, through a symlink) meets the same lock; it holds
the holder's pid, host, command and start time, for the message a second writer gets.

A record lock is dropped when its holder closes *any* descriptor of the file: nothing else
in a holding process may open RUN/.lock.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from r1kit import durable
from r1kit.errors import UserError

LOCK = ".lock"


class RunBusy(UserError):
    """Another live process writes this run directory."""


@contextlib.contextmanager
def hold(run: Path) -> Iterator[None]:
    """Hold the run's lock until the block ends (RunBusy at once if another process holds
    it). A directory it made that holds only the lock at the end is removed again, so a
    command that stops before writing anything leaves nothing behind."""
    made = not run.exists()
    fd = _acquire(run)
    try:
        yield
    finally:
        try:
            if made and [p.name for p in run.iterdir()] == [LOCK]:
                (run / LOCK).unlink()  # unlinked while held: see _acquire's inode check
                with contextlib.suppress(OSError):  # a new writer is making it again
                    run.rmdir()
        finally:
            os.close(fd)


def check_free(run: Path) -> None:
    """RunBusy naming the holder if another process holds the run's lock now; for a reader
    that would otherwise misjudge a run that is only starting (no config.yaml yet). Never
    call it while holding the lock: closing a descriptor of the file would drop that."""
    try:
        fd = os.open(run / LOCK, os.O_RDWR)
    except OSError:
        return  # no lock file (or none this user may open): no writer to name
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        raise _busy(run, fd) from None
    finally:
        os.close(fd)  # and with it the lock, if this process took it


def _acquire(run: Path) -> int:
    """An open descriptor of RUN/.lock, locked by this process, with this process's details."""
    path = run / LOCK
    while True:
        with durable.writing(path):  # a read-only or full disk: say so, before any work
            run.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: another process holds it
            busy = _busy(run, fd)
            os.close(fd)
            raise busy from None
        # The holder before us may have removed the file (an empty run it made) between our
        # open and our lock: then we hold a lock nobody else can see; take the new file's.
        if _same_file(fd, path):
            break
        os.close(fd)
    # Over the old details, then cut to length: a full disk (which `--resume` comes to free)
    # refuses new blocks, not these. Best effort: the lock, not its details, is what counts.
    details = json.dumps(_me()).encode()
    with contextlib.suppress(OSError):
        os.pwrite(fd, details, 0)
        os.ftruncate(fd, len(details))
    return fd


def _busy(run: Path, fd: int) -> RunBusy:
    return RunBusy(f"{run} is being written by {_holder(fd)}; wait for it to finish or stop it")


def _same_file(fd: int, path: Path) -> bool:
    try:
        there = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def _me() -> dict:
    """Who holds the lock: what a second writer is told."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": shlex.join(["r1kit", *sys.argv[1:]]),
        "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _holder(fd: int, wait_s: float = 1.0) -> str:
    """The holder's details from the lock file (written an instant after it took the lock)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            info = json.loads(os.pread(fd, 4096, 0))
            return f"pid {info['pid']} on {info['host']} ({info['command']}, since {info['since']})"
        except (ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                return "another process (its details are unreadable)"
            time.sleep(0.05)
