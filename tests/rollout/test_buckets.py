import pytest
import torch

from rollout.buckets import TensorMeta, describe, once_per_storage, pack, plan_buckets


def _stream():
    torch.manual_seed(0)
    embed = torch.randn(10, 4)
    return [
        ("embed.weight", embed),
        ("layers.0.q.weight", torch.randn(4, 4)),
        ("layers.0.norm.weight", torch.randn(4).to(torch.bfloat16)),
        ("layers.1.q.weight", torch.randn(4, 4)),
        ("lm_head.weight", embed),  # tied: the embedding itself
    ]


def test_a_tied_tensor_is_sent_once_under_its_first_name():
    assert [n for n, _ in once_per_storage(_stream())] == [
        "embed.weight",
        "layers.0.q.weight",
        "layers.0.norm.weight",
        "layers.1.q.weight",
    ]


def test_views_of_one_storage_at_different_offsets_are_both_sent():
    base = torch.randn(8)
    assert len(list(once_per_storage([("a", base[:4]), ("b", base[4:])]))) == 2


def test_a_bucket_closes_once_it_holds_more_than_the_bound():
    metas = [TensorMeta(f"w{i}", torch.float32, (4,)) for i in range(5)]  # 16 bytes each
    assert [b.names for b in plan_buckets(metas, max_bytes=40)] == [
        ["w0", "w1", "w2"],
        ["w3", "w4"],
    ]


def test_a_tensor_larger_than_the_bound_travels_alone():
    metas = [TensorMeta("big", torch.float32, (100,)), TensorMeta("small", torch.float32, (1,))]
    assert [b.names for b in plan_buckets(metas, max_bytes=64)] == [["big"], ["small"]]


def test_the_whole_model_in_one_bucket_is_one_call_not_one_per_parameter():
    metas = describe(once_per_storage(_stream()))
    assert len(plan_buckets(metas)) == 1


def test_a_bucket_carries_names_dtypes_shapes_and_offsets():
    (bucket,) = plan_buckets(describe(once_per_storage(_stream())))
    assert bucket.dtype_names == ["float32", "float32", "bfloat16", "float32"]
    assert bucket.shapes == [[10, 4], [4, 4], [4], [4, 4]]
    assert bucket.sizes == [160, 64, 8, 64]
    assert bucket.offsets == [0, 160, 224, 232]
    assert bucket.nbytes == 296


def test_a_nonpositive_bound_is_refused():
    with pytest.raises(ValueError, match="positive"):
        plan_buckets([], max_bytes=0)


def test_pack_refuses_tensors_that_do_not_match_the_bucket():
    (bucket,) = plan_buckets([TensorMeta("w", torch.float32, (4,))])
    with pytest.raises(ValueError, match="do not match"):
        pack(bucket, [torch.zeros(5)])


def test_vllms_receiver_unpacks_a_packed_bucket_to_the_same_tensors():
    packed_tensor = pytest.importorskip("vllm.distributed.weight_transfer.packed_tensor")
    stream = list(once_per_storage(_stream()))
    (bucket,) = plan_buckets(describe(stream))
    buffer = pack(bucket, [t for _, t in stream])
    dtypes = [t.dtype for _, t in stream]
    unpacked = packed_tensor.unpack_tensor(
        buffer, bucket.names, bucket.shapes, dtypes, bucket.sizes
    )
    for (name, sent), (got_name, got) in zip(stream, unpacked, strict=True):
        assert got_name == name and torch.equal(got, sent)


@pytest.mark.parametrize("max_bytes", [1, 40, 100, 300, 1 << 30])
def test_bucket_boundaries_are_those_vllms_packer_makes(max_bytes):
    packed_tensor = pytest.importorskip("vllm.distributed.weight_transfer.packed_tensor")
    stream = [(f"w{i}", torch.randn(i + 1, 3)) for i in range(8)]
    iterator, theirs = iter(stream), []
    while chunk := packed_tensor.pack_tensors(iterator, lambda item: item[1], max_bytes):
        theirs.append(chunk.names)
    assert [b.names for b in plan_buckets(describe(stream), max_bytes)] == theirs


def test_pack_writes_into_a_reused_buffer():
    stream = list(once_per_storage(_stream()))
    (bucket,) = plan_buckets(describe(stream))
    staging = torch.zeros(bucket.nbytes + 8, dtype=torch.uint8)
    pack(bucket, [t for _, t in stream], out=staging[: bucket.nbytes])
    assert torch.equal(staging[: bucket.nbytes], pack(bucket, [t for _, t in stream]))
    assert staging[bucket.nbytes :].eq(0).all()
