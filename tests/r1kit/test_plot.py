import json

from r1kit.plot import health_steps, plot_run


def test_steps_with_a_raised_health_rule_are_the_ones_marked():
    records = [
        {"step": 1, "health/flat_groups": 0.0, "health/reward_hacking": 0.0},
        {"step": 2, "health/flat_groups": 1.0, "health/reward_hacking": 0.0},
        {"step": 3, "reward/total/mean": 0.5},
        {"step": 4, "health/reward_hacking": 1.0},
    ]
    assert health_steps(records) == [2, 4]


def test_a_run_with_health_warnings_plots(tmp_path):
    lines = [{"step": 0, "eval/pass@1": 0.2}, {"step": 1, "eval/pass@1": 0.0, "health/x": 1.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert plot_run(tmp_path).stat().st_size > 10_000
