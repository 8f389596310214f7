"""Symbolic equivalence in a helper process with a hard deadline.

sympy can run for minutes (or forever) on inputs such as 10^{10^{10}} or huge factorials, and
`signal.alarm` only works in a process's main thread. So the comparison runs in a long-lived
child process; when it misses the deadline the child is killed and a new one started, and the
answer is None ("not decided"). Each concurrent caller (thread) gets a child of its own from a
pool, so no call waits behind another's deadline.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

COLD_START_S = 30.0  # a new process imports sympy (about 0.5 s idle, more on a busy machine)
MAX_EXPONENT_DIGITS = 4  # 10^{12345} is refused before it reaches sympy


def sympy_equal(gold: str, pred: str, deadline_s: float, rounded: int | None = None) -> bool | None:
    """Whether two LaTeX/plain expressions are equal as sympy sees them, exactly (decimals
    are read as the exact fractions they write); None when the deadline passed first.
    With `rounded` = d, a constant `pred` also equals a gold that rounds to it at d decimals."""
    pool = _pool()
    worker = pool.take()
    try:
        return worker.ask(gold, pred, deadline_s, rounded)
    finally:
        pool.give_back(worker)


class _Worker:
    """A `python -m rewards.sympy_worker` child speaking JSON lines over its stdin/stdout
    (a plain subprocess: no multiprocessing re-import of the caller's __main__)."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.ready = False  # the child said "ready": its imports are done

    def ask(self, gold: str, pred: str, deadline_s: float, rounded: int | None) -> bool | None:
        if self.process is None or self.process.poll() is not None:
            self._start()
            self.ready = self._read_line(COLD_START_S) == "ready"  # a cold start waits, once
        deadline = time.monotonic() + deadline_s
        if not self.ready:  # a replacement still importing: that counts against this call
            self.ready = self._read_line(deadline_s) == "ready"
            if not self.ready:
                return None
        self.process.stdin.write(json.dumps([gold, pred, rounded]) + "\n")
        self.process.stdin.flush()
        line = self._read_line(deadline - time.monotonic())
        if line is not None:
            return json.loads(line)
        # Stuck in sympy: kill it and start the replacement now, so its imports are done
        # (or under way) by the next call instead of counting against that call's time.
        self._stop()
        self._start()
        return None

    def _read_line(self, timeout_s: float) -> str | None:
        ready, _, _ = select.select([self.process.stdout], [], [], max(timeout_s, 0))
        return self.process.stdout.readline().strip() if ready else None

    def _start(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.ready = False
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rewards.sympy_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )

    def _stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class _Pool:
    """Idle workers; a caller takes one (or starts one when all are busy) and gives it back."""

    def __init__(self):
        self.lock = threading.Lock()
        self.idle: list[_Worker] = []
        self.all: list[_Worker] = []

    def take(self) -> _Worker:
        with self.lock:
            if self.idle:
                return self.idle.pop()
            worker = _Worker()
            self.all.append(worker)
            return worker

    def give_back(self, worker: _Worker) -> None:
        with self.lock:
            self.idle.append(worker)

    def stop(self) -> None:
        for worker in self.all:
            worker._stop()


_pools: dict[int, _Pool] = {}
_pools_lock = threading.Lock()


def _pool() -> _Pool:
    """The pool of this process (a forked child must not share its parent's workers)."""
    with _pools_lock:
        if os.getpid() not in _pools:
            _pools[os.getpid()] = pool = _Pool()
            atexit.register(pool.stop)
        return _pools[os.getpid()]


def _serve() -> None:
    _equal("x^2+2x+1", "(x+1)^2")  # imports and warms sympy's simplify before the first query
    print("ready", flush=True)
    for line in sys.stdin:
        gold, pred, rounded = json.loads(line)
        try:
            equal = bool(_equal(gold, pred, rounded))
        except Exception:  # noqa: BLE001 - unparsable or unsupported: not equal
            equal = False
        print(json.dumps(equal), flush=True)


def _equal(gold: str, pred: str, rounded: int | None = None) -> bool:
    import re

    import sympy

    both = gold + pred
    if re.search(r"\^\{[^{}]*\^", both) or any(
        len(m) > MAX_EXPONENT_DIGITS for m in re.findall(r"\^\{?(\d+)", both)
    ):
        return False  # power towers and huge exponents: sympy would try to evaluate them
    a, b = _parse(gold), _parse(pred)
    if rounded is not None:
        return (a - b).is_number and _rounds_to(a, b, rounded)
    if isinstance(a, sympy.Rel) or isinstance(b, sympy.Rel):
        return _same_relation(a, b)
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        return a.shape == b.shape and sympy.simplify(a - b).is_zero_matrix
    if (a - b).is_number:
        return _zero_constant(a - b, digits=sum(c.isdigit() for c in both))
    return sympy.simplify(a - b) == 0


def _zero_constant(difference, digits: int) -> bool:
    """Whether a constant is exactly 0. evalf gives a true zero no significant digits (0, or
    `0.e-164` at 30 digits), and a non-zero one its full precision; working at 30 digits more
    than the inputs write keeps a written approximation of pi (a rational that close to it)
    apart from pi itself. Cheaper than simplify, which can stall on constants."""
    import sympy

    precision = 30 + digits  # compared in sympy: a float 10.0**-precision underflows past 308
    return bool(abs(difference.evalf(precision)) < sympy.Rational(1, 10**precision))


def _rounds_to(gold, pred, decimals: int) -> bool:
    """Whether the constant `gold` rounded to `decimals` places is `pred`."""
    import sympy

    difference = abs((gold - pred).evalf(30 + decimals))
    return bool(difference <= sympy.Rational(1, 2 * 10**decimals))


def _same_relation(a, b) -> bool:
    """Equations are equal when one is a non-zero multiple of the other (`2x+4y=3` and
    `y=-x/2+3/4`); univariate inequalities when their solution sets are."""
    import sympy

    if not (isinstance(a, sympy.Rel) and isinstance(b, sympy.Rel)):
        return False
    if isinstance(a, sympy.Eq) and isinstance(b, sympy.Eq):
        ratio = sympy.simplify((a.lhs - a.rhs) / (b.lhs - b.rhs))
        return bool(ratio.is_number and ratio != 0)
    symbols = a.free_symbols | b.free_symbols
    if len(symbols) != 1:
        return sympy.simplify(a.lhs - a.rhs - (b.lhs - b.rhs)) == 0 and type(a) is type(b)
    x = symbols.pop()
    solve = sympy.solvers.inequalities.solve_univariate_inequality
    return solve(a, x, relational=False) == solve(b, x, relational=False)


def _parse(text: str):
    """latex2sympy2_extended: maintained, produces sympy directly, and is what math-verify uses;
    sympy's own parse_latex needs antlr at a pinned version. It reads plain `2x^2` too.
    Decimals become the exact fractions they write (its Floats would round them), and `i`
    is the imaginary unit (`i^2 = -1`; for a variable named i this only adds equalities)."""
    import re

    import sympy
    from latex2sympy2_extended import latex2sympy

    exact = re.sub(
        r"(?<![\d.])(\d*)\.(\d+)",
        lambda m: f"(\\frac{{{m.group(1)}{m.group(2)}}}{{1{'0' * len(m.group(2))}}})",
        text,
    )
    expression = latex2sympy(exact)
    if hasattr(expression, "subs"):
        expression = expression.subs(sympy.Symbol("i"), sympy.I)
    return expression


if __name__ == "__main__":
    _serve()
