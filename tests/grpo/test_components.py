"""What a run is built from: which engine, and whose weights it samples with."""

import logging

import torch

from grpo.components import Components, _adapter_only, rollout_spec
from r1kit.learner.core import Learner
from r1kit.learner.policy import load_policy
from r1kit.recipe import validate


def test_the_in_process_engine_samples_with_the_policy_itself(tiny_recipe):
    parts = Components.build(validate(tiny_recipe()))
    try:
        assert parts.engine.model is parts.learner.model  # no second copy of the weights
    finally:
        parts.close()


def test_a_lora_policy_gets_an_engine_of_its_own_with_the_merged_weights(tiny_recipe):
    parts = Components.build(validate(tiny_recipe(model={"name": "tiny-llama", "lora": {"r": 4}})))
    try:
        assert parts.engine.model is not parts.learner.model
        engine = dict(parts.engine.model.named_parameters())
        for name, tensor in parts.learner.named_weights():
            assert torch.equal(engine[name], tensor), name
    finally:
        parts.close()


def _learner(recipe):
    policy, _ = load_policy(recipe, "cpu")
    cfg = recipe.learner
    return Learner(policy, cfg, cfg, recipe.train.steps, recipe.rollout.temperature, False)


def test_a_lora_policy_on_vllm_sends_its_adapter_alone_and_says_so(tiny_recipe, caplog):
    lora = {"name": "tiny-llama", "lora": {"r": 4}}
    recipe = validate(tiny_recipe(model=lora, rollout={"engine": "vllm"}))
    with caplog.at_level(logging.INFO, logger="grpo"):
        assert _adapter_only(recipe, _learner(recipe))
    assert "LoRA updates: adapter only (vLLM's LoRA layers serve every target module)" in (
        caplog.text
    )


def test_a_lora_on_modules_vllm_does_not_serve_sends_merged_weights(tiny_recipe, caplog):
    lora = {"name": "tiny-llama", "lora": {"r": 4, "target_modules": ["q_proj", "lm_head"]}}
    recipe = validate(tiny_recipe(model=lora, rollout={"engine": "vllm"}))
    with caplog.at_level(logging.INFO, logger="grpo"):
        assert not _adapter_only(recipe, _learner(recipe))
    assert "LoRA updates: merged weights" in caplog.text and "['lm_head']" in caplog.text


def test_the_hf_engine_takes_merged_lora_weights(tiny_recipe, caplog):
    recipe = validate(tiny_recipe(model={"name": "tiny-llama", "lora": {"r": 4}}))
    with caplog.at_level(logging.INFO, logger="grpo"):
        assert not _adapter_only(recipe, _learner(recipe))
    assert "merged weights (the hf engine takes merged weights)" in caplog.text


def test_vllm_samples_in_the_policy_s_dtype_not_its_config_s(tiny_recipe, monkeypatch):
    """The built-in model's config says float32; the learner's `auto` is bfloat16 on CUDA."""
    recipe = validate(tiny_recipe(rollout={"engine": "vllm"}))
    assert rollout_spec(recipe).options["dtype"] == "float32"  # this CPU
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert rollout_spec(recipe).options["dtype"] == "bfloat16"
    explicit = validate(tiny_recipe(rollout={"engine": "vllm"}, model={"dtype": "float16"}))
    assert rollout_spec(explicit).options["dtype"] == "float16"


def test_the_hf_engine_spec_carries_no_dtype(tiny_recipe):
    assert "dtype" not in rollout_spec(validate(tiny_recipe())).options
