import pytest

from rollout.weight_transfer import WeightRoute, choose_route, native_api_present


@pytest.mark.parametrize(
    ("device", "native", "colocated", "path"),
    [
        ("cpu", True, True, "shm"),
        ("cpu", False, False, "shm"),
        ("cuda", False, True, "shm"),
        ("cuda", True, True, "cuda-ipc"),
        ("cuda", True, False, "nccl"),
    ],
)
def test_native_transfer_only_on_cuda_with_the_api(device, native, colocated, path):
    assert choose_route(device, native, colocated).path == path


def test_a_lora_on_modules_vllm_covers_sends_its_adapter_only():
    assert choose_route("cuda", True, True, ["q_proj", "v_proj"]).lora == "adapter"
    assert choose_route("cuda", True, True, ["all-linear"]).lora == "adapter"


def test_a_lora_on_modules_vllm_does_not_cover_sends_merged_weights():
    assert choose_route("cpu", False, True, ["q_proj", "lm_head"]).lora == "merged"


def test_the_route_describes_itself_in_one_line():
    assert WeightRoute("cuda-ipc", "adapter").describe() == "CUDA IPC, LoRA adapter only"
    assert WeightRoute("shm", "none").describe() == "/dev/shm reload"


def test_the_installed_vllm_has_the_weight_transfer_api():
    pytest.importorskip("vllm")
    assert native_api_present()
