"""Per-run cgroups that cap a sandboxed program's memory and process count for its whole tree.

Works on cgroup v1 (one hierarchy per controller), v2 (one unified hierarchy, controllers
enabled in the parent's cgroup.subtree_control) and hybrids of the two: each controller is
taken from whichever hierarchy holds it. New cgroups are made under this process's own, so
they stay inside any limit the caller runs under. Where a controller cannot be used, a
warning says once what is then not enforced.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("memory", "pids")
# The file that caps each controller, and the one that counts the memory controller's OOM kills.
LIMIT_FILES = {
    1: {"memory": "memory.limit_in_bytes", "pids": "pids.max"},
    2: {"memory": "memory.max", "pids": "pids.max"},
}
NO_SWAP_FILES = {1: "memory.memsw.limit_in_bytes", 2: "memory.swap.max"}
OOM_FILES = {1: "memory.oom_control", 2: "memory.events"}
NOT_ENFORCED = {
    "memory": "memory is capped per process only (RLIMIT_AS), not for the program's whole tree",
    "pids": "the process count is capped by RLIMIT_NPROC only, which root ignores",
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hierarchy:
    """Where new cgroups for one controller are made: `parent`, in a v1 or v2 hierarchy."""

    version: int
    parent: Path


@dataclass(frozen=True)
class RunCgroups:
    """The cgroups of one run (one per hierarchy: two on v1, one on v2), with their limits."""

    dirs: dict[str, Path]  # controller -> its cgroup directory
    versions: dict[str, int]

    def add(self, pid: int) -> None:
        """Move `pid` (and so everything it will fork) into every cgroup of the run."""
        for path in set(self.dirs.values()):
            (path / "cgroup.procs").write_text(str(pid))

    def oom_kills(self) -> int:
        """How many processes the memory cap killed."""
        if "memory" not in self.dirs:
            return 0
        text = (self.dirs["memory"] / OOM_FILES[self.versions["memory"]]).read_text()
        counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        return int(counts.get("oom_kill", 0))

    def remove(self) -> None:
        """Kill whatever is left in the cgroups (rlimits mode has no PID namespace), then remove
        them."""
        for path in set(self.dirs.values()):
            _empty(path)
            with contextlib.suppress(OSError):
                path.rmdir()


def make(memory_bytes: int, max_processes: int) -> RunCgroups | None:
    """Fresh cgroups capping the memory and the processes of one run; None where none can be
    made (warned about once)."""
    hierarchies = available()
    if not hierarchies:
        return None
    name = f"r1kit-{uuid.uuid4().hex[:12]}"
    dirs: dict[str, Path] = {}
    try:
        for controller, where in hierarchies.items():
            path = dirs.setdefault(controller, where.parent / name)
            path.mkdir(exist_ok=True)
            limit = memory_bytes if controller == "memory" else max_processes
            (path / LIMIT_FILES[where.version][controller]).write_text(str(limit))
            if controller == "memory":
                _no_swap(path, where.version)
    except OSError as err:
        _warn_once(f"making the run's cgroups failed ({err.strerror})", tuple(hierarchies))
        RunCgroups(dirs, {}).remove()
        return None
    return RunCgroups(dirs, {c: h.version for c, h in hierarchies.items()})


@functools.cache
def available() -> dict[str, Hierarchy]:
    """The hierarchy each usable controller lives in, found once; warns about the others."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        proc_cgroup = Path("/proc/self/cgroup").read_text()
    except OSError as err:
        _warn_once(f"cannot read this process's cgroups ({err})", CONTROLLERS)
        return {}
    return find(mountinfo, proc_cgroup)


def find(mountinfo: str, proc_cgroup: str) -> dict[str, Hierarchy]:
    """Where each controller's cgroups can be made, from /proc/self/{mountinfo,cgroup}
    (enabling v2 controllers on the way); warns about the controllers that cannot be."""
    found, reasons = {}, []
    own = own_paths(proc_cgroup)
    v1, v2 = mounts(mountinfo)
    for controller in CONTROLLERS:
        if controller in v1 and controller in own:
            mount_root, mountpoint = v1[controller]
            found[controller] = Hierarchy(1, _under(mountpoint, mount_root, own[controller]))
        elif v2 is not None and "" in own:
            parent = _under(v2[1], v2[0], own[""])
            problem = _enable_v2(parent, controller)
            if problem is None:
                found[controller] = Hierarchy(2, parent)
            else:
                reasons.append(problem)
        else:
            reasons.append(f"no cgroup hierarchy has the {controller} controller")
    found = {c: h for c, h in found.items() if os.access(h.parent, os.W_OK)}
    missing = tuple(c for c in CONTROLLERS if c not in found)
    if missing:
        _warn_once("; ".join(reasons) or "its cgroup directory is not writable", missing)
    return found


def mounts(mountinfo: str) -> tuple[dict[str, tuple[str, Path]], tuple[str, Path] | None]:
    """From /proc/self/mountinfo: the v1 controllers (-> mount root, mountpoint) and the v2
    mount (mount root, mountpoint), if any."""
    v1: dict[str, tuple[str, Path]] = {}
    v2 = None
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        parts, tail_parts = fields.split(), tail.split()
        if len(parts) < 5 or len(tail_parts) < 3:
            continue
        root, mountpoint, fstype = parts[3], Path(parts[4]), tail_parts[0]
        if fstype == "cgroup2" and v2 is None:
            v2 = (root, mountpoint)
        elif fstype == "cgroup":
            for option in tail_parts[2].split(","):
                if option in CONTROLLERS:
                    v1[option] = (root, mountpoint)
    return v1, v2


def own_paths(proc_cgroup: str) -> dict[str, str]:
    """From /proc/self/cgroup: each controller's cgroup path ("" for the v2 hierarchy)."""
    paths = {}
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _under(mountpoint: Path, mount_root: str, own: str) -> Path:
    """The directory of cgroup `own` when the hierarchy's `mount_root` is mounted there."""
    relative = os.path.relpath(own, mount_root)
    return mountpoint if relative == "." else mountpoint / relative


def _enable_v2(parent: Path, controller: str) -> str | None:
    """Turn `controller` on for children of `parent`; why it cannot be, or None."""
    try:
        if controller not in (parent / "cgroup.controllers").read_text().split():
            return f"cgroup v2 {parent} does not offer the {controller} controller"
        if controller not in (parent / "cgroup.subtree_control").read_text().split():
            (parent / "cgroup.subtree_control").write_text(f"+{controller}")
    except OSError as err:
        # EBUSY: the kernel refuses controllers below a non-root cgroup that holds processes.
        return (
            f"cannot enable the cgroup v2 {controller} controller under {parent} ({err}); "
            "run the trainer in a cgroup of its own that it may delegate to (e.g. as the only "
            "process of a container, or as root in the root cgroup)"
        )
    return None


def _no_swap(path: Path, version: int) -> None:
    """Keep the memory cap from being dodged through swap, where swap is accounted."""
    target = path / NO_SWAP_FILES[version]
    if target.exists():
        limit = (path / LIMIT_FILES[version]["memory"]).read_text().strip()
        target.write_text("0" if version == 2 else limit)


def _empty(path: Path) -> None:
    for _ in range(100):
        try:
            pids = (path / "cgroup.procs").read_text().split()
        except OSError:
            return
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.01)


@functools.cache
def _warn_once(reason: str, missing: tuple[str, ...]) -> None:
    lost = "; ".join(NOT_ENFORCED[c] for c in missing)
    log.warning("code sandbox: %s. Not enforced: %s.", reason, lost)
