"""Stage 2, rejection sampling: which generated traces the student learns from, and a report
of acceptance per problem and overall."""

from __future__ import annotations

from collections import defaultdict

from distill.recipe import FilterConfig

THINK_CLOSE = "</think>"


def accepted(record: dict, cfg: FilterConfig) -> bool:
    """Every threshold met, the reasoning closed, the length within bounds."""
    for name, lowest in cfg.thresholds().items():
        value = record["rewards"].get(name)
        if value is None or value < lowest:
            return False
    if cfg.require_think_close and THINK_CLOSE not in record["completion"]:
        return False
    if record["tokens"] < cfg.min_tokens:
        return False
    return cfg.max_tokens is None or record["tokens"] <= cfg.max_tokens


def select(records: list[dict], cfg: FilterConfig) -> tuple[list[dict], dict]:
    """The kept records (problem order) and the report: per problem generated / accepted /
    kept, overall acceptance, and the problems with none accepted."""
    by_problem: dict[int, list[dict]] = defaultdict(list)
    for record in records:
        by_problem[record["problem"]].append(record)
    kept, per_problem = [], []
    for problem, samples in sorted(by_problem.items()):
        good = [r for r in samples if accepted(r, cfg)]
        chosen = _distinct(good) if cfg.deduplicate else good
        if cfg.shortest_first:
            chosen = sorted(chosen, key=lambda r: r["tokens"])  # stable: ties keep sample order
        chosen = chosen[: cfg.max_per_problem]
        kept += chosen
        per_problem.append(
            {
                "problem": problem,
                "generated": len(samples),
                "accepted": len(good),
                "kept": len(chosen),
            }
        )
    total = sum(p["generated"] for p in per_problem)
    report = {
        "generated": total,
        "accepted": sum(p["accepted"] for p in per_problem),
        "kept": len(kept),
        "acceptance": sum(p["accepted"] for p in per_problem) / max(total, 1),
        "problems": len(per_problem),
        "problems_without_accepted": [p["problem"] for p in per_problem if not p["accepted"]],
        "per_problem": per_problem,
    }
    return kept, report


def _distinct(records: list[dict]) -> list[dict]:
    """The first of each completion text, whitespace differences aside."""
    seen, out = set(), []
    for record in records:
        key = " ".join(record["completion"].split())
        if key not in seen:
            seen.add(key)
            out.append(record)
    return out
