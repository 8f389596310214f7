import pytest

from distill.inputs import named_tokenizer
from r1kit.models import load_tokenizer
from r1kit.recipe import RecipeError


def test_a_student_without_a_chat_template_is_refused_naming_the_field(tmp_path):
    tokenizer = load_tokenizer("tiny-llama")
    tokenizer.chat_template = None
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(RecipeError, match="student.name: .* has no chat template"):
        named_tokenizer(str(tmp_path), "student.name", chat=True)
    assert named_tokenizer(str(tmp_path), "teacher").chat_template is None  # r1_zero needs none


def test_a_model_that_cannot_be_loaded_names_the_field(tmp_path):
    with pytest.raises(RecipeError, match="teacher: cannot load model"):
        named_tokenizer(str(tmp_path), "teacher")  # a directory without a model
