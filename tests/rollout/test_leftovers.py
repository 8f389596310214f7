"""A killed engine's processes and /dev/shm files are found while alive and removed after."""

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rollout import leftovers
from rollout.weights import shm_root

# A child that maps a shared-memory file (as vLLM's engine processes do), then waits.
CHILD = """
import mmap, os, sys, time
path = sys.argv[1]
with open(path, "wb") as f:
    f.write(b"x" * 4096)
with open(path, "r+b") as f:
    m = mmap.mmap(f.fileno(), 4096)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_collect_then_clean_kills_children_and_removes_their_shm_files():
    path = shm_root() / f"r1kit-test-leftover-{time.monotonic_ns()}"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"ready"
        found = leftovers.collect()
        assert child.pid in [pid for pid, _ in found.processes]
        assert str(path) in found.shm_files
        # Clean only what this test made: pytest's other children are not ours to kill.
        leftovers.clean(
            leftovers.Leftovers([(child.pid, dict(found.processes)[child.pid])], [str(path)])
        )
        assert child.wait(timeout=10) != 0  # killed
        assert not path.exists()
    finally:
        child.kill()
        path.unlink(missing_ok=True)


def test_clean_spares_a_new_process_that_reuses_a_recorded_pid():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        leftovers.clean(leftovers.Leftovers(processes=[(child.pid, 0.0)]))  # other start time
        assert child.poll() is None
    finally:
        child.kill()


def test_an_ended_child_not_yet_reaped_is_not_running():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    created = psutil.Process(child.pid).create_time()
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:  # until waited for
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        assert not leftovers.running(child.pid, created)
    finally:
        child.wait()


def test_a_live_process_is_running():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert leftovers.running(child.pid, psutil.Process(child.pid).create_time())
    finally:
        child.kill()


def test_collect_finds_this_process_multiprocessing_semaphores_only():
    import multiprocessing

    lock = multiprocessing.get_context("spawn").Lock()  # a named semaphore in /dev/shm
    found = leftovers.collect().shm_files
    mine = [f for f in found if Path(f).name.startswith("sem.mp-")]
    assert mine and all(Path(f).exists() for f in mine)
    assert all(Path(f).name.startswith(leftovers.MULTIPROCESSING_SHM) for f in found)
    del lock
