import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from functools import partial
from pathlib import Path

import pytest

from rewards.registry import RewardError
from rewards.reward_pool import Call, RewardPool
from tests.rewards.conftest import alive, linux_only, live_workers

ROOT = Path(__file__).resolve().parents[2]
MARGIN_S = 15.0  # slack for a loaded 2-core machine: the deadlines tested are far below a hang


def _gone(pids: list[int], within_s: float = MARGIN_S) -> bool:
    deadline = time.monotonic() + within_s
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _pids_running(command: list[str]) -> list[int]:
    wanted = "\0".join(command) + "\0"
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_text() == wanted:
                found.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in found if alive(pid)]


@pytest.fixture(scope="module")
def pool():
    with RewardPool(2) as shared:
        yield shared


@linux_only
def test_calls_run_in_workers_that_are_reused(pool):
    first = [o.value for o in pool.run([Call(os.getpid, 10, "pid")] * 4)]
    second = [o.value for o in pool.run([Call(os.getpid, 10, "pid")] * 4)]
    assert set(first) <= live_workers() and set(second) <= live_workers()
    assert os.getpid() not in first


def test_results_come_back_in_call_order(pool):
    calls = [Call(partial(str, i), 10, f"call {i}") for i in range(7)]
    assert [o.value for o in pool.run(calls)] == [str(i) for i in range(7)]


def test_a_call_that_raises_is_an_error_outcome(pool):
    [outcome] = pool.run([Call(partial(int, "seven"), 10, "bad int")])
    assert outcome.failure == "error" and "ValueError" in outcome.detail


@linux_only
def test_a_call_past_its_deadline_is_killed_and_its_worker_replaced():
    with RewardPool(1) as pool:
        [warm] = pool.run([Call(os.getpid, 10, "warm")])
        hung_worker = warm.value
        start = time.monotonic()
        [outcome] = pool.run([Call(partial(time.sleep, 3600), 0.5, "hang")])
        assert time.monotonic() - start < 0.5 + MARGIN_S
        assert outcome.failure == "timeout"
        assert _gone([hung_worker])
        [after] = pool.run([Call(os.getpid, 10, "pid")])
        assert after.value != hung_worker


def test_a_timeout_costs_only_its_own_call():
    with RewardPool(2) as pool:
        slow, quick = pool.run(
            [Call(partial(time.sleep, 3600), 0.5, "hang"), Call(partial(str, "ok"), 10, "ok")]
        )
    assert slow.failure == "timeout" and quick.value == "ok"


@linux_only
def test_what_a_hung_call_started_is_killed_with_it():
    command = ["sleep", "987.654"]  # a unique command line to find it by
    with RewardPool(1) as pool:
        [outcome] = pool.run([Call(partial(subprocess.run, command), 1.0, "spawns")])
    assert outcome.failure == "timeout"
    assert _gone(_pids_running(command))


@pytest.mark.parametrize(
    "die",
    [partial(os._exit, 3), partial(signal.raise_signal, signal.SIGKILL)],
    ids=["exit", "killed"],
)
def test_a_worker_that_dies_is_a_crash_and_the_pool_carries_on(die):
    with RewardPool(1) as pool:
        [outcome] = pool.run([Call(die, 10, "dies")])
        [after] = pool.run([Call(partial(str, "still here"), 10, "after")])
    assert outcome.failure == "crash" and "exit code" in outcome.detail
    assert after.value == "still here"


@linux_only
def test_workers_ignore_ctrl_c_sent_to_them(pool):
    pool.run([Call(os.getpid, 10, "warm")])
    signalled = live_workers()
    for pid in signalled:
        os.kill(pid, signal.SIGINT)
    outcomes = pool.run([Call(os.getpid, 10, "pid")] * 2)
    assert {o.value for o in outcomes} <= signalled


@linux_only
def test_close_leaves_no_worker_behind():
    before = live_workers()
    pool = RewardPool(2)
    pool.run([Call(os.getpid, 10, "warm")] * 2)
    pids = live_workers() - before
    pool.close()
    assert len(pids) == 2 and _gone(list(pids))


def test_a_closed_pool_refuses_calls():
    pool = RewardPool(1)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.run([Call(os.getpid, 10, "pid")])


def test_no_workers_runs_calls_in_this_process():
    [outcome] = RewardPool(0).run([Call(os.getpid, 0.001, "pid")])
    assert outcome.value == os.getpid()


def test_a_call_that_does_not_pickle_is_named(pool):
    with pytest.raises(RewardError, match="reward 'inline' cannot be sent to a worker process"):
        pool.run([Call(lambda: 1, 10, "reward 'inline'")])


def test_a_worker_that_cannot_start_is_reported(monkeypatch):
    monkeypatch.setattr("rewards.deadline._WORKER_CODE", "raise SystemExit(7)")
    with RewardPool(1) as pool, pytest.raises(RewardError, match=r"exited while starting \(code 7"):
        pool.run([Call(os.getpid, 10, "pid")])


class _HangsWhenLoaded:
    def __reduce__(self):
        return time.sleep, (3600,)


def test_a_worker_stuck_loading_its_rewards_is_reported():
    with (
        RewardPool(1, warm=[_HangsWhenLoaded()], start_timeout_s=0.5) as pool,
        pytest.raises(RewardError, match=r"did not start within 0.5 s"),
    ):
        pool.run([Call(os.getpid, 10, "pid")])


HANGING_PARENT = textwrap.dedent(
    """
    import signal
    import time
    from functools import partial
    from rewards.reward_pool import Call, RewardPool

    # Ctrl-C as a terminal gives it, even if the test runner started us with SIGINT ignored
    # (a child inherits an ignored signal, and Python then installs no KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    pool = RewardPool(2)
    pool.run([Call(time.time, 60, "warm")] * 2)
    print("started", flush=True)
    pool.run([Call(partial(time.sleep, 3600), 3600, "hang")] * 2)
    """
)


@linux_only
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_parent_while_a_call_hangs_and_no_worker_outlives_it(sig):
    parent = subprocess.Popen(
        [sys.executable, "-c", HANGING_PARENT],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert select.select([parent.stdout], [], [], 60)[0], "the parent never started its pool"
        parent.stdout.readline()
        workers = list(live_workers(parent.pid))
        time.sleep(0.5)  # into the hanging call
        parent.send_signal(sig)
        assert parent.wait(timeout=MARGIN_S) == -sig
    finally:
        parent.kill()
        parent.wait()
    assert len(workers) == 2 and _gone(workers)
