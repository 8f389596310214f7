"""Weight shards in shared memory: what is written is what is read; nothing outlives its use."""

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from rollout.weights import PREFIX, remove_stale, shared_weights_dir, write_shards


def _read_all(directory):
    tensors = {}
    for path in sorted(directory.glob("*.safetensors")):
        tensors |= load_file(path)
    return tensors


def test_written_shards_hold_every_tensor_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr("rollout.weights.SHARD_BYTES", 64)  # several shards
    sent = {f"layer.{i}.weight": torch.randn(4, 4) for i in range(5)}
    assert write_shards(sent.items(), tmp_path) == 5
    assert len(list(tmp_path.glob("*.safetensors"))) == 5
    read = _read_all(tmp_path)
    assert read.keys() == sent.keys()
    assert all(torch.equal(read[k], sent[k]) for k in sent)


def test_tied_tensors_sharing_storage_are_written(tmp_path):
    shared = torch.randn(8, 4)
    write_shards([("embed.weight", shared), ("lm_head.weight", shared)], tmp_path)
    read = _read_all(tmp_path)
    assert torch.equal(read["embed.weight"], read["lm_head.weight"])


def test_non_contiguous_tensors_are_written_as_values(tmp_path):
    t = torch.randn(4, 6)
    write_shards([("w", t.T)], tmp_path)
    assert torch.equal(_read_all(tmp_path)["w"], t.T)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [([], "at least one"), ([("w", torch.ones(1)), ("w", torch.ones(1))], "sent twice")],
)
def test_bad_updates_are_refused(tmp_path, pairs, message):
    with pytest.raises(ValueError, match=message):
        write_shards(pairs, tmp_path)


def test_the_directory_is_removed_after_use_even_on_error():
    with pytest.raises(RuntimeError), shared_weights_dir([("w", torch.ones(2))]) as directory:
        assert (directory / "model-00000.safetensors").is_file()
        raise RuntimeError("the engine failed to load")
    assert not directory.exists()


def test_remove_stale_removes_dead_processes_dirs_only(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stale = tmp_path / f"{PREFIX}{dead}-abc"
    live = tmp_path / f"{PREFIX}{os.getpid()}-def"
    other = tmp_path / "unrelated-123"
    for d in (stale, live, other):
        d.mkdir()
    assert remove_stale(tmp_path) == [stale]
    assert live.exists() and other.exists() and not stale.exists()
