"""Symbolic equivalence in a worker process with a hard deadline.

sympy can run for minutes (or forever) on inputs such as 10^{10^{10}} or huge factorials, and
`signal.alarm` only works in a process's main thread. So the comparison runs in a long-lived
`rewards.deadline.Worker`; when it misses the deadline the worker is killed and a new one
started, and the answer is None ("not decided"). Each concurrent caller (thread) gets a worker
of its own from a pool, so no call waits behind another's deadline.
"""

from __future__ import annotations

import atexit
import os
import pickle
import threading
import time
from functools import partial

from rewards.deadline import Worker

COLD_START_S = 30.0  # a new worker imports sympy (about 0.5 s idle, more on a busy machine)
MAX_EXPONENT_DIGITS = 4  # 10^{12345} is refused before it reaches sympy


def sympy_equal(gold: str, pred: str, deadline_s: float, rounded: int | None = None) -> bool | None:
    """Whether two LaTeX/plain expressions are equal as sympy sees them, exactly (decimals
    are read as the exact fractions they write); None when the deadline passed first.
    With `rounded` = d, a constant `pred` also equals a gold that rounds to it at d decimals."""
    pool = _pool()
    checker = pool.take()
    try:
        return checker.ask(gold, pred, deadline_s, rounded)
    finally:
        pool.give_back(checker)


class _Checker:
    """One caller's sympy worker: its first start waits, untimed; a replacement started after
    a timeout warms up at once, and what is left of that counts against the next call."""

    def __init__(self):
        self.worker: Worker | None = None

    def ask(self, gold: str, pred: str, deadline_s: float, rounded: int | None) -> bool | None:
        if self.worker is None or not self.worker.alive:
            self.worker = _start()
            self.worker.await_ready(COLD_START_S)  # a cold start waits, once
        deadline = time.monotonic() + deadline_s
        if not self.worker.await_ready(deadline_s):  # a replacement still importing
            return None
        payload = pickle.dumps(partial(_decide, gold, pred, rounded))
        outcome = self.worker.call(payload, deadline - time.monotonic())
        if outcome.failure == "timeout":
            # Stuck in sympy (and killed): start the replacement now, so its imports are done
            # (or under way) by the next call instead of counting against that call's time.
            self.worker = _start()
            return None
        if outcome.failure is not None:
            raise RuntimeError(f"sympy worker: {outcome.detail}")
        return outcome.value

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.kill()


class _Pool:
    """Idle checkers; a caller takes one (or makes one when all are busy) and gives it back."""

    def __init__(self):
        self.lock = threading.Lock()
        self.idle: list[_Checker] = []
        self.all: list[_Checker] = []

    def take(self) -> _Checker:
        with self.lock:
            if self.idle:
                return self.idle.pop()
            checker = _Checker()
            self.all.append(checker)
            return checker

    def give_back(self, checker: _Checker) -> None:
        with self.lock:
            self.idle.append(checker)

    def stop(self) -> None:
        for checker in self.all:
            checker.stop()


_pools: dict[int, _Pool] = {}
_pools_lock = threading.Lock()


def _pool() -> _Pool:
    """The pool of this process (a forked child must not share its parent's workers)."""
    with _pools_lock:
        if os.getpid() not in _pools:
            _pools[os.getpid()] = pool = _Pool()
            atexit.register(pool.stop)
        return _pools[os.getpid()]


def _start() -> Worker:
    """A worker that imports and warms sympy's simplify before it says it is ready. Callers
    are any threads (Ray's, a reward's), so it cannot die with the thread that started it."""
    warm_up = pickle.dumps(partial(_equal, "x^2+2x+1", "(x+1)^2"))
    return Worker(warm_up, die_with_parent=False)


def _decide(gold: str, pred: str, rounded: int | None) -> bool:
    """`_equal` as the worker answers it: what sympy cannot parse or handle is not equal."""
    try:
        return bool(_equal(gold, pred, rounded))
    except Exception:  # noqa: BLE001 - unparsable or unsupported: not equal
        return False


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
