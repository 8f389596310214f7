import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rollout.adapters import AdapterSlot, write_adapter
from rollout.weights import remove_stale

CONFIG = {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}


def _adapter(value: float):
    return [
        ("base_model.model.layers.0.q_proj.lora_A.weight", torch.full((2, 4), value)),
        ("base_model.model.layers.0.q_proj.lora_B.weight", torch.zeros(4, 2)),
    ]


def test_an_adapter_is_written_as_peft_s_two_files(tmp_path):
    assert write_adapter(_adapter(1.0), CONFIG, tmp_path) == 2
    tensors = load_file(tmp_path / "adapter_model.safetensors")
    assert torch.equal(tensors["base_model.model.layers.0.q_proj.lora_A.weight"], torch.ones(2, 4))
    assert json.loads((tmp_path / "adapter_config.json").read_text()) == CONFIG


def test_an_empty_adapter_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        write_adapter([], CONFIG, tmp_path)


def test_each_replacement_is_a_new_id_and_drops_the_old_files():
    slot = AdapterSlot(CONFIG)
    try:
        name, first, path = slot.replace(_adapter(1.0))
        assert (name, first) == ("policy-v1", 1) and Path(path, "adapter_config.json").exists()
        assert slot.drop_old() is None  # nothing replaced yet
        _, second, newer = slot.replace(_adapter(2.0))
        assert second == 2 and slot.drop_old() == 1
        assert not Path(path).exists() and Path(newer).exists()
    finally:
        slot.close()
    assert not Path(newer).exists()


def test_a_dead_process_s_adapter_is_swept_as_stale(tmp_path, monkeypatch):
    monkeypatch.setattr("rollout.adapters.shm_root", lambda: tmp_path)
    monkeypatch.setattr("rollout.adapters.os.getpid", lambda: 2**22 + 12345)  # no such pid
    slot = AdapterSlot(CONFIG)
    _, _, path = slot.replace(_adapter(1.0))
    assert remove_stale(tmp_path) == [Path(path)]
