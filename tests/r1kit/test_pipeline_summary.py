import json

from r1kit.pipeline_summary import write_summary

EVAL = {"pass@1": 0.5, "ci_low": 0.25, "ci_high": 0.75, "format_rate": 1.0}


def test_the_summary_is_a_row_per_stage_with_each_evaluation_it_has(tmp_path):
    rows = [
        {
            "stage": "teacher",
            "kind": "train",
            "before": EVAL,
            "after": EVAL,
            "wall_s": 90.0,
            "peak_rss_gib": 3.5,
        },
        {"stage": "distill", "kind": "distill", "before": None, "after": EVAL},
    ]
    table = write_summary(tmp_path, rows)
    assert (
        "| teacher | train | 0.50 [0.25, 0.75] | 1.00 | 0.50 [0.25, 0.75] | 1.00 | 1.5 min "
        "| 3.50 GiB |" in table
    )
    assert "| distill | distill | - | - | 0.50 [0.25, 0.75] | 1.00 | - | - |" in table
    assert (tmp_path / "summary.md").read_text() == table
    assert json.loads((tmp_path / "summary.json").read_text()) == rows
    assert (tmp_path / "summary.png").stat().st_size > 0
