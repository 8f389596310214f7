"""What a run is built from: which engine, and whose weights it samples with."""

import torch

from grpo.components import Components
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
