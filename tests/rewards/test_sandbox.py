"""Containment, each checked from the outside, and programs that must still work."""

import contextlib
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from rewards import cgroups, sandbox
from rewards.sandbox import (
    Budget,
    Job,
    SandboxArgumentError,
    SandboxPool,
    SandboxUnavailable,
    run_python,
)

TIMEOUT = 1.0

bwrap_only = pytest.mark.skipif(
    sandbox.shutil.which("bwrap") is None, reason="bubblewrap (the sandbox) is not installed"
)


def needs_cgroup(controller: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        controller not in cgroups.available(),
        reason=f"no {controller} cgroup can be made here (the sandbox warns and falls back)",
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


def resident_mb(pids: list[int]) -> float:
    """The anonymous memory `pids` hold together (those still alive), pages shared between
    them (a forked parent's) counted once; file pages are charged to whoever read them first."""
    kb = 0
    for pid in pids:
        with contextlib.suppress(OSError, StopIteration):
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
            kb += int(next(line for line in lines if line.startswith("Pss_Anon:")).split()[1])
    return kb / 1024


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
        deadline = time.monotonic() + 2.0  # the interpreter may still be starting
        while not processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.01)
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
def test_the_program_runs_as_nobody_with_no_capabilities():
    code = (
        "import os\n"
        "lines = open('/proc/self/status').read().splitlines()\n"
        "status = dict(line.split(':\\t') for line in lines)\n"
        "caps = [status[k].strip() for k in ('CapEff', 'CapPrm', 'CapBnd')]\n"
        "print(os.getuid(), os.getgid(), *caps)"
    )
    assert run_python(code).stdout.split() == ["65534", "65534"] + ["0" * 16] * 3


@bwrap_only
@pytest.mark.parametrize("target", ["/usr", sys.base_prefix])
def test_host_mounts_cannot_be_remounted_writable(target):
    escape = Path(target) / f"r1kit-escape-{uuid.uuid4().hex}"
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "MS_REMOUNT, MS_BIND = 32, 4096\n"
        f"print(libc.mount(None, {target!r}.encode(), None, MS_REMOUNT | MS_BIND, None),"
        f" libc.mount(None, {target!r}.encode(), None, MS_REMOUNT, None))\n"
        f"open({str(escape)!r}, 'w').write('x')\n"
    )
    result = run_python(code)
    exists = escape.exists()
    escape.unlink(missing_ok=True)
    assert (result.stdout, result.status, exists) == ("-1 -1\n", "error", False)


@bwrap_only
@pytest.mark.parametrize(
    ("path", "error"), [("/dev/x", "Read-only file system"), ("/dev/shm/x", "No space left")]
)
def test_dev_is_read_only_and_its_shm_is_capped(path, error):
    chunk = 8 << 20  # under RLIMIT_FSIZE, so only the mount's own cap can stop the writes
    code = "\n".join(
        f"open('{path}{i}', 'wb').write(bytes({chunk}))" for i in range(sandbox.SHM_MB * 2 // 8)
    )
    result = run_python(code)
    assert result.status == "error" and error in result.stderr


# Every file under /proc (the sandbox's processes' own included) and /sys that the program may
# open for writing; asked with access(2), which refuses a read-only mount too, so nothing is
# written: as root, most of /proc/sys is host-wide (kernel.core_pattern).
WRITABLE_KERNEL_FILES = """
import os
found = []
for top in ("/proc", "/proc/self/", "/sys"):
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not d.isdigit() and d not in ("task", "root", "cwd", "fd")]
        found += [p for p in (os.path.join(root, n) for n in files) if os.access(p, os.W_OK)]
print(len(found), *found[:5], os.path.exists("/sys"))
"""


@bwrap_only
def test_no_file_of_proc_or_sys_is_writable():
    assert run_python(WRITABLE_KERNEL_FILES).stdout == "0 False\n"


# Sets the hostname through /proc/sys, then reads it back; NESTED first makes a user, mount
# and PID namespace of its own (all capabilities there), remounts /proc writable and mounts a
# new /proc, and writes through both.
SET_HOSTNAME = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
paths = ["/proc/sys/kernel/hostname"]
if NESTED:
    CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x20000, 0x10000000, 0x20000000
    MS_REMOUNT, MS_BIND = 32, 4096
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) != 0:
        print("no-namespaces", os.strerror(ctypes.get_errno()))
        raise SystemExit
    if os.fork():
        os._exit(os.wait()[1] >> 8)
    os.mkdir("/tmp/proc")
    libc.mount(None, b"/proc", None, MS_REMOUNT | MS_BIND, None)
    libc.mount(None, b"/proc", None, MS_REMOUNT, None)
    libc.mount(b"proc", b"/tmp/proc", b"proc", 0, None)
    paths.append("/tmp/proc/sys/kernel/hostname")
for path in paths:
    try:
        with open(path, "w") as file:
            file.write("r1kit-escaped")
    except OSError as err:
        print(type(err).__name__, end=" ")
print(os.uname().nodename == "r1kit-escaped")
"""


@bwrap_only
@pytest.mark.parametrize("nested", [False, True], ids=["direct", "nested-namespaces"])
def test_proc_sys_cannot_be_written(nested):
    result = run_python(f"NESTED = {nested}\n{SET_HOSTNAME}")
    assert result.status == "ok", result.stderr
    if result.stdout.startswith("no-namespaces"):
        pytest.skip(f"this kernel lets no user namespace be made in the sandbox: {result.stdout}")
    assert result.stdout.split()[-1] == "False"


@bwrap_only
@needs_cgroup("pids")
def test_processes_are_capped_for_the_whole_tree():
    code = (
        "import time\n"
        "n = 0\n"
        "try:\n"
        "    while n < 500:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(100)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError:\n"
        "    pass\n"
        "print(n)\n"
    )
    assert int(run_contained(code).stdout) < sandbox.MAX_PROCESSES


@bwrap_only
@needs_cgroup("memory")
def test_memory_is_capped_for_the_whole_tree():
    memory_mb, child_mb, children = 128, 64, 16
    code = (
        "import select, time\n"
        "ready, say_ready = os.pipe()\n"
        f"for _ in range({children}):\n"
        "    if os.fork() == 0:\n"
        f"        held = bytearray(b'1') * ({child_mb} << 20)\n"
        "        os.write(say_ready, b'h')\n"
        "        time.sleep(100)\n"
        "    # one at a time (all at once, the cap kills them all before they hold): wait until\n"
        "    # this child holds its memory or, killed on the way, never will\n"
        "    if select.select([ready], [], [], 0.5)[0]:\n"
        "        os.read(ready, 1)\n"
        "        print('held', flush=True)\n"
        "time.sleep(0.2)\n"
    )
    program, marker = tagged(code)
    peak, done = [0.0], threading.Event()

    def sample() -> None:  # the tree's memory, seen from the outside while it runs
        while not done.wait(0.01):
            peak[0] = max(peak[0], resident_mb(processes_with(marker)))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = run_python(program, timeout_s=10.0, memory_mb=memory_mb)
    finally:
        done.set()
        sampler.join()
    tree_mb = memory_mb + sandbox.TMPFS_MB + sandbox.SHM_MB + sandbox.DEV_MB
    assert result.stdout.count("held") >= 2  # the children did allocate, one after another
    # Uncapped, the children would hold children * child_mb (1 GB). The processes are read one
    # after another, so a child killed mid-sample may still count: allow one child's worth.
    assert child_mb < peak[0] < tree_mb + child_mb


@bwrap_only
@needs_cgroup("memory")
def test_a_tree_killed_for_memory_reports_memory():
    code = (  # six children of 60 MB each, under the per-process limit, together over the tree's
        "import os, sys\n"
        "children = []\n"
        "for _ in range(6):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        held = bytearray(b'1') * (60 << 20)\n"
        "        os._exit(0)\n"
        "    children.append(pid)\n"
        "sys.exit(any(os.waitpid(pid, 0)[1] for pid in children))\n"
    )
    result = run_python(code, memory_mb=80)
    assert (result.status, result.exit_code) == ("memory", 1)


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


@bwrap_only
def test_jobs_sharing_a_budget_stop_when_it_is_spent():
    budget = Budget(1.0)
    start = time.monotonic()
    with SandboxPool(max_workers=2) as pool:
        jobs = [Job("import time; time.sleep(100)", timeout_s=5.0)] * 3
        results = [future.result() for future in [pool.submit(job, budget) for job in jobs]]
    assert [r.status for r in results] == ["timeout"] * 3
    assert time.monotonic() - start < 3.0  # 10 s for two workers without the budget


@pytest.mark.parametrize(
    "call",
    [
        lambda: Budget(0),
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
