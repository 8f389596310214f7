"""A rollout engine that is a pool of Ray actors, each owning one engine (HF or vLLM).

Prompts are sharded across the actors whole (the G completions of a prompt stay on one actor)
and balanced by expected tokens; results come back in prompt order. Weights go out once per
update (one `ray.put`, one get per actor). An actor that dies (its process, or the node it ran
on) is replaced on the nodes that remain, given the current weights, and its prompts are sampled
again; the same prompts failing twice in one call raise. `ray.placement: spread` spreads the
actors across the cluster's nodes; `placement()` says where each runs.
`submit` starts sampling without waiting (async off-policy rollouts): weights sent
meanwhile queue behind it on each actor, so that sampling keeps the weights it started with.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import ray
import torch
from ray.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    AuthenticationError,
    RayActorError,
    RayTaskError,
)

from rollout import leftovers
from rollout.engines import EngineSpec, ModelSource, open_in_process
from rollout.types import Completion, EngineDead, SamplingParams

log = logging.getLogger(__name__)
T = TypeVar("T")
ACTOR_GONE = (RayActorError, ActorDiedError, ActorUnavailableError)
PLACE_TRIES = 3  # a replacement placed on a node that turns out lost too is placed again
SCHEDULING = {"pack": "DEFAULT", "spread": "SPREAD"}  # ray.placement -> Ray's strategy


class PoolError(RuntimeError):
    """Ray cannot be reached, or an actor keeps dying on the same prompts."""


def connect(address: str) -> dict[str, float]:
    """Join Ray at `address` ("local": a new cluster on this machine's CPUs; "auto": the running
    one; else host:port or ray://...), once per process; the cluster's resources. A cluster
    with token authentication (Ray's default since 2.60) is joined with the token where Ray
    keeps it; a PoolError says why joining failed and what to set."""
    local = address == "local"
    if not local and address != "auto":
        _check_reachable(address)  # also when this process already joined another cluster
    if not ray.is_initialized():
        if not local:
            _use_the_token_ray_keeps()
        try:
            ray.init(
                address=address,  # "local" starts a new cluster even beside a running one
                num_cpus=os.cpu_count() if local else None,
                include_dashboard=False,
                log_to_driver=True,
                logging_level=logging.WARNING,
            )
        except AuthenticationError as err:  # a token was asked for and could not be read
            raise PoolError(f"ray.address: {address!r}: {err.message}; {TOKEN_HELP}") from None
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise PoolError(connect_failure(address, str(err))) from None
    return dict(ray.cluster_resources())


TOKEN_HELP = (
    "give this process the cluster's token: copy the head's ~/.ray/auth_token here, or set "
    "RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH, a file); `ray get-auth-token` on the head prints it"
)


def connect_failure(address: str, error: str) -> str:
    """Why `ray.init(address)` failed with `error`, and what to set: no cluster, or (Ray
    says only "Failed to connect" when the cluster refuses a token) a missing or wrong one."""
    if "Could not find any running Ray instance" in error:
        return (
            "ray.address: auto: no Ray cluster is running on this machine; start one "
            "(`ray start --head`), give a cluster's host:port, or use ray.address: local "
            "(a cluster of this run's own)"
        )
    cause = f"ray.address: cannot reach Ray at {address!r}: {error}"
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return f"{cause}; RAY_AUTH_MODE=disabled is set: unset it if the cluster uses tokens"
    source = token_source()
    if source is None:
        return (
            f"{cause}; if the cluster uses token authentication (Ray's default since 2.60), "
            f"this process has no token: {TOKEN_HELP}"
        )
    return (
        f"{cause}; if the cluster uses token authentication, the token from {source} may not "
        f"be the cluster's: {TOKEN_HELP}"
    )


def token_source() -> str | None:
    """Where Ray would read this process's auth token from (its own order), if anywhere."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return f"RAY_AUTH_TOKEN_PATH ({path})"
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if default.is_file() and default.stat().st_size else None


def _use_the_token_ray_keeps() -> None:
    """Send the token where Ray keeps it (unless RAY_AUTH_MODE says otherwise) to any address:
    Ray does so by itself only for the cluster `auto` finds, never for host:port or RAY_ADDRESS
    (what `auto` reads first, and what a job of `ray job submit` is given). A cluster without
    token authentication accepts a process that sends one."""
    if "RAY_AUTH_MODE" in os.environ or token_source() is None:
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray from before token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a host:port nothing listens on (ray.init would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise PoolError(f"ray.address: expected local, auto or host:port, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise PoolError(f"ray.address: cannot reach Ray at {address!r}: {err}") from None


class RolloutWorker:
    """The actor: one engine, built in the actor's own process."""

    def __init__(self, kind: str, model_dir: str, seed: int, options: dict[str, Any], threads: int):
        # vLLM on CPU binds its threads to cores it picks as if alone on the machine; actors
        # sharing a machine would pick the same ones. Let the OS place `threads` threads.
        os.environ.update(VLLM_CPU_OMP_THREADS_BIND="nobind", OMP_NUM_THREADS=str(threads))
        torch.set_num_threads(threads)
        self.engine = open_in_process(kind, ModelSource(model_dir), seed, options)
        self.version = 0
        # A vLLM client can wait forever on an engine process that was killed: watch them.
        engine_processes = leftovers.collect().processes
        threading.Thread(target=_exit_when_any_dies, args=(engine_processes,), daemon=True).start()

    def generate(
        self, prompts: list[list[int]], sampling: SamplingParams
    ) -> list[list[Completion]]:
        try:
            groups = self.engine.generate(prompts, sampling)
        except EngineDead:
            # A dead vLLM engine leaves this actor alive but useless: exit so it is replaced.
            sys.stderr.write("rollout worker: engine died, exiting\n")
            os._exit(1)
        for completion in (c for group in groups for c in group):
            completion.policy_version = self.version
        return groups

    def update_weights(self, named_tensors: list[tuple[str, torch.Tensor]], version: int) -> None:
        self.engine.update_weights(named_tensors)
        self.version = version

    def route(self) -> str:
        """How this actor's engine takes updates: "nccl" (vLLM's native API, driven by the
        pool), else through `update_weights`."""
        route = getattr(self.engine, "route", None)
        return route.path if route is not None else "shm"

    def transfer_rpc(self, method: str, *args: Any) -> None:
        """One call of vLLM's weight-transfer protocol (`rollout.native_transfer`)."""
        self.engine.transfer_rpc(method, *args)
        if method == "finish_weight_update":
            self.version += 1

    def sleep(self) -> None:
        self.engine.sleep()

    def wake_up(self, tags: list[str] | None = None) -> None:
        self.engine.wake_up(tags)

    def leftovers(self) -> tuple[leftovers.Leftovers, str, str]:
        """What this actor's engine would leave if killed, and the node (id, IP) it runs on."""
        node = ray.get_runtime_context().get_node_id()
        return leftovers.collect(), node, ray.util.get_node_ip_address()

    def pid(self) -> int:
        return os.getpid()


class RayPool:
    """`generate` / `update_weights` over `spec.workers` Ray actors, each opening an engine of
    `spec.kind` from `model_dir` with `seed`; `restarts` counts replacements."""

    def __init__(self, spec: EngineSpec, model_dir: str, seed: int = 0):
        if spec.workers < 1:
            raise PoolError(f"a pool needs at least one worker, got {spec.workers}")
        place = spec.placement
        connect(place.address)
        self._actor_cls = ray.remote(
            num_cpus=place.cpus_per_worker,
            num_gpus=place.gpus_per_worker,
            max_restarts=0,
            scheduling_strategy=SCHEDULING[place.strategy],
        )(RolloutWorker)
        threads = max(1, int(place.cpus_per_worker))
        options = dict(spec.options) | ({"colocated": False} if spec.kind == "vllm" else {})
        self._args = (spec.kind, model_dir, seed, options, threads)
        self._weights: ray.ObjectRef | None = None  # the current weights, for new actors
        self.version = 0
        self.restarts = 0
        self.in_flight = 0  # submitted rollouts not yet gathered
        self._updates: list[tuple[int, Any, ray.ObjectRef]] = []  # (worker, actor, task)
        self.actors = [self._actor_cls.remote(*self._args) for _ in range(spec.workers)]
        self._leftovers = _started(lambda: ray.get([a.leftovers.remote() for a in self.actors]))
        self._native = self._nccl_sender(options.get("tensor_parallel_size", 1))

    def _nccl_sender(self, ranks_per_engine: int) -> Any:
        """vLLM's NCCL transfer to every actor where their engines took that route and this
        process has a GPU to send from; else None (updates go through the object store)."""
        routes = set(ray.get([a.route.remote() for a in self.actors]))
        if routes != {"nccl"} or not torch.cuda.is_available():
            return None
        from rollout.native_transfer import NCCLSender, RPCClient

        log.info("rollout workers: weight updates by NCCL from this process")
        clients = [RPCClient(partial(_call, actor)) for actor in self.actors]
        return NCCLSender(clients, ranks_per_engine)

    def generate(
        self, prompt_token_ids: list[list[int]], sampling: SamplingParams
    ) -> list[list[Completion]]:
        """Per prompt, `sampling.n` completions, in the order of the prompts."""
        return self.submit(prompt_token_ids, sampling).result()

    def submit(self, prompt_token_ids: list[list[int]], sampling: SamplingParams) -> Rollout:
        """Start sampling and return at once; `.result()` gathers it (what `generate` returns).
        Weights updated meanwhile reach the actors after this sampling, in call order."""
        self._settle_updates()
        return Rollout(self, prompt_token_ids, sampling)

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Send the weights to every actor: stored once in Ray's object store, read by each.
        Waits until every actor has them, unless a submitted rollout is still running: then
        they queue behind it and are checked at the next `submit`. On the NCCL route the
        weights go GPU to GPU and wait for a running rollout to end."""
        if self._native is not None:
            self._settle_updates()
            self._native.send(named_tensors)
            self.version += 1
            return
        self._weights = ray.put([(name, t.detach().cpu()) for name, t in named_tensors])
        self.version += 1
        self._updates += [
            (w, a, a.update_weights.remote(self._weights, self.version))
            for w, a in enumerate(self.actors)
        ]
        if not self.in_flight:
            self._settle_updates()

    def sleep(self) -> None:
        """Every actor's engine frees its GPU memory (queued behind a running rollout)."""
        self._on_every_actor("sleep")

    def wake_up(self, tags: list[str] | None = None) -> None:
        """Every actor's engine takes its memory back."""
        self._on_every_actor("wake_up", tags)

    def _on_every_actor(self, method: str, *args: Any) -> None:
        """`method` on every actor, waited for; an actor found dead is replaced (with the
        current weights) and the new one is asked in its place."""
        calls = [(w, a, getattr(a, method).remote(*args)) for w, a in enumerate(self.actors)]
        for worker, actor, ref in calls:
            try:
                ray.get(ref)
            except ACTOR_GONE as err:
                if self.actors[worker] is actor:
                    self._replace(worker, err)
                ray.get(getattr(self.actors[worker], method).remote(*args))

    def _settle_updates(self) -> None:
        """Wait for the queued updates; replace an actor that died taking one (once)."""
        updates, self._updates = self._updates, []
        for worker, actor, ref in updates:
            try:
                ray.get(ref)
            except ACTOR_GONE as err:
                if self.actors[worker] is actor:
                    self._replace(worker, err)  # the new actor starts from the current weights

    @property
    def size(self) -> int:
        return len(self.actors)

    def placement(self) -> list[dict[str, object]]:
        """Where each worker's actor runs: its node's id and IP."""
        return [
            {"worker": w, "node": node, "ip": ip} for w, (_, node, ip) in enumerate(self._leftovers)
        ]

    def close(self) -> None:
        """Stop every actor and remove what their engines leave behind."""
        if self._native is not None:
            self._native.close()
        for actor in self.actors:
            ray.kill(actor)
        for worker in range(self.size):
            self._clean(worker)

    def _submit(
        self, worker: int, shard: list[int], prompts: list[list[int]], sampling: SamplingParams
    ) -> tuple[ray.ObjectRef, Any]:
        """The task sampling `shard` on `worker`, and the actor it runs on."""
        # Distinct per-request seeds across shards: vLLM seeds request i of a call with seed + i.
        if sampling.seed is not None:
            sampling = replace(sampling, seed=sampling.seed + worker * len(prompts))
        actor = self.actors[worker]
        return actor.generate.remote([prompts[i] for i in shard], sampling), actor

    def _replace(self, worker: int, err: Exception) -> None:
        """A new actor in place of a dead one, holding the current weights."""
        if self._native is not None:  # its weights exist only on the learner's GPU
            raise PoolError(
                f"rollout worker {worker} died ({err}); on the NCCL weight route a new worker "
                "cannot be given the current weights: resume the run from its last checkpoint"
            )
        self.restarts += 1
        _, node, ip = self._leftovers[worker]
        log.warning(
            "rollout worker %d died on node %s (%s): %s; re-placing it on the nodes that remain "
            "(restart %d)", worker, node, ip, first_line(err), self.restarts,
        )  # fmt: skip
        ray.kill(self.actors[worker])
        self._clean(worker)
        for attempt in range(1, PLACE_TRIES + 1):
            actor = self.actors[worker] = self._actor_cls.remote(*self._args)
            try:
                if self._weights is not None:
                    ray.get(actor.update_weights.remote(self._weights, self.version))
                self._leftovers[worker] = ray.get(actor.leftovers.remote())
                break
            except ACTOR_GONE as err:
                # Ray notices a lost node only after missed heartbeats, and may place the new
                # actor there meanwhile: place it again, unless it failed starting (a bug).
                if getattr(err, "actor_init_failed", True) or attempt == PLACE_TRIES:
                    raise PoolError(f"a rollout worker failed to start: {err}") from err
                log.warning("rollout worker %d: %s; placing it again", worker, first_line(err))
            except RayTaskError as err:
                raise PoolError(f"a rollout worker failed to start: {err}") from err
        log.warning("rollout worker %d now runs on node %s", worker, self._leftovers[worker][1])

    def _clean(self, worker: int) -> None:
        """Remove what a dead actor's engine left, when it ran on this node."""
        left, node, _ = self._leftovers[worker]
        if node == ray.get_runtime_context().get_node_id():
            leftovers.clean(left)


class Rollout:
    """A sampling call running on the pool's actors; `result()` gathers it in prompt order,
    replacing an actor that died (with the current weights) and sampling its prompts again."""

    def __init__(self, pool: RayPool, prompts: list[list[int]], sampling: SamplingParams):
        self.pool, self.prompts, self.sampling = pool, prompts, sampling
        costs = [len(p) + sampling.max_new_tokens for p in prompts]
        self.shards = dict(balance(costs, pool.size))
        self.pending = {}  # task -> (worker, the actor it runs on)
        for worker, shard in self.shards.items():
            ref, actor = pool._submit(worker, shard, prompts, sampling)
            self.pending[ref] = (worker, actor)
        pool.in_flight += 1

    def result(self) -> list[list[Completion]]:
        """Per prompt, `sampling.n` completions, in the order of the prompts."""
        try:
            return self._gather()
        finally:
            self.pool.in_flight -= 1

    def _gather(self) -> list[list[Completion]]:
        pool = self.pool
        results: list[list[Completion]] = [[] for _ in self.prompts]
        failed: set[int] = set()
        while self.pending:
            (ref,), _ = ray.wait(list(self.pending), num_returns=1)
            worker, actor = self.pending.pop(ref)
            shard = self.shards[worker]
            try:
                groups = ray.get(ref)
            except ACTOR_GONE as err:
                if worker in failed:
                    raise PoolError(
                        f"rollout worker {worker} died twice in one call on the same "
                        f"{len(shard)} prompts; last error: {err}"
                    ) from err
                failed.add(worker)
                if pool.actors[worker] is actor:  # else it was replaced taking an update
                    pool._replace(worker, err)
                ref, actor = pool._submit(worker, shard, self.prompts, self.sampling)
                self.pending[ref] = (worker, actor)
                continue
            for index, group in zip(shard, groups, strict=True):
                results[index] = group
        return results


def _call(actor: Any, method: str, *args: Any) -> None:
    """`method` of vLLM's weight-transfer protocol on `actor`'s engine, waited for."""
    ray.get(actor.transfer_rpc.remote(method, *args))


def first_line(err: Exception) -> str:
    """An error's first line (Ray's run to pages), or its type's name if it says nothing."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _started(wait: Callable[[], T]) -> T:
    """`wait()`, with an actor that failed to start (or died starting) as a PoolError."""
    try:
        return wait()
    except (*ACTOR_GONE, RayTaskError) as err:
        raise PoolError(f"a rollout worker failed to start: {err}") from err


def _exit_when_any_dies(processes: list[tuple[int, float]], every_s: float = 1.0) -> None:
    """Exit this process (so that the pool replaces it) once a watched process has ended."""
    while True:
        time.sleep(every_s)
        if not all(leftovers.running(pid, created) for pid, created in processes):
            sys.stderr.write("rollout worker: an engine process died, exiting\n")
            os._exit(1)


def balance(costs: list[int], workers: int) -> list[tuple[int, list[int]]]:
    """Prompt indices per worker (sorted), the costliest prompt first to the least loaded
    worker; workers left without a prompt are omitted."""
    loads = [0] * workers
    shards: list[list[int]] = [[] for _ in range(workers)]
    for index in sorted(range(len(costs)), key=lambda i: -costs[i]):
        worker = loads.index(min(loads))
        shards[worker].append(index)
        loads[worker] += costs[index]
    return [(w, sorted(shard)) for w, shard in enumerate(shards) if shard]
