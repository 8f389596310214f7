"""Stop signals as a scheduler and a user expect them.

The first SIGINT or SIGTERM stops the run at the next safe point: at once while it generates,
scores or evaluates (nothing of the step is kept; the checkpoint is the state before it), else
after the current learner update. The trainer then checkpoints and the command exits 130
(SIGINT) or 143 (SIGTERM). A second signal stops at once, without saving: every checkpoint is
written atomically, so the last one stays valid. Both stop exceptions are BaseExceptions, as
KeyboardInterrupt is: code that turns any Exception into a failure (a reward called in this
process) must not swallow a stop.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class StopRequested(BaseException):  # noqa: N818 - a request, not an error
    """The first stop signal arrived inside an interruptible phase."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopNow(BaseException):  # noqa: N818
    """A second stop signal: leave at once."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Stopper:
    """Catches SIGINT/SIGTERM; `interruptible()` marks the phases a first signal may cut."""

    def __init__(self):
        self.signum: int | None = None
        self._interruptible = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Stopper:
        """Catch SIGINT and SIGTERM until the block ends, then restore the previous handlers."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Within this block the first signal raises StopRequested at once."""
        if self.signum is not None:
            raise StopRequested(self.signum)
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False

    def _handle(self, signum: int, _frame) -> None:
        if self.signum is not None:
            raise StopNow(signum)
        self.signum = signum
        if self._interruptible:
            self._interruptible = False  # raise once; cleanup code below must not be cut
            raise StopRequested(signum)


def exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum
