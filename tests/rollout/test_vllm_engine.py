"""VLLMEngine on tiny-llama: one engine for the module (starting vLLM takes tens of seconds)."""

import pytest

from r1kit.models import load_model
from rollout.types import SamplingParams
from rollout.weights import PREFIX, shm_root
from tests.rollout.conftest import logprob_gap, lora_merged, perturbed

pytest.importorskip("vllm", reason="vLLM is not installed (scripts/setup.sh installs it)")

T = 0.7


@pytest.fixture(scope="module")
def engine(tiny_dir):
    from rollout.vllm_engine import VLLMEngine

    # sleep_level 1 asked for on CPU, where vLLM has no sleep mode: it must stay off
    engine = VLLMEngine(tiny_dir, kv_cache_gb=0.25, sleep_level=1)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-llama")


@pytest.fixture(scope="module")
def prompts(tiny):
    texts = ["hello there", "a much longer prompt with quite a few more words in it", "2 + 2 ="]
    return [tiny[1](t)["input_ids"] for t in texts]


def _sampling(**kw):
    return SamplingParams(**({"n": 3, "temperature": T, "max_new_tokens": 12, "seed": 1} | kw))


def _token_ids(groups):
    return [[c.token_ids for c in group] for group in groups]


def test_logprobs_are_those_of_the_loaded_weights_at_the_temperature(engine, tiny, prompts):
    groups = engine.generate(prompts, _sampling())
    assert [len(g) for g in groups] == [3, 3, 3]
    assert all(c.prompt_token_ids == p for p, g in zip(prompts, groups, strict=True) for c in g)
    assert logprob_gap(tiny[0], groups, T) < 1e-4


@pytest.mark.parametrize("new_policy", [perturbed, lora_merged], ids=["full", "lora-merged"])
def test_after_update_logprobs_follow_the_new_weights(engine, tiny, prompts, new_policy):
    model = tiny[0]
    new = new_policy(model, seed=engine.policy_version + 1)
    version = engine.policy_version
    engine.update_weights(new.named_parameters())
    groups = engine.generate(prompts, _sampling())
    assert logprob_gap(new, groups, T) < 1e-4
    assert logprob_gap(model, groups, T) > 1e-2  # the old weights give other log-probs
    assert {c.policy_version for g in groups for c in g} == {version + 1}
    assert not list(shm_root().glob(f"{PREFIX}*"))  # the update's files are gone


def test_same_seed_same_completions_and_prompts_differ(engine, prompts):
    same = [prompts[0]] * 2
    first, second = engine.generate(same, _sampling()), engine.generate(same, _sampling())
    assert _token_ids(first) == _token_ids(second)
    assert _token_ids(first)[0] != _token_ids(first)[1]  # per-request seeds


def test_max_new_tokens_ends_with_finish_reason_length(engine, prompts):
    for c in (c for g in engine.generate(prompts, _sampling(max_new_tokens=5)) for c in g):
        assert len(c.token_ids) == len(c.logprobs) <= 5
        assert c.finish_reason == ("length" if len(c.token_ids) == 5 else "stop")


def test_stop_string_cuts_text_and_stops_decoding(engine, tiny, prompts):
    greedy = _sampling(n=1, temperature=0.0, max_new_tokens=12)
    free = engine.generate(prompts[:1], greedy)[0][0]
    stop = tiny[1].decode(free.token_ids[3:5])  # text the greedy output is known to contain
    cut = engine.generate(prompts[:1], _sampling(n=1, temperature=0.0, stop=(stop,)))[0][0]
    assert cut.finish_reason == "stop" and cut.text.endswith(stop)
    assert len(cut.token_ids) <= 5 and cut.token_ids == free.token_ids[: len(cut.token_ids)]


def test_empty_prompt_is_refused(engine, prompts):
    with pytest.raises(ValueError, match="at least one token"):
        engine.generate([prompts[0], []], _sampling())


def test_a_seeded_batch_larger_than_one_prefill_step_is_sampled(engine):
    """128 seeded sequences of 120 prompt tokens: more than one step's token budget. Chunked
    prefill on CPU killed the engine here (a seeded CPU generator cannot rewind)."""
    prompts = [[(7 * i + j) % 500 + 10 for j in range(120)] for i in range(16)]
    groups = engine.generate(prompts, _sampling(n=8, max_new_tokens=4))
    assert [len(g) for g in groups] == [8] * 16


def test_sleep_is_off_on_cpu_and_sleeping_changes_nothing(engine, prompts):
    before = _token_ids(engine.generate(prompts, _sampling()))
    engine.sleep()
    engine.wake_up(["weights"])
    assert (engine.sleep_level, engine.asleep) == (0, False)
    assert _token_ids(engine.generate(prompts, _sampling())) == before
