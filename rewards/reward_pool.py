"""Worker processes that run reward calls under a deadline, so a reward can never hang a run.

Each worker is a plain subprocess (no multiprocessing re-import of the caller's `__main__`, so
scripts need no `if __name__ == "__main__":` guard) in its own session: it ignores Ctrl-C (the
parent decides), dies with its parent (Linux), and a call that overruns its deadline is killed
with the worker's whole process group, which is then replaced. The parent waits in short polls,
so Ctrl-C and SIGTERM handlers run at once. Not thread-safe: use a pool from one thread.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pickle
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from typing import Any, Literal

from rewards.registry import RewardError

PoolFailure = Literal["error", "timeout", "crash"]
POLL_S = 0.2  # longest the parent blocks at once: bounds how late it notices a deadline
START_TIMEOUT_S = 120.0  # a worker importing the rewards for longer than this is stuck
_READY = "ready"
_WORKER_CODE = "from rewards.reward_pool import serve; serve()"


@dataclass(frozen=True)
class Call:
    """`fn()` run in a worker within `timeout_s`; `fn` must pickle (e.g. a functools.partial
    of a module-level function). `label` names it in errors."""

    fn: Callable[[], Any]
    timeout_s: float
    label: str


@dataclass(frozen=True)
class Outcome:
    """What a call returned, or why it did not: it raised, overran, or its worker died."""

    value: Any = None
    failure: PoolFailure | None = None
    detail: str = ""


@dataclass
class _Worker:
    proc: subprocess.Popen
    conn: Connection
    deadline: float  # start-up deadline until ready, then the running call's; inf when idle
    ready: bool = False
    call: int | None = None  # index of the running call


class RewardPool:
    """`workers` long-lived worker processes; with 0 the calls run in this process, where no
    deadline can be enforced. `warm` objects are unpickled in each worker at start (a loaded
    reward imports its module then), so the first step does not pay for imports."""

    def __init__(
        self, workers: int, warm: Sequence[object] = (), start_timeout_s: float = START_TIMEOUT_S
    ):
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.size = workers
        self.start_timeout_s = start_timeout_s
        self._warm = _dumps(list(warm), "a warm-up reward")
        self._workers: list[_Worker] = []
        self._closed = False
        self._fill()
        if workers:
            atexit.register(self.close)

    def run(self, calls: Sequence[Call]) -> list[Outcome]:
        """Run `calls`, at most `size` at a time, each within its own deadline."""
        if self._closed:
            raise RuntimeError("this RewardPool is closed")
        if self.size == 0:
            return [_run(call.fn) for call in calls]
        payloads = [_dumps(call.fn, call.label) for call in calls]
        outcomes: list[Outcome | None] = [None] * len(calls)
        pending = deque(range(len(calls)))
        try:
            while pending or any(w.call is not None for w in self._workers):
                self._fill()
                self._dispatch(pending, payloads, calls)
                self._wait(outcomes, calls)
        except BaseException:  # Ctrl-C included: calls still running would answer later
            for worker in [w for w in self._workers if w.call is not None]:
                self._retire(worker)
            raise
        self._fill()  # replacements warm up while the caller does other work
        return outcomes

    def pids(self) -> list[int]:
        """Process ids of the current workers."""
        return [worker.proc.pid for worker in self._workers]

    def close(self) -> None:
        """Kill every worker (and anything it started) and wait for it to exit."""
        self._closed = True
        for worker in list(self._workers):
            self._retire(worker)
        atexit.unregister(self.close)

    def __enter__(self) -> RewardPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fill(self) -> None:
        while len(self._workers) < self.size:
            self._workers.append(self._start())

    def _dispatch(self, pending: deque[int], payloads: list[bytes], calls: Sequence[Call]) -> None:
        """Hand the next pending calls to the idle workers."""
        for worker in [w for w in self._workers if w.ready and w.call is None]:
            if not pending:
                return
            try:
                worker.conn.send_bytes(payloads[pending[0]])
            except OSError:  # it died while idle: replaced on the next round
                self._retire(worker)
                continue
            worker.call = pending.popleft()
            worker.deadline = time.monotonic() + calls[worker.call].timeout_s

    def _start(self) -> _Worker:
        ours, theirs = Pipe()
        proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE, str(theirs.fileno()), str(os.getpid())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            start_new_session=True,
        )
        theirs.close()
        ours.send_bytes(self._warm)
        return _Worker(proc, ours, deadline=time.monotonic() + self.start_timeout_s)

    def _wait(self, outcomes: list[Outcome | None], calls: Sequence[Call]) -> None:
        """Block at most POLL_S for answers; record them, and the calls that overran."""
        soonest = min(worker.deadline for worker in self._workers) - time.monotonic()
        answered = wait([w.conn for w in self._workers], timeout=max(0.0, min(POLL_S, soonest)))
        for worker in list(self._workers):
            if worker.conn in answered:
                self._receive(worker, outcomes)
            elif time.monotonic() > worker.deadline:
                self._overran(worker, outcomes, calls)

    def _receive(self, worker: _Worker, outcomes: list[Outcome | None]) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):  # the worker died
            code = self._retire(worker)
            if not worker.ready:
                raise RewardError(
                    f"a reward worker process exited while starting (code {code}): "
                    "see its error above"
                ) from None
            if worker.call is not None:  # an idle one is just replaced
                outcomes[worker.call] = Outcome(
                    failure="crash", detail=f"its worker process died (exit code {code})"
                )
            return
        if not worker.ready:
            worker.ready = True
        else:
            outcomes[worker.call] = message
            worker.call = None
        worker.deadline = float("inf")

    def _overran(
        self, worker: _Worker, outcomes: list[Outcome | None], calls: Sequence[Call]
    ) -> None:
        self._retire(worker)
        if worker.call is None:
            raise RewardError(
                f"a reward worker did not start within {self.start_timeout_s:g} s "
                "(does importing a reward hang?)"
            )
        timeout_s = calls[worker.call].timeout_s
        outcomes[worker.call] = Outcome(
            failure="timeout", detail=f"no result within {timeout_s:g} s (worker killed)"
        )

    def _retire(self, worker: _Worker) -> int | None:
        """Kill the worker's process group, reap it, and drop it; returns its exit code."""
        # Not reaped yet, so its pid (= its process group's id) cannot have been reused.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.proc.pid, signal.SIGKILL)
        try:
            code = worker.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # stuck in the kernel; the kill still stands
            code = None
        worker.conn.close()
        self._workers.remove(worker)
        return code


def serve() -> None:
    """A worker's main loop: warm up, then answer each pickled call with an Outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, parent = int(sys.argv[1]), int(sys.argv[2])
    _die_with(parent)
    conn = Connection(fd)
    with contextlib.suppress(Exception):  # a reward that cannot load fails its calls, saying why
        pickle.loads(conn.recv_bytes())
    conn.send(_READY)
    while True:
        try:
            payload = conn.recv_bytes()
        except EOFError:
            return
        outcome = _run(partial(_call_pickled, payload))
        try:
            conn.send(outcome)
        except Exception as err:  # noqa: BLE001 - a value that does not pickle
            conn.send(Outcome(failure="error", detail=f"result cannot be sent back: {err}"))


def _call_pickled(payload: bytes) -> Any:
    return pickle.loads(payload)()


def _run(fn: Callable[[], Any]) -> Outcome:
    try:
        return Outcome(value=fn())
    except Exception as err:  # noqa: BLE001 - reported as the call's failure
        return Outcome(failure="error", detail=raised(err))


def raised(err: Exception) -> str:
    """A failure's detail for an exception: its type and (the start of) its message."""
    return f"raised {type(err).__name__}: {err}"[:300]


def _dumps(obj: object, label: str) -> bytes:
    try:
        return pickle.dumps(obj)
    except Exception as err:  # noqa: BLE001 - pickle raises several kinds
        raise RewardError(
            f"{label} cannot be sent to a worker process ({type(err).__name__}: {err}); "
            "load rewards with rewards.registry.load_reward or use module-level functions"
        ) from None


def _die_with(parent: int) -> None:
    """Linux: have the kernel kill this worker when its parent dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before that took effect
        os._exit(1)
