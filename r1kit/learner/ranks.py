"""A learner of N ranks: N Ray actors forming one torch.distributed group (DDP or FSDP2),
behind the Learner's interface (`step`, `named_weights`, `state_dict`, `set_lr`).

The actors are placed with a Ray placement group, one bundle of `ray.cpus_per_rank` /
`ray.gpus_per_rank` each, packed on few nodes or spread across them (`ray.placement`). A batch
is split across ranks whole prompt groups at a time (the shared-prefix forward still encodes a
prompt once), balancing tokens; every rank divides by the batch-wide normalisers, so the ranks'
gradients add up to one process's. A rank lost with its node ends the run (`NodeLost`): its
state cannot be rebuilt from the others, the last checkpoint can.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import ray
import torch
from ray.exceptions import RayTaskError
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from r1kit.errors import NodeLost
from r1kit.learner.batch import Batch
from r1kit.learner.distributed import RankLearner, init_group
from r1kit.learner.normalisers import Normalisers
from r1kit.learner.objective import Objective
from r1kit.learner.policy import load_policy, with_lora
from r1kit.learner.stats import StepStats
from r1kit.models import model_dir
from r1kit.recipe import Recipe
from rollout.ray_pool import ACTOR_GONE, balance, connect, first_line

BUCKET_BYTES = 256 << 20  # weights cross from rank 0 to the driver in buckets of this size


class RankWorker:
    """The actor: one rank of the group; `build` gives it a learner (again, for each recipe)."""

    def __init__(self, rank: int, world_size: int, threads: int):
        torch.set_num_threads(threads)
        self.rank, self.world_size = rank, world_size
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.learner: RankLearner | None = None
        self._weights: Iterator[tuple[str, torch.Tensor]] | None = None

    def address(self) -> str:
        """host:port where rank 0 listens for the others (a port free now)."""
        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return f"{ray.util.get_node_ip_address()}:{port}"

    def where(self) -> tuple[str, str]:
        """The node (id, IP) this rank runs on."""
        return ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()

    def join(self, address: str) -> None:
        self.mesh = init_group(self.rank, self.world_size, address, self.device)

    def build(self, recipe: Recipe) -> None:
        torch.manual_seed(recipe.seed)  # every rank (and world_size 1) starts from one model
        if recipe.learner.strategy == "fsdp" and recipe.model.dtype == "auto":
            # float32 master weights; FSDP2 computes in bf16 on CUDA (grpo/distributed.shard)
            recipe = recipe.model_copy(
                update={"model": recipe.model.model_copy(update={"dtype": "float32"})}
            )
        policy, _ = load_policy(recipe, self.device)
        cfg = recipe.learner
        self.learner = RankLearner(
            policy, cfg, recipe.train.steps, recipe.rollout.temperature, cfg.strategy, self.mesh
        )

    def step(
        self, batch: Batch, objective: Objective, norm: Normalisers
    ) -> tuple[dict[str, float], dict[str, float], list[torch.Tensor | None] | None]:
        """This rank's metrics, its summed statistics, and its batch's old log-probs after the
        step (what GRPO's first pass of several stores there; None if none)."""
        self._weights = None  # a weight stream left unfinished is stale now
        metrics = self.learner.step(batch, objective, norm)
        return metrics, self.learner.last_stats.totals, batch.old_logprobs

    def next_bucket(self, max_bytes: int) -> list[tuple[str, torch.Tensor]] | None:
        """The next tensors of the weight stream (rank 0; other ranks take part in the
        gathers and return None); an empty list once the stream is over."""
        if self._weights is None:
            self._weights = self.learner.named_weights()
        bucket, size = [], 0
        for name, tensor in self._weights:
            bucket.append((name, tensor.detach().cpu() if self.rank == 0 else None))
            size += tensor.numel() * tensor.element_size()
            if size >= max_bytes:
                break
        if not bucket:
            self._weights = None
        return bucket if self.rank == 0 else None

    def call(self, method: str, *args):
        """Any other Learner method, on this rank (the group calls it on every rank)."""
        return getattr(self.learner, method)(*args)


@dataclass
class Ranks:
    """Rank actors joined into one process group, and the placement group that holds them."""

    actors: list[ray.actor.ActorHandle]
    placement: PlacementGroup
    nodes: list[tuple[str, str]]  # each rank's node: id, IP

    def stop(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        remove_placement_group(self.placement)


def start_ranks(recipe: Recipe) -> Ranks:
    """`learner.world_size` rank actors, placed together, joined into one process group."""
    connect(recipe.ray.address)
    size, cfg = recipe.learner.world_size, recipe.ray
    threads = max(1, int(cfg.cpus_per_rank))
    bundles = [{"CPU": cfg.cpus_per_rank, "GPU": cfg.gpus_per_rank}] * size
    placement = placement_group(bundles, strategy=cfg.placement.upper())  # PACK or SPREAD
    ray.get(placement.ready())
    actor = ray.remote(num_cpus=cfg.cpus_per_rank, num_gpus=cfg.gpus_per_rank)(RankWorker)
    actors = [
        actor.options(
            scheduling_strategy=PlacementGroupSchedulingStrategy(placement, i),
            runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}},
        ).remote(i, size, threads)
        for i in range(size)
    ]
    address = ray.get(actors[0].address.remote())
    ray.get([a.join.remote(address) for a in actors])
    return Ranks(actors, placement, ray.get([a.where.remote() for a in actors]))


class LearnerGroup:
    """The Learner's interface over rank actors that each hold one rank's RankLearner."""

    def __init__(self, ranks: Ranks, recipe: Recipe):
        self.group, self.ranks = ranks, ranks.actors
        self.cfg = recipe.learner
        self.is_lora = recipe.model.lora is not None
        self._gather([rank.build.remote(recipe) for rank in self.ranks])
        self.model = _shell(recipe)

    def step(self, batch: Batch, objective: Objective, norm: Normalisers) -> dict[str, float]:
        """One optimizer step of `objective` over `batch`, split across the ranks (each gets a
        copy of the objective); metrics as one process's."""
        shards = split_batch(batch, len(self.ranks))
        results = self._gather(
            [
                rank.step.remote(subset(batch, rows), objective, norm)
                for rank, rows in zip(self.ranks, shards, strict=True)
            ]
        )
        if any(old is not None for _, _, old in results):  # the ranks' batches, gathered
            batch.old_logprobs = [None] * len(batch)
            for rows, (_, _, old) in zip(shards, results, strict=True):
                for i, logprobs in zip(rows, old or [], strict=True):
                    batch.old_logprobs[i] = logprobs
        return merge_metrics(results, [len(rows) for rows in shards], objective)

    def token_values(self, batch: Batch, reference: bool = False) -> dict[str, list[torch.Tensor]]:
        """`Learner.token_values` of the whole batch, each rank running its shard."""
        shards = split_batch(batch, len(self.ranks))
        results = self._gather(
            [
                rank.call.remote("token_values", subset(batch, rows), reference)
                for rank, rows in zip(self.ranks, shards, strict=True)
            ]
        )
        values = {key: [torch.zeros(0)] * len(batch) for key in results[0]}
        for rows, found in zip(shards, results, strict=True):
            for key, per_row in found.items():
                for i, tensor in zip(rows, per_row, strict=True):
                    values[key][i] = tensor
        return values

    def named_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """The full weights, streamed from rank 0 bucket by bucket (every rank gathers)."""
        while True:
            buckets = self._gather([rank.next_bucket.remote(BUCKET_BYTES) for rank in self.ranks])
            if not buckets[0]:
                return
            yield from buckets[0]

    def set_lr(self, lr: float) -> None:
        self._on_every_rank("set_lr", lr)

    def state_dict(self) -> dict:
        """Optimizer and schedule, whole and keyed as one process keys them."""
        return self._on_every_rank("state_dict")[0]

    def load_state_dict(self, state: dict) -> None:
        self._on_every_rank("load_state_dict", ray.put(state))

    def adapter_state(self) -> dict[str, torch.Tensor]:
        return self._on_every_rank("adapter_state")[0]

    def load_weights(self, weights: dict[str, torch.Tensor]):
        return self._on_every_rank("load_weights", ray.put(weights))[0]

    def _on_every_rank(self, method: str, *args) -> list:
        return self._gather([rank.call.remote(method, *args) for rank in self.ranks])

    def placement(self) -> list[dict[str, object]]:
        """Where each rank runs: its node's id and IP."""
        nodes = enumerate(self.group.nodes)
        return [{"rank": rank, "node": node, "ip": ip} for rank, (node, ip) in nodes]

    def _gather(self, refs: list[ray.ObjectRef]) -> list:
        """The ranks' results, as `ray.get`; a rank whose actor is gone (its node lost) is a
        NodeLost naming it, also when another rank's task failed first for want of it."""
        pending, failed = list(refs), None
        while pending:
            (ready,), pending = ray.wait(pending, num_returns=1)
            try:
                ray.get(ready)
            except ACTOR_GONE as err:
                raise self._lost(refs.index(ready), err) from None
            except RayTaskError as err:  # e.g. a collective cut by the lost rank: wait for it
                failed = failed or err
        if failed is not None:
            raise failed
        return ray.get(refs)

    def _lost(self, rank: int, err: Exception) -> NodeLost:
        node, ip = self.group.nodes[rank]
        return NodeLost(f"learner rank {rank} on node {node} ({ip}) was lost: {first_line(err)}")

    def close(self) -> None:
        self.group.stop()


def _shell(recipe: Recipe) -> torch.nn.Module:
    """The policy's architecture without weights (on the meta device), for the config and
    names that checkpoints write beside the weights the ranks stream."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir(recipe.model.name))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return with_lora(model, recipe.model.lora) if recipe.model.lora is not None else model


def split_batch(batch: Batch, world_size: int) -> list[list[int]]:
    """Row indices per rank: whole prompt groups (consecutive rows sharing a prompt),
    balanced by the tokens a rank runs; a rank may get none."""
    groups: list[list[int]] = []
    for i in range(len(batch)):
        if groups and batch.prompt_ids[groups[-1][0]] == batch.prompt_ids[i]:
            groups[-1].append(i)
        else:
            groups.append([i])
    costs = [
        len(batch.prompt_ids[g[0]]) + sum(len(batch.completion_ids[i]) for i in g) for g in groups
    ]
    shards = [[] for _ in range(world_size)]
    for rank, picked in balance(costs, world_size):
        shards[rank] = [i for g in picked for i in groups[g]]
    return shards


def subset(batch: Batch, rows: list[int]) -> Batch:
    """The sequences `rows` of `batch`, as a batch of their own."""
    old = batch.old_logprobs
    return Batch(
        prompt_ids=[batch.prompt_ids[i] for i in rows],
        completion_ids=[batch.completion_ids[i] for i in rows],
        rollout_logprobs=[batch.rollout_logprobs[i] for i in rows],
        advantages=batch.advantages[rows],
        loss_mask=[batch.loss_mask[i] for i in rows],
        old_logprobs=None if old is None else [old[i] for i in rows],
        selected=None if batch.selected is None else [batch.selected[i] for i in rows],
        model_tokens=None if batch.model_tokens is None else [batch.model_tokens[i] for i in rows],
    )


def merge_metrics(
    results: list[tuple[dict[str, float], dict[str, float], object]],
    sizes: list[int],
    objective: Objective,
) -> dict[str, float]:
    """One step's metrics from the ranks' summed statistics; the gradient norm and the
    learning rate are the same on every rank."""
    first = results[0][0]
    stats = StepStats()
    for _, totals, _ in results:
        stats.add(totals)
    skipped = sum(m["skipped_frac"] * n for (m, _, _), n in zip(results, sizes, strict=True))
    return stats.metrics(objective, first["grad_norm"], first["lr"], skipped / max(sum(sizes), 1))
