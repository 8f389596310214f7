from distill.examples import end_of_turn, make_examples, to_example
from distill.traces import Trace
from r1kit.models import load_tokenizer
from r1kit.recipe import TemplateConfig
from r1kit.templates import render

TRACE = Trace(
    [{"role": "user", "content": "What is 2 + 2?"}], "<think>2+2=4</think> <answer>4</answer>"
)


def test_prompt_is_what_evaluation_renders_and_the_target_ends_the_turn():
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    cfg = TemplateConfig(name="chat")
    example = to_example(TRACE, tokenizer, cfg, end_of_turn(tokenizer))
    assert tokenizer.decode(example.prompt_ids) == render(cfg, tokenizer, "What is 2 + 2?")
    assert tokenizer.decode(example.target_ids) == "2+2=4</think> <answer>4</answer><|im_end|>"
    assert example.target_ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_without_prefill_the_target_opens_think_itself():
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    cfg = TemplateConfig(name="chat", prefill_think=False, system_prompt="")
    example = to_example(TRACE, tokenizer, cfg, end_of_turn(tokenizer))
    assert tokenizer.decode(example.target_ids).startswith("<think>2+2=4")


def test_examples_over_max_length_are_left_out_and_counted():
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    long = Trace(TRACE.prompt, "<think>" + "very " * 200 + "</think>")
    kept, dropped = make_examples([TRACE, long], tokenizer, TemplateConfig(name="chat"), 150)
    assert (len(kept), dropped) == (1, 1)
