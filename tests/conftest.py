"""Shared fixtures: a tiny GRPO recipe on a tiny random model, with a reward it learns fast;
a real small disk (tmpfs) for the tests of full and read-only disks."""

import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

EVEN_TOKENS = '''
def even_tokens(prompts, completions, completion_ids, **kwargs):
    """Share of even token ids: learnable by a random model in a few steps."""
    return [sum(t % 2 == 0 for t in ids) / max(len(ids), 1) for ids in completion_ids]
'''


@pytest.fixture
def tiny_recipe(tmp_path):
    """Write the reward file; return a factory of tiny recipe mappings (overridable)."""
    return tiny_recipe_factory(tmp_path)


def tiny_recipe_factory(tmp_path: Path) -> Callable[..., dict]:
    """`tiny_recipe` outside pytest (benchmarks/cluster.py): runs go under `tmp_path`."""
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
            "output": {"dir": str(tmp_path / "runs"), "name": "tiny", "report_to": []},
        }
        for section, values in sections.items():
            recipe[section] = (
                {**recipe.get(section, {}), **values} if isinstance(values, dict) else values
            )
        return recipe

    return make


@pytest.fixture(scope="session")
def small_disk(tmp_path_factory):
    """A runner of shell scripts that see a real small filesystem (tmpfs) mounted at a path,
    in user and mount namespaces of their own: a disk that fills up, or (remounted `ro`) is
    read-only even to root, as chmod is not. Skipped where namespaces are not permitted."""
    probe = tmp_path_factory.mktemp("probe")
    try:
        allowed = _on_tmpfs(probe, "64k", "true").returncode == 0
    except FileNotFoundError:  # no unshare
        allowed = False
    if not allowed:
        pytest.skip("needs `unshare -rm` and `mount -t tmpfs` (user namespaces) for a small disk")
    return _on_tmpfs


def _on_tmpfs(mountpoint, size: str, script: str, timeout: int = 300):
    """Run `script` (sh) with a tmpfs of `size` at `mountpoint`; it is gone afterwards."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    mount = f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(mountpoint))}"
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"{mount} && {script}"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
