"""A worker process that runs pickled calls under a deadline and is killed when one overruns.

Both the reward pool and the sympy checker stand on it. Each worker is a plain subprocess (no
multiprocessing re-import of the caller's `__main__`, so scripts need no
`if __name__ == "__main__":` guard) in its own session: it ignores Ctrl-C (the parent decides),
can die with its parent (Linux), and `kill` takes its whole process group, so nothing a call
started outlives it. It runs a warm-up before it says it is ready, so the first call does not
pay for imports. The parent waits in short polls, so Ctrl-C and SIGTERM handlers run at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from typing import Any, Literal

CallFailure = Literal["error", "timeout", "crash"]
POLL_S = 0.2  # longest the parent blocks at once: bounds how late it notices a deadline
_READY = "ready"
_WORKER_CODE = "from rewards.deadline import serve; serve()"


@dataclass(frozen=True)
class Outcome:
    """What a call returned, or why it did not: it raised, overran, or its worker died."""

    value: Any = None
    failure: CallFailure | None = None
    detail: str = ""


class Died(Exception):
    """The worker process exited; `code` is its exit status (None if it could not be reaped)."""

    def __init__(self, code: int | None):
        super().__init__(f"exit code {code}")
        self.code = code


class Worker:
    """One worker process. `warm_up` is a pickled callable it runs (its errors ignored: the
    calls that need what failed to load fail, saying why) before it says it is ready.

    With `die_with_parent` the kernel kills it when its parent dies, even by SIGKILL. Linux
    means the parent *thread*: only for workers started from a thread that outlives them (a
    worker started from a short-lived thread would be killed when that thread ends). Without
    it, an idle worker exits when the parent's end of its pipe closes."""

    def __init__(self, warm_up: bytes, die_with_parent: bool = True):
        ours, theirs = Pipe()
        parent = str(os.getpid()) if die_with_parent else "0"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE, str(theirs.fileno()), parent],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            start_new_session=True,
        )
        theirs.close()
        self.conn = ours
        self.ready = False  # it said "ready": its warm-up is done
        ours.send_bytes(warm_up)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, payload: bytes) -> None:
        """Start a call (a pickled callable); Died when the worker is gone."""
        try:
            self.conn.send_bytes(payload)
        except OSError:
            raise Died(self.kill()) from None

    def receive(self) -> Outcome | None:
        """The message waiting on `conn`: None for "ready", else the running call's Outcome.
        Died (the worker killed and reaped) when the worker exited instead."""
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            raise Died(self.kill()) from None
        if not self.ready:
            self.ready = True
            return None
        return message

    def await_ready(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the warm-up to finish; Died when the worker exited."""
        deadline = time.monotonic() + timeout_s
        while not self.ready:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if wait([self.conn], timeout=min(POLL_S, left)):
                self.receive()
        return True

    def call(self, payload: bytes, timeout_s: float) -> Outcome:
        """Run one call on this ready worker within `timeout_s`, waiting for nothing else. On
        a timeout, a crash or an interrupt the worker is killed; the caller replaces it."""
        deadline = time.monotonic() + timeout_s
        try:
            self.send(payload)
            while (left := deadline - time.monotonic()) > 0:
                if wait([self.conn], timeout=min(POLL_S, left)):
                    return self.receive()
        except Died as died:
            return crashed(died)
        except BaseException:  # Ctrl-C included: the call would answer later
            self.kill()
            raise
        self.kill()
        return timed_out(timeout_s)

    def kill(self) -> int | None:
        """Kill the worker's process group and reap it; returns its exit code."""
        if self.proc.returncode is None:  # not reaped, so its pid (its group's id) is still its
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # stuck in the kernel; the kill still stands
            code = None
        self.conn.close()
        return code


def timed_out(timeout_s: float) -> Outcome:
    return Outcome(failure="timeout", detail=f"no result within {timeout_s:g} s (worker killed)")


def crashed(died: Died) -> Outcome:
    return Outcome(failure="crash", detail=f"its worker process died (exit code {died.code})")


def run(fn: Callable[[], Any]) -> Outcome:
    """`fn()`'s value, or its exception as an error Outcome."""
    try:
        return Outcome(value=fn())
    except Exception as err:  # noqa: BLE001 - reported as the call's failure
        return Outcome(failure="error", detail=raised(err))


def raised(err: Exception) -> str:
    """A failure's detail for an exception: its type and (the start of) its message."""
    return f"raised {type(err).__name__}: {err}"[:300]


def serve() -> None:
    """A worker's main loop: warm up, then answer each pickled call with an Outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, parent = int(sys.argv[1]), int(sys.argv[2])
    if parent:
        _die_with(parent)
    conn = Connection(fd)
    with contextlib.suppress(Exception):  # what cannot load fails the calls that need it
        pickle.loads(conn.recv_bytes())()
    conn.send(_READY)
    while True:
        try:
            payload = conn.recv_bytes()
        except EOFError:
            return
        outcome = run(partial(_call_pickled, payload))
        try:
            conn.send(outcome)
        except Exception as err:  # noqa: BLE001 - a value that does not pickle
            conn.send(Outcome(failure="error", detail=f"result cannot be sent back: {err}"))


def _call_pickled(payload: bytes) -> Any:
    return pickle.loads(payload)()


def _die_with(parent: int) -> None:
    """Linux: have the kernel kill this worker when its parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before that took effect
        os._exit(1)
