"""The route's reason (logged once at start, shown by --dry-run) and LoRA coverage by name."""

from types import SimpleNamespace

import pytest

from rollout.ray_pool import PoolError, RayPool
from rollout.weight_transfer import WeightRoute, choose_route, lora_modules


def test_each_route_says_why_it_was_chosen():
    assert choose_route("cpu", True, True).reason == "on CPU"
    assert "absent or off" in choose_route("cuda", False, True).reason
    assert choose_route("cuda", True, True).reason == "CUDA, engine in the learner's process"
    assert choose_route("cuda", True, False).reason == "CUDA, engines in Ray workers"


def test_an_adapter_travels_as_files_on_every_device():
    for device in ("cpu", "cuda"):
        route = choose_route(device, True, True, ["q_proj"])
        assert (route.path, route.lora) == ("shm", "adapter")
    assert route.describe() == "LoRA adapter only, as peft files in /dev/shm"


def test_a_resolved_peft_config_s_full_module_paths_count_by_their_last_name():
    modules = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj"]
    assert choose_route("cuda", True, True, modules).lora == "adapter"


def test_merged_weights_name_the_modules_vllm_does_not_serve():
    route = choose_route("cuda", True, False, ["q_proj", "lm_head"])
    assert route == WeightRoute("nccl", "merged", route.reason)
    assert "['lm_head'] not served" in route.reason


def test_a_recipe_s_target_modules_become_a_list():
    assert lora_modules("all-linear") == ["all-linear"]
    assert lora_modules(["q_proj"]) == ["q_proj"]
    assert lora_modules(None) is None


def test_on_the_nccl_route_a_dead_worker_stops_the_pool_naming_resume():
    pool = SimpleNamespace(_native=object())  # an NCCL sender: the weights live on the GPU
    with pytest.raises(PoolError, match="resume the run"):
        RayPool._replace(pool, 0, RuntimeError("actor died"))
