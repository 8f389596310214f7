import pytest
import yaml

from r1kit.pipeline_recipe import load_pipeline, output_path, stage_hash, stage_raw
from r1kit.recipe import Recipe, RecipeError


def _write(tmp_path, stages: list[dict], name: str = "chain.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"stages": stages, "output": {"dir": str(tmp_path / "runs")}}))
    return path


TEACHER = {"name": "teacher", "kind": "train", "recipe": {"model": {"name": "tiny-llama"}}}


def test_a_stage_recipe_file_beside_the_pipeline_is_read_inline(tmp_path):
    (tmp_path / "grpo.yaml").write_text(yaml.safe_dump({"learner": {"lr": 0.5}}))
    pipeline = load_pipeline(_write(tmp_path, [{**TEACHER, "recipe": "grpo.yaml"}]))
    assert pipeline.stages[0].recipe == {"learner": {"lr": 0.5}}
    assert pipeline.run_dir() == tmp_path / "runs" / "chain"  # the file's name by default


def test_a_missing_stage_recipe_file_names_the_stage(tmp_path):
    with pytest.raises(RecipeError, match=r"stages.0 \(teacher\): recipe: recipe file not found"):
        load_pipeline(_write(tmp_path, [{**TEACHER, "recipe": "nowhere.yaml"}]))


def test_a_set_naming_a_stage_goes_into_that_stage_and_others_into_the_pipeline(tmp_path):
    path = _write(tmp_path, [TEACHER])
    pipeline = load_pipeline(path, ["teacher.learner.lr=0.25", "output.name=other"])
    assert pipeline.stages[0].set == {"learner.lr": 0.25}
    assert pipeline.output.name == "other"
    assert stage_raw(pipeline, 0, {})["learner"] == {"lr": 0.25}


def test_a_stage_s_output_goes_into_the_pipeline_s_directory_under_its_name(tmp_path):
    pipeline = load_pipeline(_write(tmp_path, [TEACHER]))
    output = stage_raw(pipeline, 0, {})["output"]
    assert (output["dir"], output["name"]) == (str(tmp_path / "runs" / "chain"), "teacher")


def test_references_anywhere_in_a_stage_become_the_paths_earlier_stages_write(tmp_path):
    student = {
        "name": "student",
        "kind": "distill",
        "recipe": {
            "teacher": "stages.teacher.final",
            "filter": {"rewards": ["stages.teacher.final"]},
        },
    }
    pipeline = load_pipeline(_write(tmp_path, [TEACHER, student]))
    raw = stage_raw(pipeline, 1, {"teacher": ("final",)})
    final = output_path(pipeline, "teacher", "final")
    assert raw["teacher"] == final == str(tmp_path / "runs" / "chain" / "teacher" / "final")
    assert raw["filter"]["rewards"] == [final]


@pytest.mark.parametrize(
    ("reference", "words"),
    [
        ("stages.teacher", "is not a reference: use stages.NAME.OUTPUT"),
        ("stages.student.final", "names a later stage (or this one)"),
        ("stages.other.final", "names no such stage"),
        ("stages.teacher.traces", "stage teacher (train) makes no 'traces', only final"),
    ],
)
def test_a_bad_reference_names_the_stage_and_field(tmp_path, reference, words):
    student = {"name": "student", "kind": "train", "recipe": {"model": {"name": reference}}}
    pipeline = load_pipeline(_write(tmp_path, [TEACHER, student]))
    with pytest.raises(RecipeError) as err:
        stage_raw(pipeline, 1, {"teacher": ("final",)})
    assert "stages.1 (student): model.name: " in str(err.value) and reference in str(err.value)
    assert words in str(err.value)


@pytest.mark.parametrize(
    ("stages", "words"),
    [
        ([TEACHER, TEACHER], "each name once, teacher repeated"),
        ([{**TEACHER, "name": "output"}], "output names a pipeline field"),
        ([{**TEACHER, "name": "Teacher 1"}], "stage names are lower-case words"),
        ([{**TEACHER, "kind": "eval"}], "stages.0.kind"),
        ([], "stages: List should have at least 1 item"),
    ],
)
def test_a_bad_pipeline_exits_naming_the_field(tmp_path, stages, words):
    with pytest.raises(RecipeError, match="chain.yaml: invalid recipe") as err:
        load_pipeline(_write(tmp_path, stages))
    assert words in str(err.value)


def test_a_stage_s_fingerprint_ignores_how_the_pipeline_directory_is_spelt():
    recipe = {"output": {"dir": "runs/chain", "name": "teacher"}, "model": {"name": "tiny-llama"}}
    relative = Recipe.model_validate(recipe)
    absolute = Recipe.model_validate(
        {**recipe, "output": {"dir": "/abs/runs/chain", "name": "teacher"}}
    )
    assert stage_hash(relative, "runs/chain") == stage_hash(absolute, "/abs/runs/chain")
    changed = Recipe.model_validate({**recipe, "learner": {"lr": 0.5}})
    assert stage_hash(changed, "runs/chain") != stage_hash(relative, "runs/chain")
