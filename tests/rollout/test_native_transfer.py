"""The native senders' CPU-checkable parts: the protocol calls and the payloads vLLM's own
receiver parses (CUDA's handles and streams stood in for; the GPU run is gpu_check.py's)."""

import pytest
import torch

pytest.importorskip("vllm.distributed.weight_transfer", reason="needs vLLM's transfer API")

from vllm.distributed.weight_transfer.ipc_engine import IPCWeightTransferUpdateInfo  # noqa: E402
from vllm.distributed.weight_transfer.packed_tensor import unpack_tensor  # noqa: E402

from rollout import native_transfer  # noqa: E402
from rollout.native_transfer import IPCSender, RPCClient, _StreamSource  # noqa: E402


class Recorder:
    """A client that records each protocol call and, per bucket, what the staging buffer
    holds unpacked as vLLM's receiver unpacks it."""

    def __init__(self, staging: list):
        self.calls, self.staging, self.received = [], staging, []

    def init_weight_transfer_engine(self, info):
        self.calls.append(("init", info))

    def start_weight_update(self):
        self.calls.append(("start",))

    def update_weights(self, info):
        self.calls.append(("update",))
        parsed = IPCWeightTransferUpdateInfo(**info)  # vLLM's own validation of the payload
        dtypes = [getattr(torch, d) for d in parsed.dtype_names]
        buffer = self.staging[0][: sum(parsed.tensor_sizes)].clone()
        self.received += unpack_tensor(
            buffer, parsed.names, parsed.shapes, dtypes, parsed.tensor_sizes
        )

    def finish_weight_update(self, weight_version=None):
        self.calls.append(("finish",))


@pytest.fixture
def sender(monkeypatch):
    staging = []
    monkeypatch.setattr(native_transfer, "reduce_tensor", lambda t: staging.append(t) or (0, ()))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    props = type("Props", (), {"uuid": "GPU-0"})
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda _: props)
    stream = type("Stream", (), {"synchronize": lambda self: None})
    monkeypatch.setattr(torch.cuda, "current_stream", stream)
    monkeypatch.setattr(torch.cuda, "ipc_collect", lambda: None)
    return IPCSender(Recorder(staging), bucket_bytes=100)


def test_ipc_sends_packed_buckets_between_start_and_finish_once_per_bucket(sender):
    embed = torch.randn(8, 4)
    stream = [("embed", embed), ("a", torch.randn(4, 4)), ("b", torch.randn(3)), ("head", embed)]
    assert sender.send(stream) == 2  # embed (128 bytes > 100) alone, then a + b (76 bytes)
    assert sender.client.calls == [
        ("init", {"packed": True}),
        ("start",),
        ("update",),
        ("update",),
        ("finish",),
    ]
    got = dict(sender.client.received)
    assert list(got) == ["embed", "a", "b"]  # the tied head sent once, as the embedding
    for name, tensor in stream[:3]:
        assert torch.equal(got[name], tensor), name


def test_the_stream_source_tells_vllm_what_it_will_yield():
    source = _StreamSource()
    source.pairs = [("w", torch.zeros(2, 3, dtype=torch.bfloat16))]
    (meta,) = source.metadata()
    assert (meta.name, meta.dtype, meta.shape) == ("w", torch.bfloat16, (2, 3))
    assert [n for n, _ in source] == ["w"]


def test_the_rpc_client_names_the_worker_methods_vllm_has():
    calls = []
    client = RPCClient(lambda method, *args: calls.append((method, *args)))
    client.init_weight_transfer_engine({"packed": True})
    client.start_weight_update()
    client.update_weights({"names": []})
    client.finish_weight_update("v1")
    from vllm.v1.worker.gpu_worker import Worker

    assert [c[0] for c in calls] == [
        "init_weight_transfer_engine",
        "start_weight_update",
        "update_weights",
        "finish_weight_update",
    ]
    assert all(hasattr(Worker, c[0]) for c in calls)
