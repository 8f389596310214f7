from grpo.health import (
    ACCURACY,
    FORMAT,
    REWARD,
    Monitor,
    as_metrics,
    check,
    entropy_collapse,
    flat_groups,
    reward_hacking,
)


def _steps(series: dict[str, list]) -> list[dict]:
    """Records of steps 1..n from equal-length series of metric values (None: absent)."""
    n = len(next(iter(series.values())))
    return [
        {"step": i + 1, **{key: v[i] for key, v in series.items() if v[i] is not None}}
        for i in range(n)
    ]


def _run(acc: list, fmt: list, reward: list) -> list[dict]:
    """A step-0 evaluation, then training steps with an evaluation where acc is given."""
    first = {"step": 0, ACCURACY: acc[0], FORMAT: fmt[0]}
    return [first] + _steps({ACCURACY: acc[1:], FORMAT: fmt[1:], REWARD: reward})


def test_accuracy_falling_while_format_rises_is_reward_hacking():
    history = _run([0.15, None, 0.02], [0.0, None, 1.0], [0.2, 0.4, 0.5])
    assert "fell 0.150 (step 0) -> 0.020" in reward_hacking(history)


def test_accuracy_falling_while_training_reward_rises_is_reward_hacking():
    history = _run([0.4, 0.4, None, None, 0.2], [1.0] * 5, [0.3, 0.3, 0.6, 0.7])
    assert reward_hacking(history)


def test_accuracy_falling_with_reward_and_format_falling_too_is_not_hacking():
    history = _run([0.4, None, 0.2], [1.0, None, 0.5], [0.6, 0.3])
    assert reward_hacking(history) is None


def test_accuracy_rising_or_within_the_margin_is_not_hacking():
    assert reward_hacking(_run([0.2, None, 0.5], [0.0, None, 1.0], [0.1, 0.9])) is None
    assert reward_hacking(_run([0.2, None, 0.17], [0.0, None, 1.0], [0.1, 0.9])) is None


def test_hacking_is_judged_only_on_a_step_with_an_evaluation():
    history = _run([0.15, 0.02, None], [0.0, 1.0, None], [0.2, 0.5])
    assert reward_hacking(history[:-1]) and reward_hacking(history) is None


def test_most_groups_flat_for_several_steps_is_flagged():
    assert flat_groups(_steps({"zero_variance_frac": [0.5, 0.8, 0.9, 0.75]}))
    assert flat_groups(_steps({"zero_variance_frac": [0.9, 0.9, 0.5, 0.9]})) is None
    assert flat_groups(_steps({"zero_variance_frac": [0.9, 0.9]})) is None


def test_entropy_collapse_is_flagged_after_several_low_steps():
    assert entropy_collapse(_steps({"entropy": [2.0, 1.0, 0.1, 0.05, 0.02]}))
    assert entropy_collapse(_steps({"entropy": [2.0, 1.0, 0.1, 0.5, 0.02]})) is None
    assert entropy_collapse(_steps({"entropy": [2.0, 1.5, 1.2, 1.0, 0.9]})) is None


def test_entropy_collapse_is_measured_from_the_first_step_that_ran():
    """Steps with nothing to learn log no entropy (grpo/objective.py); the first one logged
    is the reference."""
    history = _steps({"entropy": [None, None, 2.0, 1.0, 0.1, 0.05, 0.02]})
    assert "collapsed 2 -> 0.02" in entropy_collapse(history)


def test_metrics_report_every_rule_raised_or_not():
    flags = check(_steps({"zero_variance_frac": [0.9, 0.9, 0.9]}))
    assert as_metrics(flags) == {
        "health/reward_hacking": 0.0,
        "health/flat_groups": 1.0,
        "health/entropy_collapse": 0.0,
    }


def test_monitor_warns_once_when_a_rule_is_raised():
    monitor = Monitor([{"step": 0, "eval/pass@1": 0.1}])
    raised = [monitor.observe(s, {"zero_variance_frac": 0.9})[1] for s in range(1, 6)]
    assert [len(r) for r in raised] == [0, 0, 1, 0, 0] and raised[2][0].startswith("flat_groups")
