import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM

import r1kit.models as models
from r1kit.models import ModelError, load_model, resolve_model, tiny_model


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory):
    """The built-in model converted from its GGUF into an empty cache, once for this module."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("R1KIT_CACHE", str(cache))
        path = resolve_model("smollm2-135m-instruct")
    return cache, path


@pytest.mark.slow
def test_builtin_model_is_converted_once_then_reused(fresh_cache, monkeypatch):
    cache, path = fresh_cache
    assert (cache / "models/smollm2-135m-instruct/model.safetensors").is_file()
    monkeypatch.setenv("R1KIT_CACHE", str(cache))
    monkeypatch.setattr(models, "_dequantise", lambda *a: pytest.fail("converted twice"))
    model, tokenizer = load_model("smollm2-135m-instruct")
    assert resolve_model("smollm2-135m-instruct") == path
    assert model.dtype == torch.float32 and tokenizer.padding_side == "left"
    assert tokenizer.chat_template


@pytest.mark.slow
def test_converted_model_generates_what_the_gguf_model_does(fresh_cache, monkeypatch):
    cache, _ = fresh_cache
    monkeypatch.setenv("R1KIT_CACHE", str(cache))
    model, tokenizer = load_model("smollm2-135m-instruct")
    package, filename = models.BUILTIN_GGUF["smollm2-135m-instruct"]
    folder = models.importlib.util.find_spec(package).origin.rsplit("/", 1)[0]
    gguf = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    ours = model.generate(**prompt, do_sample=False, max_new_tokens=12)
    theirs = gguf.generate(**prompt, do_sample=False, max_new_tokens=12)
    assert ours.tolist() == theirs.tolist()


@pytest.mark.slow
def test_two_processes_converting_at_once_both_succeed(tmp_path):
    code = "from r1kit.models import load_model; load_model('smollm2-135m-instruct'); print('ok')"
    env = {**__import__("os").environ, "R1KIT_CACHE": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs) and all(b"ok" in o for o in outputs)
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == [
        "smollm2-135m-instruct"
    ]


@pytest.mark.parametrize("kind", ["llama", "deepseek_v3"])
def test_tiny_models_run_forward_with_the_builtin_tokenizer(kind):
    model, tokenizer = tiny_model(kind)
    ids = tokenizer("hello", return_tensors="pt")["input_ids"]
    assert model(ids).logits.shape == (1, ids.shape[1], len(tokenizer))


def test_tiny_models_are_seeded():
    a, _ = tiny_model("llama", seed=3)
    b, _ = tiny_model("llama", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_missing_gguf_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="GGUF file not found"):
        resolve_model(str(tmp_path / "missing.gguf"))


def test_unloadable_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot load model"):
        load_model(str(tmp_path))


def test_auto_dtype_is_float32_on_cpu():
    model, _ = load_model("tiny-llama")
    assert model.dtype == torch.float32
