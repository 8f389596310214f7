"""How a run ends when a node holding a learner rank is lost: the message and exit code."""

import pytest
import typer

from r1kit.cli.runs import fit_until_stopped
from r1kit.errors import NODE_LOST_EXIT, NodeLost
from r1kit.rundir import RunDir


def test_a_lost_node_exits_3_naming_it_and_how_to_continue(tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)

    def fit():
        raise NodeLost("learner rank 1 on node 1a2b (10.0.0.2) was lost: it died")

    with pytest.raises(typer.Exit) as stopped:
        fit_until_stopped(f"r1kit train --resume {run.path}", run, fit, lambda: "")
    assert stopped.value.exit_code == NODE_LOST_EXIT == 3
    said = " ".join(capsys.readouterr().out.split())
    assert "learner rank 1 on node 1a2b (10.0.0.2) was lost: it died" in said
    assert f"continue on the nodes that remain with: r1kit train --resume {run.path}" in said
    assert "(from the start: none was saved)" in said
