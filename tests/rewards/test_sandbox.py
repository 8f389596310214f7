"""Containment, each checked from the outside, and programs that must still work."""

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rewards import sandbox
from rewards.sandbox import Job, SandboxArgumentError, SandboxPool, SandboxUnavailable, run_python

TIMEOUT = 1.0

bwrap_only = pytest.mark.skipif(
    sandbox.shutil.which("bwrap") is None, reason="bubblewrap (the sandbox) is not installed"
)


def tagged(code: str) -> tuple[str, str]:
    """`code` re-executed with a unique marker in its command line, which every process it
    forks inherits, so the test can look for survivors in /proc."""
    marker = f"r1kit-test-{uuid.uuid4().hex}"
    prelude = (
        "import os, sys\n"
        f"if {marker!r} not in sys.argv:\n"
        f"    os.execv(sys.executable, [sys.executable, '-I', '-S', __file__, {marker!r}])\n"
    )
    return prelude + code, marker


def processes_with(marker: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return found


def run_contained(code: str) -> sandbox.ExecResult:
    """Run a hostile program; it must return in time and leave no process behind."""
    program, marker = tagged(code)
    start = time.monotonic()
    result = run_python(program, timeout_s=TIMEOUT)
    assert time.monotonic() - start < TIMEOUT + 1.0
    deadline = time.monotonic() + 0.5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == [], "a process of the program outlived the call"
    return result


def test_the_survivor_check_sees_a_running_marked_process():
    marker = f"r1kit-test-{uuid.uuid4().hex}"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    try:
        assert processes_with(marker) == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()


@bwrap_only
def test_no_network_even_to_loopback():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)"
        result = run_python(code)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):  # no connection is waiting to be accepted
            listener.accept()
    assert result.status == "error"


@bwrap_only
@pytest.mark.parametrize("where", ["tmp", "home"])
def test_writing_outside_the_scratch_dir_leaves_no_file(tmp_path, where):
    folder = tmp_path if where == "tmp" else Path.home()
    target = folder / f"r1kit-escape-{uuid.uuid4().hex}"
    result = run_python(f"open({str(target)!r}, 'w').write('x')")
    exists = target.exists()
    target.unlink(missing_ok=True)
    assert result.status == "error" and not exists


@bwrap_only
def test_environment_secrets_are_invisible(monkeypatch):
    monkeypatch.setenv("R1KIT_TEST_SECRET", "hunter2")
    result = run_python("import os\nprint(os.environ.get('R1KIT_TEST_SECRET'))")
    assert result.stdout == "None\n"


@bwrap_only
@pytest.mark.parametrize("where", ["home", "project", "/etc/shadow"])
def test_secret_files_are_unreadable(where):
    if where == "home":
        path = Path.home() / f".r1kit-secret-{uuid.uuid4().hex}"
        path.write_text("hunter2")
    elif where == "project":
        path = Path(__file__)
    else:
        path = Path(where)
    try:
        result = run_python(f"print(open({str(path)!r}).read())")
    finally:
        if where == "home":
            path.unlink()
    assert result.status == "error" and "FileNotFoundError" in result.stderr


@bwrap_only
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("infinite-loop", "while True: pass"),
        ("sleep", "import time; time.sleep(1e9)"),
        ("fork-bomb", "while True:\n    try: os.fork()\n    except OSError: pass"),
        ("memory-bomb", "x = []\nwhile True: x.append(bytearray(10**7))"),
    ],
)
def test_runaway_programs_are_stopped(name, code):
    assert run_contained(code).status in ("timeout", "memory")


@bwrap_only
def test_daemonised_grandchild_does_not_survive():
    code = (
        "import time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(1e9)\n"
        "    os._exit(0)\n"
        "print('parent done')\n"
    )
    result = run_contained(code)
    assert result.status == "ok" and result.stdout == "parent done\n"


@bwrap_only
def test_killing_its_parent_does_not_hurt_the_caller():
    run_contained("os.kill(os.getppid(), 9)\nimport time; time.sleep(1e9)")


@bwrap_only
def test_statuses_of_failing_programs():
    assert run_python("import sys; sys.exit(3)").status == "error"
    killed = run_python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert (killed.status, killed.exit_code) == ("killed", -9)
    assert run_python("x = bytearray(10**9)", memory_mb=256).status == "memory"


@bwrap_only
def test_stdin_stdout_program():
    result = run_python("a, b = map(int, input().split())\nprint(a + b)", stdin="2 3\n")
    assert (result.status, result.stdout, result.exit_code) == ("ok", "5\n", 0)


@bwrap_only
def test_deep_recursion_with_a_raised_limit():
    code = (
        "import sys\nsys.setrecursionlimit(10**5)\n"
        "def f(n): return 0 if n == 0 else 1 + f(n - 1)\nprint(f(20000))"
    )
    assert run_python(code).stdout == "20000\n"


@bwrap_only
def test_temp_file_in_cwd_and_stdlib_imports():
    code = (
        "import collections, hashlib, itertools, json, math, re, sqlite3, tempfile\n"
        "open('t.json', 'w').write(json.dumps([1]))\n"
        "with tempfile.TemporaryFile() as f: f.write(b'x')\n"
        "print(open('t.json').read())"
    )
    assert run_python(code).stdout == "[1]\n"


@bwrap_only
def test_huge_or_binary_output_is_capped_and_decoded():
    result = run_python("import sys\nsys.stdout.buffer.write(b'\\xff\\xfe' * 2_000_000)")
    assert len(result.stdout) == sandbox.OUTPUT_CAP and "\ufffd" in result.stdout


@bwrap_only
def test_pool_returns_results_in_order():
    with SandboxPool(max_workers=2) as pool:
        results = pool.map([Job(f"print({i})") for i in range(5)])
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(5)]


@pytest.mark.parametrize(
    "call",
    [
        lambda: run_python("pass", timeout_s=0),
        lambda: run_python("pass", memory_mb=8),
        lambda: run_python("pass", isolation="docker"),
        lambda: SandboxPool(max_workers=0),
    ],
)
def test_bad_options_are_refused_clearly(call):
    with pytest.raises(SandboxArgumentError):
        call()


@pytest.fixture
def no_bubblewrap(monkeypatch):
    monkeypatch.delenv("R1KIT_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)


def test_refuses_without_bubblewrap(no_bubblewrap):
    with pytest.raises(SandboxUnavailable, match="R1KIT_SANDBOX=rlimits"):
        run_python("print(1)")


def test_refuses_when_bubblewrap_fails_its_self_test(monkeypatch):
    monkeypatch.delenv("R1KIT_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: "/bin/false")
    with pytest.raises(SandboxUnavailable, match="self-test"):
        sandbox.isolation_mode()


def test_weak_mode_runs_when_asked_for(no_bubblewrap, monkeypatch):
    assert run_python("print(1)", isolation="rlimits").stdout == "1\n"
    monkeypatch.setenv("R1KIT_SANDBOX", "rlimits")
    assert sandbox.isolation_mode() == "rlimits"
