"""The program that runs a completion's assert-style tests in the sandbox with a verdict the
completion cannot forge; rewards/code_tests.py ships this file's source as the sandbox's main.py.

Two processes. The checker (this one) forks the candidate before it reads anything secret; the
candidate reads the completion's code from stdin, runs it and answers calls over a pipe with
plain data (builtin values; anything else stays in the candidate as an opaque handle). The
checker then reads the tests from fd 3, which the candidate closed and which is in no file the
sandbox can open, runs them with the completion's names bound to proxies, and exits 0 only when
they pass. It never runs the completion's code, compares only values it decoded itself (so a
returned object's own __eq__ or __bool__ never runs), receives the function's StopIteration as
a RuntimeError (so it cannot end a test's `map` early), is not dumpable (the candidate cannot
read its memory or fds through /proc or ptrace), and kills the candidate before it writes any
output.
Standard library only: it runs as `python -I -S`.
"""

import builtins
import ctypes
import io
import json
import os
import signal
import sys
import traceback

PRIVATE_FD = 3  # rewards.sandbox.PRIVATE_FD: this file runs alone in the sandbox
PR_SET_DUMPABLE = 4
# What the iteration protocol reads as "no more items": raised by the tested function inside a
# test's `map`, `filter` or `iter(f, sentinel)`, it would end the loop early and `all(...)` pass,
# so it reaches the tests as a RuntimeError, as PEP 479 makes it in a generator.
ENDS_ITERATION = (StopIteration, StopAsyncIteration)


class Remote:
    """An object living in the candidate process: callable there, equal only to itself, with no
    truth value (its own __bool__ is the candidate's to run, and the checker runs none)."""

    __slots__ = ("ref", "link")

    def __init__(self, ref, link):
        self.ref, self.link = ref, link

    def __call__(self, *args, **kwargs):
        return self.link.call(self.ref, args, kwargs)

    def __bool__(self):
        raise TypeError(f"{self!r} has no truth value in the tests (only builtin values have one)")

    def __repr__(self):
        return f"<candidate object #{self.ref}>"


def encode(value, to_ref):
    """`value` as JSON-ready data made of builtin values (a subclass, such as Counter or a
    str with its own __eq__, becomes its builtin base), builtins named, the rest through
    `to_ref` (which returns a reference or raises)."""
    if value is None or isinstance(value, bool):
        return value if value is None else bool(value)
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, list):
        return [encode(item, to_ref) for item in list.__iter__(value)]
    for kind in (tuple, set, frozenset):
        if isinstance(value, kind):
            return {kind.__name__: [encode(item, to_ref) for item in kind.__iter__(value)]}
    if isinstance(value, dict):
        items = dict.items(value)
        return {"dict": [[encode(k, to_ref), encode(v, to_ref)] for k, v in items]}
    if isinstance(value, bytes):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, complex):
        return {"complex": [value.real, value.imag]}
    if isinstance(value, type | type(len)) and getattr(builtins, value.__name__, None) is value:
        return {"builtin": value.__name__}
    return {"ref": to_ref(value)}


def decoder(from_ref):
    """A json.loads object hook undoing `encode`, with `from_ref` for references."""
    makers = {
        "tuple": tuple,
        "set": set,
        "frozenset": frozenset,
        "dict": lambda pairs: {k: v for k, v in pairs},
        "bytes": bytes.fromhex,
        "complex": lambda parts: complex(*parts),
        "builtin": lambda name: getattr(builtins, name),
        "ref": from_ref,
    }

    def hook(obj):
        ((tag, data),) = obj.items()
        return makers[tag](data)

    return hook


class Link:
    """The checker's end of the pipes to the candidate."""

    def __init__(self, requests, answers):
        self.requests, self.answers = requests, answers
        self.hook = decoder(lambda ref: Remote(ref, self))

    def receive(self):
        line = self.answers.readline()
        if not line:
            raise RuntimeError("the candidate process ended")
        outcome, *payload = json.loads(line, object_hook=self.hook)
        if outcome == "raised":
            name, message = payload
            kind = getattr(builtins, name, None)
            plain = isinstance(kind, type) and issubclass(kind, Exception)
            if plain and not issubclass(kind, ENDS_ITERATION):
                raise kind(message)
            raise RuntimeError(f"{name}: {message}")
        return payload[0]

    def call(self, ref, args, kwargs):
        request = [ref, encode(list(args), self._ref), encode(kwargs, self._ref)]
        self.requests.write(json.dumps(request) + "\n")
        self.requests.flush()
        return self.receive()

    @staticmethod
    def _ref(value):
        if type(value) is Remote:
            return value.ref
        raise TypeError(f"cannot pass {type(value).__name__} to the candidate")


def candidate(requests, answers):
    """The candidate process: run the completion, then answer calls until the checker is done."""
    os.close(PRIVATE_FD)
    objects = []

    def to_ref(value):
        objects.append(value)
        return len(objects) - 1

    def reply(make):
        try:
            answer = ["value", encode(make(), to_ref)]
        except BaseException as err:  # the completion's failures are the checker's to judge
            answer = raised(err)
        answers.write(json.dumps(answer) + "\n")
        answers.flush()

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    source = sys.stdin.read()
    reply(lambda: _run(source, namespace))
    hook = decoder(lambda ref: objects[ref])
    for line in requests:
        ref, args, kwargs = json.loads(line, object_hook=hook)
        reply(lambda: objects[ref](*args, **kwargs))  # noqa: B023 (called at once)
    os._exit(0)


def raised(err):
    """The answer for an exception of the completion: the name of its nearest builtin class (a
    `json.JSONDecodeError` is the ValueError a test may expect) and its message."""
    mro = type(err).__mro__
    kind = next((k for k in mro if getattr(builtins, k.__name__, None) is k), BaseException)
    message = str(err) if kind is type(err) else f"{type(err).__name__}: {err}"
    return ["raised", kind.__name__, message[:1000]]


def _run(source, namespace):
    exec(compile(source, "<completion>", "exec"), namespace)
    return {name: value for name, value in namespace.items() if not name.startswith("__")}


def bindings(names):
    """The tests' namespace: the completion's names (all in `__completion__`), but never a
    dunder or a builtin's name, which stay the checker's own: a completion's `abs`, or a
    forged `__builtins__`, must not judge it."""
    if type(names) is not dict:
        raise TypeError("the candidate did not send its names")
    own = {
        name: value
        for name, value in names.items()
        if type(name) is str and not name.startswith("__") and not hasattr(builtins, name)
    }
    return {**own, "__name__": "__main__", "__builtins__": builtins, "__completion__": names}


def check(link, child):
    """The checker: bind the completion's names, run the tests; exit 0 only if they pass."""
    with os.fdopen(PRIVATE_FD, encoding="utf-8") as private:
        tests = private.read()
    captured = io.StringIO()
    sys.stdout = sys.stderr = captured
    try:
        exec(compile(tests, "<tests>", "exec"), bindings(link.receive()))
        passed = True
    except BaseException:
        passed = False
        traceback.print_exc()
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    sys.__stderr__.write(captured.getvalue())
    sys.__stderr__.flush()
    os._exit(0 if passed else 1)


def main():
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if hasattr(sys, "set_int_max_str_digits"):  # big ints must cross the pipe as JSON
        sys.set_int_max_str_digits(0)
    requests_in, requests_out = os.pipe()
    answers_in, answers_out = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(requests_out)
        os.close(answers_in)
        with os.fdopen(requests_in, "r") as requests, os.fdopen(answers_out, "w") as answers:
            candidate(requests, answers)
    os.close(requests_in)
    os.close(answers_out)
    os.close(0)
    check(Link(os.fdopen(requests_out, "w"), os.fdopen(answers_in, "r")), child)


if __name__ == "__main__":
    main()
