import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from distill.student import check_same_vocabulary, kept_layers, prune_depth, teacher_model_name
from r1kit.errors import UserError
from r1kit.models import load_tokenizer
from tests.distill.conftest import random_model


def four_layer_model(kind=LlamaConfig):
    return random_model(300, 4, kind=kind)


def test_per_layer_config_lists_follow_the_kept_layers():
    teacher = four_layer_model(Qwen2Config)
    teacher.config.layer_types = ["full_attention", "sliding_attention"] * 2
    student = prune_depth(teacher, [1, 2])
    assert student.config.layer_types == ["sliding_attention", "full_attention"]


def test_every_other_layer_is_a_plain_smaller_model_that_transformers_loads(tmp_path):
    teacher = four_layer_model()
    student = prune_depth(teacher, "every_other")
    assert student.config.num_hidden_layers == 2
    torch.testing.assert_close(
        student.model.layers[1].mlp.up_proj.weight, teacher.model.layers[2].mlp.up_proj.weight
    )
    student.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.tensor([[1, 5, 7, 9]])
    torch.testing.assert_close(loaded(ids).logits, student(ids).logits)


def test_pruned_model_computes_the_kept_layers_of_the_teacher():
    teacher = four_layer_model()
    student = prune_depth(teacher, [0, 3])
    ids = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        hidden = teacher.model.embed_tokens(ids)
        position_ids = torch.arange(3)[None]
        rotary = teacher.model.rotary_emb(hidden, position_ids)
        for i in (0, 3):
            hidden = teacher.model.layers[i](
                hidden, position_embeddings=rotary, position_ids=position_ids, attention_mask=None
            )
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        expected = teacher.lm_head(teacher.model.norm(hidden))
        # No causal mask above: compare the first position only, which attends to itself alone.
        torch.testing.assert_close(student(ids).logits[:, 0], expected[:, 0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("keep", [[], [2, 1], [0, 0], [0, 4], [-1]])
def test_bad_keep_layers_name_the_field(keep):
    with pytest.raises(UserError, match="student.keep_layers"):
        kept_layers(keep, 4)


def test_a_student_with_another_vocabulary_is_refused_with_a_clear_message():
    teacher = load_tokenizer("smollm2-135m-instruct")
    student = load_tokenizer("smollm2-135m-instruct")
    student.add_tokens(["<not-in-the-teacher>"])
    with pytest.raises(UserError, match="different vocabularies.*same tokenizer"):
        check_same_vocabulary(teacher, student, ("teacher", "student"))
    check_same_vocabulary(teacher, load_tokenizer("smollm2-135m-instruct"), ("t", "s"))


def test_a_teacher_run_without_its_final_model_says_how_to_finish_it(tmp_path):
    (tmp_path / "config.yaml").write_text("{}")  # a GRPO run still training
    with pytest.raises(UserError, match="no final model yet.*r1kit train --resume"):
        teacher_model_name(str(tmp_path))
