import os
import pickle
import threading
import time
from functools import partial

import pytest

from rewards.deadline import Worker

MARGIN_S = 15.0  # slack for a loaded 2-core machine: the deadlines tested are far below a hang
NOTHING = pickle.dumps(partial(int, "0"))  # a warm-up with nothing to load


@pytest.fixture
def worker():
    started = Worker(NOTHING)
    assert started.await_ready(60)
    yield started
    started.kill()


def test_a_call_returns_its_value_from_the_worker(worker):
    outcome = worker.call(pickle.dumps(os.getpid), 10)
    assert outcome.failure is None and outcome.value == worker.proc.pid != os.getpid()


def test_a_call_past_its_deadline_is_a_timeout_and_kills_the_worker(worker):
    start = time.monotonic()
    outcome = worker.call(pickle.dumps(partial(time.sleep, 3600)), 0.5)
    assert outcome.failure == "timeout" and time.monotonic() - start < 0.5 + MARGIN_S
    assert not worker.alive


def test_a_worker_that_dies_in_a_call_is_a_crash(worker):
    outcome = worker.call(pickle.dumps(partial(os._exit, 3)), 10)
    assert outcome.failure == "crash" and "exit code 3" in outcome.detail


def _start_ready(started: list[Worker]) -> None:
    worker = Worker(NOTHING, die_with_parent=False)
    started.append(worker)
    assert worker.await_ready(60)


def test_a_worker_not_tied_to_its_parent_outlives_the_thread_that_started_it():
    # The kernel's parent-death signal follows the starting *thread*, not the process.
    started: list[Worker] = []
    thread = threading.Thread(target=_start_ready, args=(started,))
    thread.start()
    thread.join()
    [worker] = started
    try:
        assert worker.call(pickle.dumps(partial(str, "here")), 10).value == "here"
    finally:
        worker.kill()
