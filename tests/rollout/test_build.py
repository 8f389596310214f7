"""check_rollout fails before any model loads, naming the field; make_engine builds either kind."""

import importlib.util

import pytest

from rollout import build, ray_pool
from rollout.build import RolloutSetupError, check_rollout, make_engine
from rollout.hf_engine import HFEngine


def test_unknown_engine_names_the_field():
    with pytest.raises(RolloutSetupError, match=r"rollout\.engine: unknown 'sglang'"):
        check_rollout("sglang", workers=0)


def test_vllm_missing_names_the_field(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a)
    )
    with pytest.raises(RolloutSetupError, match=r"rollout\.engine: vllm is not installed"):
        check_rollout("vllm", workers=0)


@pytest.mark.parametrize(
    ("workers", "cpus", "gpus", "field"),
    [(3, 1.0, 0.0, "cpus_per_worker"), (2, 1.5, 0.0, "cpus_per_worker"), (1, 1.0, 1.0, "gpus")],
)
def test_more_workers_than_ray_resources(monkeypatch, workers, cpus, gpus, field):
    monkeypatch.setattr(ray_pool, "connect", lambda address: {"CPU": 2.0})
    with pytest.raises(RolloutSetupError, match=rf"rollout\.workers: .*ray\.{field}"):
        check_rollout("hf", workers, "local", cpus_per_worker=cpus, gpus_per_worker=gpus)


def test_workers_that_fit_pass(monkeypatch):
    monkeypatch.setattr(ray_pool, "connect", lambda address: {"CPU": 2.0, "GPU": 2.0})
    check_rollout("hf", 2, "local", cpus_per_worker=1.0, gpus_per_worker=1.0)


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1", "no-port", "host:x"])
def test_unreachable_or_malformed_address_names_the_field(address):
    with pytest.raises(RolloutSetupError, match=r"ray\.address"):
        check_rollout("hf", workers=1, ray_address=address)


def test_in_process_needs_no_ray(monkeypatch):
    monkeypatch.setattr(ray_pool, "connect", pytest.fail)
    check_rollout("hf", workers=0)


def test_make_engine_builds_an_hf_engine_from_a_directory(tiny_dir):
    engine = make_engine("hf", tiny_dir, batch_size=4)
    assert isinstance(engine, HFEngine) and engine.batch_size == 4


def test_make_engine_refuses_an_unknown_kind(tiny_dir):
    with pytest.raises(RolloutSetupError, match="rollout.engine"):
        build.make_engine("sglang", tiny_dir)
