"""A pool of deadline workers that runs a batch's reward calls, so a reward can never hang a run.

Each worker is a `rewards.deadline.Worker`: a call that overruns its deadline is killed with the
worker's whole process group, and the worker replaced. The pool waits on all its workers at once
in short polls, so Ctrl-C and SIGTERM handlers run at once. Not thread-safe: use a pool from one
thread.
"""

from __future__ import annotations

import atexit
import pickle
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import wait
from typing import Any

from rewards.deadline import POLL_S, Died, Outcome, Worker, crashed, run, timed_out
from rewards.registry import RewardError

START_TIMEOUT_S = 120.0  # a worker importing the rewards for longer than this is stuck


@dataclass(frozen=True)
class Call:
    """`fn()` run in a worker within `timeout_s`; `fn` must pickle (e.g. a functools.partial
    of a module-level function). `label` names it in errors."""

    fn: Callable[[], Any]
    timeout_s: float
    label: str


@dataclass
class _Slot:
    worker: Worker
    deadline: float  # start-up deadline until ready, then the running call's; inf when idle
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
        self._warm_up = _dumps(partial(_loaded, *warm), "a warm-up reward")
        self._slots: list[_Slot] = []
        self._closed = False
        self._fill()
        if workers:
            atexit.register(self.close)

    def run(self, calls: Sequence[Call]) -> list[Outcome]:
        """Run `calls`, at most `size` at a time, each within its own deadline."""
        if self._closed:
            raise RuntimeError("this RewardPool is closed")
        if self.size == 0:
            return [run(call.fn) for call in calls]
        payloads = [_dumps(call.fn, call.label) for call in calls]
        outcomes: list[Outcome | None] = [None] * len(calls)
        pending = deque(range(len(calls)))
        try:
            while pending or any(slot.call is not None for slot in self._slots):
                self._fill()
                self._dispatch(pending, payloads, calls)
                self._wait(outcomes, calls)
        except BaseException:  # Ctrl-C included: calls still running would answer later
            for slot in [s for s in self._slots if s.call is not None]:
                self._retire(slot)
            raise
        self._fill()  # replacements warm up while the caller does other work
        return outcomes

    def close(self) -> None:
        """Kill every worker (and anything it started) and wait for it to exit."""
        self._closed = True
        for slot in list(self._slots):
            self._retire(slot)
        atexit.unregister(self.close)

    def __enter__(self) -> RewardPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fill(self) -> None:
        while len(self._slots) < self.size:
            deadline = time.monotonic() + self.start_timeout_s
            self._slots.append(_Slot(Worker(self._warm_up), deadline))

    def _dispatch(self, pending: deque[int], payloads: list[bytes], calls: Sequence[Call]) -> None:
        """Hand the next pending calls to the idle workers."""
        for slot in [s for s in self._slots if s.worker.ready and s.call is None]:
            if not pending:
                return
            try:
                slot.worker.send(payloads[pending[0]])
            except Died:  # it died while idle: replaced on the next round
                self._slots.remove(slot)
                continue
            slot.call = pending.popleft()
            slot.deadline = time.monotonic() + calls[slot.call].timeout_s

    def _wait(self, outcomes: list[Outcome | None], calls: Sequence[Call]) -> None:
        """Block at most POLL_S for answers; record them, and the calls that overran."""
        soonest = min(slot.deadline for slot in self._slots) - time.monotonic()
        conns = [slot.worker.conn for slot in self._slots]
        answered = wait(conns, timeout=max(0.0, min(POLL_S, soonest)))
        for slot in list(self._slots):
            if slot.worker.conn in answered:
                self._receive(slot, outcomes)
            elif time.monotonic() > slot.deadline:
                self._overran(slot, outcomes, calls)

    def _receive(self, slot: _Slot, outcomes: list[Outcome | None]) -> None:
        starting = not slot.worker.ready
        try:
            outcome = slot.worker.receive()
        except Died as died:
            self._slots.remove(slot)
            if starting:
                raise RewardError(
                    f"a reward worker process exited while starting (code {died.code}): "
                    "see its error above"
                ) from None
            if slot.call is not None:  # an idle one is just replaced
                outcomes[slot.call] = crashed(died)
            return
        if outcome is not None:
            outcomes[slot.call] = outcome
            slot.call = None
        slot.deadline = float("inf")

    def _overran(self, slot: _Slot, outcomes: list[Outcome | None], calls: Sequence[Call]) -> None:
        self._retire(slot)
        if slot.call is None:
            raise RewardError(
                f"a reward worker did not start within {self.start_timeout_s:g} s "
                "(does importing a reward hang?)"
            )
        outcomes[slot.call] = timed_out(calls[slot.call].timeout_s)

    def _retire(self, slot: _Slot) -> None:
        """Kill the slot's worker (and its process group) and drop it."""
        slot.worker.kill()
        self._slots.remove(slot)


def _loaded(*objects: object) -> None:
    """A worker's warm-up: unpickling `objects` (loaded rewards) imported their modules."""


def _dumps(obj: object, label: str) -> bytes:
    try:
        return pickle.dumps(obj)
    except Exception as err:  # noqa: BLE001 - pickle raises several kinds
        raise RewardError(
            f"{label} cannot be sent to a worker process ({type(err).__name__}: {err}); "
            "load rewards with rewards.registry.load_reward or use module-level functions"
        ) from None
