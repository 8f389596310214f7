"""An example custom reward: prefer short answers. Name it in a recipe as

rewards:
  - {name: recipes/examples/custom_reward.py:brevity, weight: 0.1, kwargs: {max_chars: 400}}
"""


def brevity(prompts: list, completions: list, max_chars: int = 400, **columns) -> list[float]:
    """1.0 up to `max_chars` characters, falling linearly to 0 at twice that."""
    scores = []
    for completion in completions:
        text = completion if isinstance(completion, str) else completion[-1]["content"]
        excess = max(len(text) - max_chars, 0) / max_chars
        scores.append(max(0.0, 1.0 - excess))
    return scores
