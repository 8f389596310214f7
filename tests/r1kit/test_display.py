from r1kit.display import SHOWN, Display


def test_a_log_file_gets_one_whole_line_per_step(capsys):
    every_metric = dict.fromkeys(SHOWN, 0.125)  # a line longer than a default 80 columns
    with Display(total=3, start=0) as display:
        display.update(1, {**every_metric, "time/step": 12.0})
        display.update(2, {"reward/total/mean": 0.75, "eval/pass@1": 0.4})
    lines = capsys.readouterr().out.splitlines()
    first = next(line for line in lines if line.startswith("step 1/3: "))
    assert first.startswith("step 1/3: reward 0.125, held-out acc 0.125")
    assert first.endswith("tokens/s 0.125, s/step 12")
    assert "step 2/3: reward 0.75, held-out acc 0.4" in lines


def test_a_raised_health_rule_is_shown_as_a_warning(capsys):
    with Display(total=2, start=0) as display:
        display.update(1, {"reward/total/mean": 0.5, "health/reward_hacking": 1.0})
        display.update(2, {"reward/total/mean": 0.5, "health/reward_hacking": 0.0})
    lines = capsys.readouterr().out.splitlines()
    assert "step 1/2: reward 0.5, WARNING reward_hacking" in lines
    assert "step 2/2: reward 0.5" in lines


def test_tool_calls_and_errors_are_shown_when_a_run_uses_tools(capsys):
    with Display(total=1, start=0) as display:
        display.update(1, {"reward/total/mean": 0.5, "tools/calls_per_completion": 1.5})
    assert "step 1/1: reward 0.5, tool calls 1.5" in capsys.readouterr().out.splitlines()
