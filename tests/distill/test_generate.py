import contextlib
import importlib.util

import pytest

import distill.generate
from distill.generate import generate_traces
from distill.recipe import DistillRecipe
from r1kit import durable
from r1kit.stopping import Stopper


def tiny_recipe(**generate) -> DistillRecipe:
    return DistillRecipe.model_validate(
        {
            "teacher": "tiny-llama",
            "student": {"name": "tiny-llama"},
            "data": {"source": "arithmetic", "eval_size": 2},
            "generate": {"problems": 4, "samples": 2, "max_new_tokens": 6, "chunk": 2} | generate,
        }
    )


@pytest.fixture
def recipe():
    return tiny_recipe()


def test_k_scored_traces_per_problem(recipe, tmp_path):
    records = generate_traces(recipe, tmp_path / "generated.jsonl", Stopper())
    assert [r["problem"] for r in records] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert all(set(r["rewards"]) == {"math"} and r["tokens"] <= 6 for r in records)
    assert durable.read_jsonl(tmp_path / "generated.jsonl") == records


vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed")


@pytest.mark.parametrize(
    ("engine", "workers"),
    [
        ("hf", 0),
        ("hf", 1),
        pytest.param("vllm", 0, marks=[vllm, pytest.mark.slow]),
        pytest.param("vllm", 1, marks=[vllm, pytest.mark.slow]),
    ],
)
def test_every_engine_and_worker_count_the_schema_accepts_generates(engine, workers, tmp_path):
    recipe = tiny_recipe(engine=engine, workers=workers, vllm={"kv_cache_gb": 0.25})
    records = generate_traces(recipe, tmp_path / "generated.jsonl", Stopper())
    assert [r["problem"] for r in records] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert all(0 < r["tokens"] <= 6 for r in records)


def test_a_chunk_decodes_at_once_unless_hf_batch_size_says():
    assert tiny_recipe(chunk=3, samples=5).generate.hf.batch_size == 15
    assert tiny_recipe(chunk=3, hf={"batch_size": 4}).generate.hf.batch_size == 4


class Killed(Exception):
    pass


def test_a_run_killed_while_generating_resumes_after_the_last_chunk(recipe, tmp_path, monkeypatch):
    straight = generate_traces(recipe, tmp_path / "straight.jsonl", Stopper())
    appends, real_append = [], durable.append_jsonl

    def dies_on_the_second_chunk(path, records):
        appends.append(len(records))
        if len(appends) == 2:
            raise Killed
        real_append(path, records)

    monkeypatch.setattr(durable, "append_jsonl", dies_on_the_second_chunk)
    with contextlib.suppress(Killed):
        generate_traces(recipe, tmp_path / "killed.jsonl", Stopper())
    monkeypatch.undo()
    assert len(durable.read_jsonl(tmp_path / "killed.jsonl")) == 4  # the first chunk only
    generated = []
    real_generate = distill.generate.generate_groups

    def counting(engine, tokenizer, template, rows, sampling):
        generated.extend(rows)
        return real_generate(engine, tokenizer, template, rows, sampling)

    monkeypatch.setattr(distill.generate, "generate_groups", counting)
    resumed = generate_traces(recipe, tmp_path / "killed.jsonl", Stopper())
    assert len(generated) == 2  # only the problems the kill left out
    assert resumed == straight  # each chunk samples with the recipe seed: the same traces
