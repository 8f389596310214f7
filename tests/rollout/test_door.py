"""check_engine fails before any model loads, naming the field; open_engine opens any kind."""

import importlib.util

import pytest

from r1kit.models import load_model
from rollout import (
    EngineSpec,
    ModelSource,
    Placement,
    RolloutSetupError,
    check_engine,
    door,
    engines,
    ray_pool,
)
from rollout.engines import EngineKind
from rollout.hf_engine import HFEngine


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-llama")


def test_unknown_engine_names_the_field():
    with pytest.raises(RolloutSetupError, match=r"rollout\.engine: unknown 'sglang'"):
        check_engine(EngineSpec("sglang"))


def test_the_field_named_is_the_section_s():
    with pytest.raises(RolloutSetupError, match=r"^generate\.engine: unknown"):
        check_engine(EngineSpec("sglang"), section="generate")


def test_vllm_missing_names_the_field(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a)
    )
    with pytest.raises(RolloutSetupError, match=r"rollout\.engine: vllm is not installed"):
        check_engine(EngineSpec("vllm"))


@pytest.mark.parametrize(
    ("workers", "cpus", "gpus", "field"),
    [(3, 1.0, 0.0, "cpus_per_worker"), (2, 1.5, 0.0, "cpus_per_worker"), (1, 1.0, 1.0, "gpus")],
)
def test_more_workers_than_ray_resources(monkeypatch, workers, cpus, gpus, field):
    monkeypatch.setattr(ray_pool, "connect", lambda address: {"CPU": 2.0})
    place = Placement(cpus_per_worker=cpus, gpus_per_worker=gpus)
    with pytest.raises(RolloutSetupError, match=rf"rollout\.workers: .*ray\.{field}"):
        check_engine(EngineSpec("hf", workers, placement=place))


def test_workers_that_fit_pass(monkeypatch):
    monkeypatch.setattr(ray_pool, "connect", lambda address: {"CPU": 2.0, "GPU": 2.0})
    check_engine(EngineSpec("hf", 2, placement=Placement("local", 1.0, 1.0)))


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1", "no-port", "host:x"])
def test_unreachable_or_malformed_address_names_the_field(address):
    with pytest.raises(RolloutSetupError, match=r"ray\.address"):
        check_engine(EngineSpec("hf", 1, placement=Placement(address)))


def test_in_process_needs_no_ray(monkeypatch):
    monkeypatch.setattr(ray_pool, "connect", pytest.fail)
    check_engine(EngineSpec("hf"))


def test_an_hf_engine_opens_from_a_directory(tiny_dir):
    engine = door.open_engine(EngineSpec("hf", options={"batch_size": 4}), ModelSource(tiny_dir))
    assert isinstance(engine, HFEngine) and engine.batch_size == 4


def test_an_hf_engine_samples_from_a_live_model_as_it_is(tiny):
    engine = door.open_engine(EngineSpec("hf"), ModelSource.live(*tiny))
    assert engine.model is tiny[0]


def test_an_engine_that_loads_the_model_itself_needs_its_directory(tiny):
    with pytest.raises(RolloutSetupError, match="vllm loads the model itself"):
        door.open_engine(EngineSpec("vllm"), ModelSource.live(*tiny))


def test_an_unknown_kind_is_refused_inside_too(tiny_dir):
    with pytest.raises(RolloutSetupError, match="rollout.engine: unknown 'sglang'"):
        door.open_engine(EngineSpec("sglang"), ModelSource(tiny_dir))


def test_a_registered_engine_opens_with_its_own_options(monkeypatch, tiny_dir):
    opened = []
    kind = EngineKind(lambda model, seed, **options: opened.append((model, seed, options)))
    monkeypatch.setitem(engines.ENGINES, "echo", kind)
    door.open_engine(EngineSpec("echo", options={"depth": 2}), ModelSource(tiny_dir), seed=5)
    assert opened == [(ModelSource(tiny_dir), 5, {"depth": 2})]
