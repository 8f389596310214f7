"""A process that holds a run directory's lock, as a live `r1kit train` would."""

import contextlib
import os
import signal
import subprocess
import sys

import pytest

# Holds RUN's lock, forks a child that outlives it (as a reward worker or a sandbox would),
# prints the child's pid and sleeps.
HOLDER = """
import os, time
from pathlib import Path
from r1kit.runlock import hold

with hold(Path(os.environ["RUN"])):
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    time.sleep(60)
"""


@pytest.fixture
def lock_holder():
    """Start processes holding the lock of a run directory: `start(path)` -> (the holder's
    Popen, its forked child's pid); all killed at the end."""
    started: list[tuple[subprocess.Popen, int]] = []

    def start(path) -> tuple[subprocess.Popen, int]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, "train", "recipe.yaml"],
            env={**os.environ, "RUN": str(path)},
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append((proc, int(proc.stdout.readline())))
        return started[-1]

    yield start
    for proc, child in started:
        proc.kill()
        proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
