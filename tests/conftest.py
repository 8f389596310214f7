"""Shared fixtures: a tiny GRPO recipe on a tiny random model, with a reward it learns fast."""

import pytest

EVEN_TOKENS = '''
def even_tokens(prompts, completions, completion_ids, **kwargs):
    """Share of even token ids: learnable by a random model in a few steps."""
    return [sum(t % 2 == 0 for t in ids) / max(len(ids), 1) for ids in completion_ids]
'''


@pytest.fixture
def tiny_recipe(tmp_path):
    """Write the reward file; return a factory of tiny recipe mappings (overridable)."""
    reward_file = tmp_path / "even.py"
    reward_file.write_text(EVEN_TOKENS)

    def make(**sections) -> dict:
        recipe = {
            "seed": 0,
            "model": {"name": "tiny-llama"},
            "data": {"source": "arithmetic", "eval_size": 4},
            "template": {"name": "raw"},
            "rollout": {"group_size": 4, "max_new_tokens": 8, "temperature": 1.0},
            "rewards": [{"name": f"{reward_file}:even_tokens", "weight": 1.0}],
            "learner": {"lr": 3e-2, "micro_batch_size": 8},
            "train": {
                "steps": 4,
                "prompts_per_step": 4,
                "eval_every": 0,
                "save_every": 2,
                "samples_per_step": 1,
            },
            "output": {"dir": str(tmp_path / "runs"), "name": "tiny", "tensorboard": False},
        }
        for section, values in sections.items():
            recipe[section] = (
                {**recipe.get(section, {}), **values} if isinstance(values, dict) else values
            )
        return recipe

    return make
