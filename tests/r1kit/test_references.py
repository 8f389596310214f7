"""The front door's checks of what a recipe needs from Ray, before anything loads."""

import pytest

from r1kit.recipe import RecipeError, validate
from r1kit.references import check_ranks
from rollout import ray_pool


def _recipe(world_size: int, **ray):
    return validate({"learner": {"world_size": world_size}, "ray": ray, "rollout": {"workers": 1}})


def test_more_ranks_than_ray_has_cpus_names_the_field_and_the_count(monkeypatch):
    monkeypatch.setattr(ray_pool, "connect", lambda address: {"CPU": 2.0})
    with pytest.raises(RecipeError, match=r"learner.world_size: 2 ranks.* need 3 CPUs.* has 2"):
        check_ranks(_recipe(2))


def test_more_gpu_ranks_than_ray_has_gpus_names_the_field(monkeypatch):
    monkeypatch.setattr(ray_pool, "connect", lambda address: {"CPU": 64.0, "GPU": 4.0})
    with pytest.raises(RecipeError, match=r"learner.world_size: 8 ranks.* need 8 GPUs.* has 4"):
        check_ranks(_recipe(8, gpus_per_rank=1))


def test_ranks_that_fit_pass_and_one_rank_never_asks_ray(monkeypatch):
    monkeypatch.setattr(ray_pool, "connect", lambda address: {"CPU": 3.0})
    check_ranks(_recipe(2))
    monkeypatch.setattr(ray_pool, "connect", pytest.fail)
    check_ranks(_recipe(1))
