"""Where a run's Ray actors run: the start line and placement.json's content."""

from r1kit.placement import describe, placement


class _OnRay:
    def __init__(self, key: str, nodes: list[str]):
        self.items = [{key: i, "node": node, "ip": "10.0.0.1"} for i, node in enumerate(nodes)]

    def placement(self) -> list[dict]:
        return self.items


def test_workers_and_ranks_are_listed_with_their_nodes():
    where = placement(_OnRay("worker", ["a" * 56, "b" * 56]), _OnRay("rank", ["b" * 56]))
    assert [w["node"] for w in where["rollout_workers"]] == ["a" * 56, "b" * 56]
    assert describe(where) == (
        "placement: rollout workers 0 -> node aaaaaaaa (10.0.0.1), 1 -> node bbbbbbbb "
        "(10.0.0.1); learner ranks 0 -> node bbbbbbbb (10.0.0.1)"
    )


def test_an_in_process_learner_is_said_so():
    where = placement(_OnRay("worker", ["a" * 56]), object())
    assert where["learner_ranks"] == [] and "learner ranks: in this process" in describe(where)


def test_nothing_on_ray_has_no_placement():
    assert placement(object(), object()) is None
