"""Native weight transfer (CUDA only): the learner's weights into vLLM through vLLM's own
weight-transfer API (`vllm/distributed/weight_transfer/`), in buckets, never one call per tensor.

CUDA IPC for an engine in this process (its worker maps the learner's packed buffer on the same
GPU: no copy through host memory); NCCL for engines in Ray workers on other GPUs (one group
per engine, opened once when the pool starts). Both drive vLLM's four-call protocol
(`VLLMWeightSyncClient` in base.py: init once, then start / update per bucket / finish). Every
line here needs CUDA and so is not run by the CPU tests: `benchmarks/gpu_check.py` runs each.
Imported only where vLLM is installed (by the engine and the pool, on those routes).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch.multiprocessing.reductions import reduce_tensor
from vllm.distributed.weight_transfer import WeightTransferTrainerFactory
from vllm.distributed.weight_transfer.base import ParamMeta, WeightSource
from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerInitInfo

from rollout.buckets import BUCKET_BYTES, describe, once_per_storage, pack, plan_buckets

Named = Iterable[tuple[str, torch.Tensor]]


class IPCSender:
    """Colocated engine: each bucket is packed into one staging buffer on the learner's GPU and
    shared with vLLM's worker as one CUDA IPC handle (ipc_engine.py, packed mode)."""

    def __init__(self, client: Any, bucket_bytes: int = BUCKET_BYTES):
        self.client, self.bucket_bytes = client, bucket_bytes
        # The worker decodes packed buffers from this init on (IPCWeightTransferInitInfo).
        client.init_weight_transfer_engine({"packed": True})
        self.gpu = str(torch.cuda.get_device_properties(torch.cuda.current_device()).uuid)

    def send(self, named_tensors: Named) -> int:
        """Send one update; returns the number of buckets (= update_weights calls)."""
        stream = list(once_per_storage(named_tensors))
        tensors = dict(stream)
        buckets = plan_buckets(describe(stream), self.bucket_bytes)
        # One staging buffer, exported once, reused by every bucket: the worker clones what it
        # reads before update_weights returns (packed_tensor.py, packed_ipc_consumer).
        size, device = max(b.nbytes for b in buckets), stream[0][1].device
        staging = torch.empty(size, dtype=torch.uint8, device=device)
        handle = {self.gpu: reduce_tensor(staging)[1]}
        self.client.start_weight_update()
        for bucket in buckets:
            pack(bucket, [tensors[n] for n in bucket.names], out=staging[: bucket.nbytes])
            torch.cuda.current_stream().synchronize()  # the worker reads from another process
            self.client.update_weights(
                {
                    "names": bucket.names,
                    "dtype_names": bucket.dtype_names,
                    "shapes": bucket.shapes,
                    "ipc_handles": handle,
                    "tensor_sizes": bucket.sizes,
                }
            )
        self.client.finish_weight_update()
        del staging
        torch.cuda.ipc_collect()  # let the exported staging buffer go
        return len(buckets)


class NCCLSender:
    """Engines in Ray workers on other GPUs: vLLM's packed NCCL broadcast (nccl_engine.py,
    NCCLTrainerWeightTransferEngine), one group per engine with this process as rank 0. Its
    bucket boundaries are `plan_buckets`' (the receiver derives them from the names and shapes)."""

    def __init__(self, clients: list[Any], ranks_per_engine: int, bucket_bytes: int = BUCKET_BYTES):
        self.bucket_bytes, self.source = bucket_bytes, _StreamSource()
        self.engines = [
            WeightTransferTrainerFactory.trainer_init(
                NCCLTrainerInitInfo(
                    rank=0,
                    master_address=_this_ip(),
                    master_port=_free_port(),
                    world_size=1 + ranks_per_engine,  # this process + the engine's workers
                    packed=True,
                    packed_buffer_size_bytes=bucket_bytes,
                ),
                client=client,
                source=self.source,
            )
            for client in clients
        ]

    def send(self, named_tensors: Named) -> int:
        """Broadcast one update to every engine; returns the number of buckets per engine."""
        self.source.pairs = list(once_per_storage(named_tensors))
        for engine in self.engines:
            engine.send_weights()  # start, update (concurrent with the broadcast), finish
        return len(plan_buckets(describe(self.source.pairs), self.bucket_bytes))

    def close(self) -> None:
        for engine in self.engines:
            engine.shutdown()


class _StreamSource(WeightSource):
    """vLLM's `WeightSource` (base.py) over the update being sent: metadata and iteration agree
    because both read the same list."""

    pairs: list[tuple[str, torch.Tensor]] = []

    def metadata(self) -> list[ParamMeta]:
        return [ParamMeta(m.name, m.dtype, m.shape) for m in describe(self.pairs)]

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        return iter(self.pairs)


class RPCClient:
    """vLLM's `VLLMWeightSyncClient` protocol over a function that runs a worker method by
    name: an in-process `vllm.LLM`'s `collective_rpc`, or a Ray actor's (gpu_worker.py holds
    the four methods the calls reach)."""

    def __init__(self, call: Callable[..., Any]):
        self.call = call

    def init_weight_transfer_engine(self, init_info: dict) -> None:
        self.call("init_weight_transfer_engine", init_info)

    def start_weight_update(self) -> None:
        self.call("start_weight_update")

    def update_weights(self, update_info: dict | list[dict]) -> None:
        self.call("update_weights", update_info)

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self.call("finish_weight_update")


def _this_ip() -> str:
    import ray

    return ray.util.get_node_ip_address() if ray.is_initialized() else "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]
