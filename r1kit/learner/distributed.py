"""One rank of a data-parallel learner: a Learner whose model is wrapped by DDP or FSDP2.

Each rank's loss is its share of the batch loss (the batch-wide `Normalisers`), so the
gradient wanted is the SUM over ranks: FSDP2 is told to divide by 1, DDP's mean is scaled
back by the world size. Every rank runs the same number of forward/backward passes (FSDP2
gathers parameters in each, DDP all-reduces in each backward): a rank with fewer
micro-batches, or none, runs idle ones of zero loss.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

from r1kit.choices import Strategy
from r1kit.learner.batch import Batch, MicroBatch
from r1kit.learner.core import Learner
from r1kit.recipe import LearnerConfig


def init_group(rank: int, world_size: int, address: str, device_type: str) -> DeviceMesh:
    """Join the process group at `address` (host:port of rank 0): NCCL on CUDA, gloo on CPU."""
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(
        backend, init_method=f"tcp://{address}", rank=rank, world_size=world_size
    )
    return init_device_mesh(device_type, (world_size,))


def shard(model: nn.Module, mesh: DeviceMesh) -> nn.Module:
    """FSDP2 in place: each decoder layer, then the root (embeddings, final norm, head).
    On CUDA: bf16 parameters in compute, fp32 gradient reduction; on CPU all fp32."""
    policy = MixedPrecisionPolicy()
    if mesh.device_type == "cuda":
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for layer in model.get_decoder().layers:
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            # A plain SUM reduction: gloo has no PREMUL_SUM, and its AVG has summed (#162338).
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)
    return model


class RankLearner(Learner):
    """A Learner that is one rank of `mesh`; its model is sharded (fsdp) or replicated (ddp)."""

    def __init__(
        self,
        model: nn.Module,
        cfg: LearnerConfig,
        total_steps: int,
        temperature: float,
        strategy: Strategy,
        mesh: DeviceMesh,
    ):
        self.strategy, self.world_size = strategy, mesh.size()
        self.ddp: DistributedDataParallel | None = None
        self._reference: nn.Module | None = None
        reference = cfg.beta > 0
        if reference and not hasattr(model, "disable_adapter"):
            self._reference = super().frozen_copy(model)
        if strategy == "fsdp":
            shard(model, mesh)
            if self._reference is not None:
                shard(self._reference, mesh)
        else:
            self.ddp = DistributedDataParallel(model, process_group=mesh.get_group())
        super().__init__(model, cfg, cfg, total_steps, temperature, reference)

    def frozen_copy(self, model: nn.Module) -> nn.Module:
        return self._reference  # copied before wrapping, sharded like the policy

    def run_model(self, model: nn.Module, **inputs) -> object:
        return (self.ddp if self.ddp is not None and model is self.model else model)(**inputs)

    def micro_batches(self, batch: Batch, rows: list[int]) -> Iterator[MicroBatch]:
        own = list(super().micro_batches(batch, rows))
        count = torch.tensor(len(own), device=self.device)
        dist.all_reduce(count, op=dist.ReduceOp.MAX)
        return iter(own + [_idle_micro_batch() for _ in range(int(count) - len(own))])

    def optimizer_step(self) -> float:
        if self.ddp is not None:  # DDP averaged the ranks' gradients: make it their sum
            for p in self.params:
                if p.grad is not None:
                    p.grad.mul_(self.world_size)
        return super().optimizer_step()

    def named_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Full tensors, one at a time; sharded ones are gathered (every rank must iterate)."""
        for name, tensor in super().named_weights():
            yield name, _full(tensor)

    def adapter_state(self) -> dict[str, torch.Tensor]:
        return {
            n: _full(p).detach().cpu() for n, p in self.model.named_parameters() if p.requires_grad
        }

    def load_weights(self, weights: dict[str, torch.Tensor]):
        """Full tensors by name, each rank keeping its shard (torch's distributed state dict)."""
        options = StateDictOptions(full_state_dict=True, strict=False)
        _reshard(self.model)
        return set_model_state_dict(self.model, weights, options=options)

    def state_dict(self) -> dict:
        """The optimizer state gathered whole (on rank 0; {} elsewhere), keyed as one process
        keys it (by parameter index): a checkpoint resumes at any world size."""
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        full = get_optimizer_state_dict(self.model, self.optimizer, options=options)
        if not full:
            return {}
        index = {name: i for i, name in enumerate(self._trainable_names())}
        return {
            "optimizer": {
                "state": {index[name]: value for name, value in full["state"].items()},
                "param_groups": [
                    {**group, "params": [index[name] for name in group["params"]]}
                    for group in full["param_groups"]
                ],
            },
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        names = self._trainable_names()
        optimizer = state["optimizer"]
        by_name = {
            "state": {names[i]: value for i, value in optimizer["state"].items()},
            "param_groups": [
                {**group, "params": [names[i] for i in group["params"]]}
                for group in optimizer["param_groups"]
            ],
        }
        options = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(self.model, self.optimizer, by_name, options=options)
        self.scheduler.load_state_dict(state["scheduler"])

    def _trainable_names(self) -> list[str]:
        """Parameter names in the optimizer's order (the same on every rank and in one process)."""
        return [n for n, p in self.model.named_parameters() if p.requires_grad]


def _reshard(model: nn.Module) -> None:
    """Put every FSDP module back in its sharded state. FSDP2 leaves the root's parameters
    (embeddings, final norm, head) unsharded after a forward pass with no backward (a
    log-prob pass); loading full tensors into them then mixes plain tensors with DTensors."""
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def _full(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def _idle_micro_batch() -> MicroBatch:
    """One masked-out token: a forward and backward of zero loss, for no sequence."""
    idle = Batch([[0]], [[0]], [[0.0]], torch.zeros(1), loss_mask=[False])
    mb = next(idle.micro_batches(1))
    mb.rows = []  # no sequence of the batch: nothing to store or count
    return mb
