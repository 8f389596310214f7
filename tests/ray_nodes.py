"""Ray nodes started with `ray start` on this machine, for the tests and benchmarks/cluster.py:
a head (token authentication on, Ray's default) and more nodes joining it, each with its own
CPUs, all under one temp dir; stopped by their own processes' ids, never `ray stop` (which
would stop every cluster on the machine, other users' included). Also `r1kit train` run on
them as a user's shell runs it, and a node stopped once a run has logged a step."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

Completed = subprocess.CompletedProcess


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ray_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    """`ray ARGS...` of this Python's environment."""
    ray = Path(sys.executable).with_name("ray")
    return subprocess.run([str(ray), *args], capture_output=True, text=True, **kw)


def without_auth_settings() -> dict[str, str]:
    """This environment less RAY_AUTH_*: Ray's defaults, as a user's shell has them (a Ray
    cluster started in this process sets RAY_AUTH_MODE for its children)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}


@dataclass(frozen=True)
class Node:
    """A node `ray start` joined: its id in Ray, and its processes when it joined."""

    id: str
    processes: set[int]


@dataclass
class Cluster:
    """A head started by `start_head` and the nodes `add_node` joined to it."""

    temp: str  # every node's --temp-dir (short: Ray's socket paths)
    port: int  # the head's GCS port
    address: str  # host:port, as `ray start --head` prints it
    said: str  # what `ray start --head` printed
    dashboard_port: int | None = None
    nodes: list[Node] = field(default_factory=list)  # the nodes `add_node` joined

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def add_node(self, cpus: int, timeout: float = 120) -> Node:
        """Join a node of `cpus` logical CPUs."""
        before, known = self.processes(), self.alive_nodes()
        env = {**without_auth_settings(), "RAY_AUTH_MODE": "token"}  # the head's token, ~/.ray
        started = ray_cli(
            "start", f"--address={self.address}", f"--num-cpus={cpus}", "--disable-usage-stats",
            f"--temp-dir={self.temp}", timeout=timeout, env=env,
        )  # fmt: skip
        if started.returncode != 0:
            raise RuntimeError(f"a Ray node failed to join: {started.stdout}{started.stderr}")
        (node_id,) = set(self.alive_nodes()) - set(known)
        node = Node(node_id, self.processes() - before)
        self.nodes.append(node)
        return node

    def stop_node(self, node: Node) -> None:
        """Kill one node's processes (its raylet and all it started): the node is lost."""
        _kill(node.processes | _descendants(node.processes))

    def submit(self, *entrypoint: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """`ray job submit -- ENTRYPOINT` to this cluster's dashboard, waiting for the end.
        Ray's own CLI reads the token only with RAY_AUTH_MODE=token (r1kit, in the job, needs
        nothing set)."""
        return ray_cli(
            "job", "submit", f"--address={self.dashboard}", "--", *entrypoint, timeout=timeout,
            env={**without_auth_settings(), "RAY_AUTH_MODE": "token"},
        )  # fmt: skip

    def train(
        self, *args: str, wait: bool = True
    ) -> subprocess.Popen | subprocess.CompletedProcess:
        """`train(ARGS)` with `ray.address: auto` held to this cluster by RAY_ADDRESS (what
        `auto` reads first, and what a job of `ray job submit` is given): on a shared machine,
        another Ray cluster started meanwhile becomes the one `auto` finds otherwise."""
        return train(*args, wait=wait, RAY_ADDRESS=self.address)

    def alive_nodes(self) -> dict[str, float]:
        """The ids of the cluster's alive nodes and their CPUs, as Ray reports them."""
        code = (
            "import json, ray; ray.init(address='auto', logging_level='ERROR'); "
            "print(json.dumps({n['NodeID']: n['Resources'].get('CPU', 0) "
            "for n in ray.nodes() if n['Alive']}))"
        )
        env = {**without_auth_settings(), "RAY_ADDRESS": self.address, "RAY_AUTH_MODE": "token"}
        said = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
        )
        if said.returncode != 0:
            raise RuntimeError(f"cannot list the cluster's nodes: {said.stderr[-2000:]}")
        return json.loads(said.stdout.strip().splitlines()[-1])

    def processes(self) -> set[int]:
        """The cluster's processes: those naming its temp dir or port, and their descendants
        (Ray renames some, e.g. `ray::DashboardAgent`, and detaches them from `ray start`)."""
        named = set()
        for pid, cmdline in _cmdlines().items():
            if self.temp in cmdline or re.search(rf":{self.port}\b", cmdline):  # not :63970
                named.add(pid)
        return (named | _descendants(named)) - _ancestors_and_self()

    def stop(self) -> None:
        """Kill every process of the cluster and remove its temp dir."""
        _kill(self.processes())
        shutil.rmtree(self.temp, ignore_errors=True)


@contextlib.contextmanager
def head(
    port: int, cpus: int, dashboard_port: int | None = None, timeout: float = 120
) -> Iterator[Cluster]:
    """A head node with Ray's default authentication (a token), always stopped on exit."""
    temp = tempfile.mkdtemp(prefix="r1h", dir="/tmp")
    dashboard = (
        # The job agent gets a free port: another Ray node on this machine (a test process's
        # own `ray.init()`) may hold the default one, and `ray job submit` then finds no agent.
        [
            f"--dashboard-port={dashboard_port}",
            "--include-dashboard=true",
            f"--dashboard-agent-listen-port={free_port()}",
        ]
        if dashboard_port
        else ["--include-dashboard=false"]
    )
    cluster = Cluster(temp, port, "", "", dashboard_port)
    try:
        # `ray start --head` turns token authentication on when a token exists (a local
        # `ray.init()` writes one); make sure one does, as `ray get-auth-token` tells users to.
        ray_cli("get-auth-token", "--generate", timeout=timeout, env=without_auth_settings())
        started = ray_cli(
            "start", "--head", f"--port={port}", f"--num-cpus={cpus}", *dashboard,
            "--disable-usage-stats", f"--temp-dir={temp}", timeout=timeout,
            env=without_auth_settings(),
        )  # fmt: skip
        cluster.said = started.stdout + started.stderr
        if started.returncode != 0:
            raise RuntimeError(f"ray start --head failed: {cluster.said}")
        cluster.address = re.search(r"ray start --address='([^']+)'", cluster.said)[1]
        yield cluster
    finally:
        cluster.stop()


def on_cluster(tiny_recipe: Callable[..., dict], directory: Path, name: str, **sections) -> Path:
    """A recipe file in `directory`: the tiny recipe (tests/conftest.py) with `sections`, its
    run named `name`, on the running cluster (`ray.address: auto`) with workers and ranks
    spread across the nodes (`ray.placement: spread`)."""
    raw = tiny_recipe(**sections)
    raw["output"]["name"] = name
    raw["ray"] = {"address": "auto", "placement": "spread"}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def train(*args: str, wait: bool = True, **env: str) -> subprocess.Popen | Completed:
    """`r1kit train ARGS` as a user's shell runs it (no Ray variable set but `env`); unless
    `wait`, the running process, its output (stdout and stderr) on `.stdout`."""
    command = [sys.executable, "-m", "r1kit.cli", "train", *args]
    env = {**without_auth_settings(), **env}
    if not wait:
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
    return subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)


def stop_node_after_step(
    cluster: Cluster, node: Node, run: Path, step: int, proc: subprocess.Popen
) -> None:
    """Stop `node` once the run in `run` has logged `step` (the next step is sampling)."""
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        logged = metrics.read_text().splitlines() if metrics.exists() else []
        if any(json.loads(line)["step"] >= step for line in logged):
            cluster.stop_node(node)
            return
        time.sleep(0.2)
    raise RuntimeError(f"the run never logged step {step}: {proc.communicate()[0][-3000:]}")


def _cmdlines() -> dict[int, str]:
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                found[int(proc.name)] = (proc / "cmdline").read_text()
    return found


def _parents() -> dict[int, int]:
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (proc / "stat").read_text()
                found[int(proc.name)] = int(stat.rpartition(")")[2].split()[1])
    return found


def _descendants(pids: set[int]) -> set[int]:
    parents, found = _parents(), set(pids)
    while grown := {pid for pid, parent in parents.items() if parent in found} - found:
        found |= grown
    return found - pids


def _ancestors_and_self() -> set[int]:
    """This process and its ancestors: never to be killed (their command lines may name the
    cluster's temp dir)."""
    parents, pid, found = _parents(), os.getpid(), set()
    while pid > 1 and pid not in found:
        found.add(pid)
        pid = parents.get(pid, 1)
    return found


def _kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)  # let the kernel reap them before a port or temp dir is reused
