from r1kit.curriculum import Curriculum, PassRates
from r1kit.recipe import CurriculumConfig


def test_level_rises_once_the_running_accuracy_reaches_the_bar():
    curriculum = Curriculum(CurriculumConfig(levels=2, raise_at=0.5, window=4))
    curriculum.record([True, False, False])  # window not full yet
    assert curriculum.level == 0
    curriculum.record([False])  # 1/4 < 0.5
    assert curriculum.level == 0
    curriculum.record([True, True])  # last four: F F T T -> 0.5
    assert curriculum.level == 1


def test_level_stops_at_the_configured_task():
    curriculum = Curriculum(CurriculumConfig(levels=1, raise_at=0.5, window=2))
    for _ in range(5):
        curriculum.record([True, True])
    assert curriculum.level == 1


def test_a_new_level_starts_with_a_fresh_window():
    curriculum = Curriculum(CurriculumConfig(levels=3, raise_at=0.5, window=2))
    curriculum.record([True, True])
    curriculum.record([True])
    assert curriculum.level == 1


def test_curriculum_resumes_from_its_state():
    cfg = CurriculumConfig(levels=3, raise_at=0.5, window=4)
    first, second = Curriculum(cfg), Curriculum(cfg)
    first.record([True] * 4)
    first.record([True, False])
    second.load_state_dict(first.state_dict())
    for c in (first, second):
        c.record([True, True])
    assert first.state_dict() == second.state_dict() and first.level == 2


def test_problems_always_or_never_solved_are_settled_after_enough_attempts():
    rates = PassRates(min_attempts=4)
    rates.record("never", [False] * 3)
    rates.record("always", [True] * 4)
    rates.record("sometimes", [True, False, False, False])
    assert not rates.settled("never")  # 3 attempts only
    rates.record("never", [False])
    assert rates.settled("never") and rates.settled("always")
    assert not rates.settled("sometimes") and not rates.settled("unseen")


def test_pass_rates_resume_from_their_state():
    rates, resumed = PassRates(2), PassRates(2)
    rates.record("q", [True])
    resumed.load_state_dict(rates.state_dict())
    resumed.record("q", [True])
    assert resumed.settled("q") and not rates.settled("q")
