import pytest

from r1kit.recipe import Recipe, RecipeError, load_recipe, upgrade_saved, validate


def test_defaults_validate():
    assert isinstance(validate({}), Recipe)


def test_unknown_key_suggests_the_closest_field():
    with pytest.raises(RecipeError, match=r"learner\.lrr: unknown field \(did you mean 'lr'\?\)"):
        validate({"learner": {"lrr": 1e-5}})


def test_unknown_key_inside_a_list_item_is_located():
    with pytest.raises(
        RecipeError, match=r"rewards\.0\.wieght: unknown field \(did you mean 'weight'"
    ):
        validate({"rewards": [{"name": "math", "wieght": 1}]})


def test_wrong_type_names_the_field():
    with pytest.raises(RecipeError, match=r"rollout\.group_size: Input should be a valid integer"):
        validate({"rollout": {"group_size": "eight"}})


def test_a_dual_clip_c_of_at_most_one_is_refused():
    with pytest.raises(RecipeError, match=r"learner\.clip_ratio_c: Input should be greater than 1"):
        validate({"learner": {"clip_ratio_c": 1.0}})


def test_a_scale_the_estimator_ignores_is_refused():
    with pytest.raises(RecipeError, match=r"advantage_scale: none scales only learner.advantage"):
        validate({"learner": {"advantage": "rloo", "advantage_scale": "none"}})


def test_passk_without_the_pass_at_k_estimator_is_refused():
    with pytest.raises(RecipeError, match=r"learner\.passk: 4 is grpo_passk's k"):
        validate({"learner": {"passk": 4}})


@pytest.mark.parametrize(
    ("learner", "message"),
    [
        (
            {"entropy_target": 0.3},
            r"entropy_target adapts learner\.entropy_coef: set entropy_coef > 0",
        ),
        ({"kl_in": "reward"}, r"kl_in: reward needs learner\.beta > 0"),
        (
            {"kl_in": "reward", "beta": 0.1, "advantage": "grpo_passk"},
            r"kl_in: reward with learner\.advantage: grpo_passk",
        ),
        ({"entropy_top_q": 0.0}, r"entropy_top_q"),
        ({"entropy_top_q": 1.5}, r"entropy_top_q"),
        ({"kl_in": "advantage"}, r"kl_in"),
    ],
)
def test_entropy_and_kl_options_that_cannot_apply_are_refused(learner, message):
    with pytest.raises(RecipeError, match=message):
        validate({"learner": learner})


def test_the_entropy_and_kl_options_default_to_off():
    cfg = validate({}).learner
    assert (cfg.entropy_target, cfg.entropy_top_q, cfg.kl_in) == (None, 1.0, "loss")
    assert validate({"learner": {"entropy_coef": 0.005, "entropy_target": 0.3}}).learner


def test_passk_above_the_group_size_is_refused():
    with pytest.raises(RecipeError, match=r"learner\.passk: 9 is more than rollout\.group_size"):
        validate({"learner": {"advantage": "grpo_passk", "passk": 9}})


def test_eval_pass_k_of_one_is_refused():
    with pytest.raises(RecipeError, match=r"train\.eval_pass_k: 1 is pass@1 again"):
        validate({"train": {"eval_pass_k": 1}})


def test_wrong_choice_lists_what_is_allowed():
    with pytest.raises(RecipeError, match=r"learner\.strategy: .*'ddp'.*got 'zero3'"):
        validate({"learner": {"strategy": "zero3"}})


@pytest.mark.parametrize(
    ("field", "registered"),
    [
        ("loss", "bnpo, dapo, dr_grpo, grpo"),
        ("ratio_level", "sequence, token"),
        ("advantage", "grpo, grpo_passk, reinforce_pp, reinforce_pp_baseline, rloo"),
        ("advantage_scale", "batch, group, none"),
        ("kl_estimator", "k1, k2, k3"),
    ],
)
def test_an_unregistered_maths_name_lists_the_registered_ones(field, registered):
    with pytest.raises(
        RecipeError, match=rf"learner\.{field}: unknown 'x'; registered: {registered}"
    ):
        validate({"learner": {field: "x"}})


def test_gspo_as_a_loss_names_its_new_place():
    message = "learner.loss: gspo is now learner.ratio_level: sequence with learner.loss: grpo"
    with pytest.raises(RecipeError, match=message):
        validate({"learner": {"loss": "gspo"}})


@pytest.mark.parametrize(
    "key", ["dynamic_sampling", "max_sampling_rounds", "max_oversample", "mask_truncated"]
)
def test_the_batch_policy_moved_to_train_and_its_old_place_says_so(key, tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("learner: {lr: 1.0e-5}\n")
    with pytest.raises(RecipeError, match=rf"learner\.{key}: moved to train\.{key}"):
        load_recipe(path, [f"learner.{key}=1"])
    assert load_recipe(path, [f"train.{key}=1"]).train.model_dump()[key] == 1


def test_a_config_saved_before_fields_moved_still_resumes():
    saved = {
        "learner": {"loss": "gspo", "dynamic_sampling": True, "max_oversample": 2.0},
        "rollout": {"engine": "vllm", "kv_cache_gb": 2.5, "batch_size": 16},
    }
    recipe = validate(upgrade_saved(saved))
    assert (recipe.learner.loss, recipe.learner.ratio_level) == ("grpo", "sequence")
    assert (recipe.train.dynamic_sampling, recipe.train.max_oversample) == (True, 2.0)
    assert (recipe.rollout.vllm.kv_cache_gb, recipe.rollout.hf.batch_size) == (2.5, 16)


def test_output_tensorboard_gave_way_to_report_to_and_says_so(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("output: {tensorboard: false}\n")
    with pytest.raises(RecipeError, match=r"output.tensorboard: replaced by output.report_to"):
        load_recipe(path)
    for kept, trackers in ((True, ["tensorboard"]), (False, [])):  # a saved run still resumes
        assert (
            validate(upgrade_saved({"output": {"tensorboard": kept}})).output.report_to == trackers
        )


def test_report_to_names_only_known_trackers(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("output: {report_to: [wandb, comet]}\n")
    with pytest.raises(RecipeError, match=r"output.report_to.1: .*'tensorboard', 'wandb'"):
        load_recipe(path)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("rollout.kv_cache_gb", "rollout.vllm.kv_cache_gb"),
        ("rollout.batch_size", "rollout.hf.batch_size"),
    ],
)
def test_engine_settings_moved_to_the_engine_s_subsection_and_the_old_place_says_so(
    old, new, tmp_path
):
    path = tmp_path / "recipe.yaml"
    path.write_text("rollout: {engine: vllm}\n")
    with pytest.raises(RecipeError, match=rf"{old}: moved to {new}"):
        load_recipe(path, [f"{old}=2"])
    _, engine, key = new.split(".")
    assert getattr(getattr(load_recipe(path, [f"{new}=2"]).rollout, engine), key) == 2


def test_the_engine_gets_only_its_own_subsection():
    rollout = validate({"rollout": {"engine": "vllm", "vllm": {"kv_cache_gb": 3}}}).rollout
    assert rollout.spec().options["kv_cache_gb"] == 3.0
    assert "batch_size" not in rollout.spec().options
    assert validate({}).rollout.spec().options == {"batch_size": 64}


def test_the_gpu_options_reach_the_engine_spec():
    gpu = {"gpu_memory_utilization": 0.3, "tensor_parallel_size": 2, "max_model_len": 4096}
    gpu |= {"enforce_eager": False, "sleep_level": 1}
    rollout = validate({"rollout": {"engine": "vllm", "vllm": gpu}}).rollout
    assert gpu.items() <= rollout.spec().options.items()


def test_the_gpu_options_default_to_r1kit_s_current_engine():
    options = validate({}).rollout.vllm.model_dump()
    assert options == {
        "kv_cache_gb": 1.0,
        "gpu_memory_utilization": None,
        "tensor_parallel_size": 1,
        "max_model_len": None,
        "enforce_eager": None,
        "sleep_level": 0,
        "weight_transfer": "auto",
    }


def test_a_kv_cache_size_and_a_gpu_share_together_are_refused():
    vllm = {"kv_cache_gb": 2, "gpu_memory_utilization": 0.3}
    with pytest.raises(RecipeError, match=r"rollout\.vllm.*kv_cache_gb and gpu_memory_utilization"):
        validate({"rollout": {"engine": "vllm", "vllm": vllm}})


def test_an_unknown_weight_transfer_is_refused_naming_the_field():
    with pytest.raises(RecipeError, match=r"rollout\.vllm\.weight_transfer"):
        validate({"rollout": {"vllm": {"weight_transfer": "rdma"}}})


def test_a_sleep_level_vllm_has_not_is_refused():
    with pytest.raises(RecipeError, match=r"rollout\.vllm\.sleep_level"):
        validate({"rollout": {"vllm": {"sleep_level": 2}}})


def test_one_sampling_type_makes_the_engine_s_parameters():
    rollout = validate({"rollout": {"temperature": 0.7, "top_k": 5, "stop": ["</a>"]}}).rollout
    params = rollout.params(n=4, seed=9)
    assert (params.n, params.seed, params.temperature, params.top_k) == (4, 9, 0.7, 5)
    assert params.stop == ("</a>",)


def test_the_rollout_cannot_sample_greedily():
    with pytest.raises(RecipeError, match=r"rollout\.temperature: Input should be greater than 0"):
        validate({"rollout": {"temperature": 0}})


def test_missing_data_file_is_reported():
    with pytest.raises(RecipeError, match=r"data\.source: .*not found: nowhere\.jsonl"):
        validate({"data": {"source": "nowhere.jsonl"}})


def test_a_negative_seed_is_refused_naming_the_field():
    with pytest.raises(RecipeError, match="seed: Input should be greater than or equal to 0"):
        validate({"seed": -1})


def test_a_data_file_that_is_a_directory_says_so(tmp_path):
    (tmp_path / "d.jsonl").mkdir()
    with pytest.raises(RecipeError, match="data file is a directory, not a file"):
        validate({"data": {"source": str(tmp_path / "d.jsonl")}})


def test_a_recipe_that_is_a_directory_says_so(tmp_path):
    with pytest.raises(RecipeError, match="is a directory; give a recipe .yaml file"):
        load_recipe(tmp_path)


def test_overrides_are_applied_and_typed(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("learner: {lr: 1.0e-6}\n")
    recipe = load_recipe(path, ["learner.lr=3e-5", "rollout.stop=['</answer>']"])
    assert recipe.learner.lr == 3e-5
    assert recipe.rollout.stop == ["</answer>"]
    assert recipe.output.name == "r"


def test_malformed_override_is_rejected(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("{}\n")
    with pytest.raises(RecipeError, match="--set expects key=value"):
        load_recipe(path, ["learner.lr"])


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("learner: [unclosed\n")
    with pytest.raises(RecipeError, match="bad.yaml: not valid YAML"):
        load_recipe(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout_s", 0, "greater than 0"),
        ("max_failure_frac", 1.5, "less than or equal to 1"),
        ("max_failure_frac", -0.1, "greater than or equal to 0"),
        ("weight", float("nan"), "finite number"),
    ],
)
def test_reward_limits_outside_their_range_are_refused(field, value, message):
    with pytest.raises(RecipeError, match=rf"rewards\.0\.{field}: .*{message}"):
        validate({"rewards": [{"name": "math", field: value}]})


def test_reward_workers_cannot_be_negative():
    with pytest.raises(RecipeError, match=r"scoring\.workers: .*greater than or equal to 0"):
        validate({"scoring": {"workers": -1}})


def test_rollout_engine_choices_come_from_the_engine_registry():
    from rollout.engines import ENGINES

    for name in ENGINES:
        assert validate({"rollout": {"engine": name}}).rollout.engine == name
    with pytest.raises(RecipeError, match=r"rollout\.engine: .*'vllm'.*got 'sglang'"):
        validate({"rollout": {"engine": "sglang"}})


def test_rollout_workers_and_ray_section():
    recipe = validate({"rollout": {"workers": 2}, "ray": {"address": "auto"}})
    assert (recipe.rollout.workers, recipe.ray.address, recipe.ray.cpus_per_worker) == (
        2,
        "auto",
        1,
    )
    with pytest.raises(RecipeError, match=r"rollout\.workers"):
        validate({"rollout": {"workers": -1}})


def test_learner_optimisations_are_on_by_default():
    learner = validate({}).learner
    assert learner.shared_prefix and learner.skip_zero_advantage and learner.logprob_chunk > 0


def test_negative_logprob_chunk_names_the_field():
    with pytest.raises(RecipeError, match=r"learner\.logprob_chunk: .*greater than or equal to 0"):
        validate({"learner": {"logprob_chunk": -1}})


def test_rollout_async_is_read_and_written_as_async():
    recipe = validate({"rollout": {"async": True, "workers": 1}})
    assert recipe.rollout.async_
    assert recipe.model_dump(mode="json")["rollout"]["async"] is True


def test_rollout_async_without_workers_is_refused_naming_what_to_set():
    with pytest.raises(RecipeError, match=r"rollout\.async: .*rollout\.workers to 1 or more"):
        validate({"rollout": {"async": True}})


def test_max_staleness_is_one_by_default_and_above_one_only_with_async():
    assert validate({}).rollout.max_staleness == 1
    assert validate({"rollout": {"async": True, "workers": 1, "max_staleness": 3}})
    with pytest.raises(RecipeError, match=r"max_staleness above 1 needs rollout\.async: true"):
        validate({"rollout": {"workers": 1, "max_staleness": 2}})
    with pytest.raises(RecipeError, match=r"max_staleness: .*greater than or equal to 1"):
        validate({"rollout": {"async": True, "workers": 1, "max_staleness": 0}})


def test_unknown_rollout_key_suggests_async_by_its_yaml_name():
    with pytest.raises(RecipeError, match=r"did you mean 'async'"):
        validate({"rollout": {"asyn": True}})


@pytest.mark.parametrize(
    "data, message",
    [
        ({"arithmetic": {"digits": 2}, "curriculum": {"levels": 2}}, "arithmetic.digits > 2"),
        ({"source": "countdown", "curriculum": {"levels": 2}}, "countdown.numbers >= 4"),
        ({"source": "countdown", "pass_rate": {"enabled": True}}, "use curriculum"),
    ],
)
def test_adaptive_sampling_that_does_not_fit_the_task_is_refused(data, message):
    with pytest.raises(RecipeError, match=message):
        validate({"data": data})
