"""Containment, each checked from the outside, and programs that must still work."""

import os
import socket
import subprocess
import threading
import time
import uuid

import pytest

from rewards import sandbox
from rewards.sandbox import SandboxUnavailable, run_python

TIMEOUT = 2.0


def _no_process_with(marker: str) -> bool:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return marker not in out


def _contained(code: str, marker: str) -> None:
    start = time.monotonic()
    result = run_python(code, timeout_s=TIMEOUT)
    assert time.monotonic() - start < TIMEOUT + 1.0
    time.sleep(0.2)
    assert _no_process_with(marker), "a process of the program outlived the call"
    return result


def test_no_network_even_to_loopback():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(3)
    port = listener.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(_accept(listener)))
    thread.start()
    result = run_python(
        f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)"
    )
    thread.join()
    assert result.status == "error" and accepted == [None]


def _accept(listener):
    try:
        return listener.accept()
    except OSError:
        return None


def test_writing_outside_the_scratch_dir_leaves_no_file(tmp_path):
    target = tmp_path / f"escape-{uuid.uuid4().hex}"
    result = run_python(f"open({str(target)!r}, 'w').write('x')")
    assert result.status == "error" and not target.exists()


def test_secrets_in_the_environment_and_home_are_invisible(monkeypatch):
    monkeypatch.setenv("R1KIT_TEST_SECRET", "hunter2")
    secret = os.path.expanduser(f"~/.r1kit-secret-{uuid.uuid4().hex}")
    with open(secret, "w") as f:
        f.write("hunter2")
    try:
        code = (
            f"import os\nprint(os.environ.get('R1KIT_TEST_SECRET'))\nprint(open({secret!r}).read())"
        )
        result = run_python(code)
    finally:
        os.remove(secret)
    assert "hunter2" not in result.stdout and result.stdout.startswith("None")


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("infinite-loop", "while True: pass"),
        ("sleep", "import time; time.sleep(1e9)"),
        ("fork-bomb", "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass"),
        ("memory-bomb", "x = []\nwhile True: x.append(bytearray(10**7))"),
    ],
)
def test_runaway_programs_are_stopped(name, code):
    marker = f"# {name}-{uuid.uuid4().hex}"
    result = _contained(code + "\n" + marker, marker)
    assert result.status in ("timeout", "memory", "killed")


def test_daemonised_grandchild_does_not_survive(tmp_path):
    marker = f"grandchild-{uuid.uuid4().hex}"
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        time.sleep(1e9)  # {marker}\n"
        "    os._exit(0)\n"
        f"print('parent done')  # {marker}\n"
    )
    result = _contained(code, marker)
    assert "parent done" in result.stdout


def test_killing_its_parent_does_not_hurt_the_caller():
    result = _contained("import os; os.kill(os.getppid(), 9)", "os.getppid")
    assert result.status in ("ok", "killed", "error")


def test_stdin_stdout_program():
    result = run_python("a, b = map(int, input().split())\nprint(a + b)", stdin="2 3\n")
    assert result.status == "ok" and result.stdout == "5\n" and result.exit_code == 0


def test_deep_recursion_with_a_raised_limit():
    code = (
        "import sys\nsys.setrecursionlimit(10**5)\n"
        "def f(n): return 0 if n == 0 else 1 + f(n - 1)\nprint(f(20000))"
    )
    assert run_python(code).stdout == "20000\n"


def test_temp_file_in_cwd_and_stdlib_imports():
    code = (
        "import json, collections, itertools, math, re\n"
        "open('t.json', 'w').write(json.dumps([1]))\nprint(open('t.json').read())"
    )
    assert run_python(code).stdout == "[1]\n"


def test_errors_and_huge_or_binary_output_are_safe():
    result = run_python(
        "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe' * 2_000_000)\nraise ValueError('x')"
    )
    assert result.status == "error" and "ValueError" in result.stderr
    assert len(result.stdout) <= sandbox.OUTPUT_CAP and "\ufffd" in result.stdout


def test_refuses_without_bubblewrap_unless_weak_mode_is_asked(monkeypatch):
    monkeypatch.delenv("R1KIT_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        run_python("print(1)")
    assert run_python("print(1)", isolation="rlimits").stdout == "1\n"
    assert sandbox.isolation_mode("rlimits") == "rlimits"
