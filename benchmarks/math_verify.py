"""r1kit's math checker against HF's math-verify on the same labelled (gold, completion) pairs.

    pip install -e ".[bench]"
    python -m benchmarks.math_verify [--data ../shared/data] [--per-source 150]

(As a module: run as a script, this file's name would hide the math_verify package.)
The set is built from GSM8K test and MATH-500 answers: each gold answer is rewritten into
equivalent completions (LaTeX/plain spellings, \\boxed / <answer> / "the answer is", thousands
separators, reordered sets, fractions as a/b and decimals) and non-equivalent ones (off by one,
a correct number only inside <think>, digits swapped, tuples reversed), plus the classic
false-positive traps by kind (decimals for exact values, a repeated value for the value, a
decimal for a percentage, an answer inside an unclosed <think>) and the spellings issue 16
found missed. Both checkers see identical pairs; math-verify runs in the main thread (its
timeouts use signals). Also: agreement with Math-Verify's own test cases (strict and with
`approximate`, as its cases round floats) and r1kit's worst call on 100k-character
adversarial completions.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

if not __package__:
    sys.exit("run it as `python -m benchmarks.math_verify` (see the docstring)")

from rich.console import Console
from rich.table import Table

from rewards.math import verify

TRAPS = {  # kind -> (gold, completion) pairs that must never verify
    "classic": [
        ("1/2", "<answer>12</answer>"),
        ("12", "<answer>1/2</answer>"),
        ("x^2", "<answer>2x</answer>"),
        ("72", "<think>48 + 24 = 72</think> <answer>71</answer>"),
        ("3", "<answer>3x</answer>"),
        ("\\frac{1}{3}", "<answer>0.3</answer>"),
        ("(1,2)", "<answer>(2,1)</answer>"),
        ("[1,2)", "<answer>(1,2]</answer>"),
        ("2", "<answer>-2</answer>"),
        ("\\pi", "<answer>3.14</answer>"),
    ],
    "decimal for exact": [
        ("\\frac{1}{3}", "<answer>0.333</answer>"),
        ("\\frac{2}{3}", "<answer>0.667</answer>"),
        ("\\frac{1}{7}", "<answer>0.142857</answer>"),
        ("\\pi", "<answer>3.14159265358979323846</answer>"),
        ("\\sqrt{2}", "<answer>1.41421356237</answer>"),
        ("e^{\\pi\\sqrt{163}}", "<answer>640320^3+744</answer>"),
    ],
    "repeated value": [
        ("3", "<answer>3, 3</answer>"),
        ("3", "<answer>\\{3, 3\\}</answer>"),
        ("3", "\\boxed{3} and \\boxed{3}"),
        ("3", "<answer>x=3 or x=3</answer>"),
    ],
    "percent as decimal": [
        ("50\\%", "<answer>0.5</answer>"),
        ("12.5\\%", "<answer>0.125</answer>"),
        ("0.25", "<answer>25\\%</answer>"),
    ],
    "unclosed think": [
        ("42", "<think>the answer is 42"),
        ("42", "<think>\\boxed{42}"),
        ("42", "<think>ok</think> <think><answer>42</answer>"),
    ],
}
# Spellings the checker once missed (issue 16): equal, scored with the other labelled pairs.
SPELLINGS = [
    ("\\frac{1}{3}", "<answer>0.\\overline{3}</answer>"),
    ("\\frac{1}{3}", "<answer>0.(3)</answer>"),
    ("300000", "<answer>3\\times10^{5}</answer>"),
    ("300000", "<answer>3e5</answer>"),
    ("10^5", "<answer>100000</answer>"),
    ("\\frac{1}{2}", "<answer>\\frac{1}{2} cm</answer>"),
    ("5", "<answer>5 dollars</answer>"),
    ("-1", "<answer>i^2</answer>"),
    ("-1", "<answer>e^{i\\pi}</answer>"),
    ("\\emptyset", "<answer>\\{\\}</answer>"),
]
ADVERSARIAL = ["<answer>", "\\(", "\\[", "$", "\\boxed{", "\\boxed{1} and ", "{", "answer is "]


def labelled_pairs(data: Path, per_source: int, seed: int = 0) -> list[tuple[str, str, bool, str]]:
    """(gold, completion, equal, kind) pairs."""
    rng = random.Random(seed)
    pairs = [(g, c, False, "trap") for traps in TRAPS.values() for g, c in traps]
    pairs += [(gold, completion, True, "spelling") for gold, completion in SPELLINGS]
    gsm8k = [
        json.loads(line)["answer"] for line in (data / "gsm8k_test.jsonl").read_text().splitlines()
    ]
    for gold in rng.sample(gsm8k, per_source):
        pairs += _numeric_rewrites(gold, rng)
    math500 = [
        json.loads(line)["answer"] for line in (data / "math500.jsonl").read_text().splitlines()
    ]
    for gold in rng.sample(math500, per_source):
        pairs += _latex_rewrites(gold, rng)
    return pairs


def _numeric_rewrites(gold: str, rng: random.Random) -> list[tuple[str, str, bool, str]]:
    n = int(gold)
    equal = [
        f"<think>working</think> <answer>{n:,}</answer>",
        f"The answer is {n}.",
        f"\\boxed{{{n}}}",
        f"#### {n}",
        f"<answer>{n}.0</answer>",
        f"<answer>${n}$</answer>",
    ]
    wrong = [
        f"<answer>{n + rng.choice([-1, 1])}</answer>",
        f"<think>{n}</think> <answer>{n + 10}</answer>",
        f"\\boxed{{{str(n)[::-1] + '1'}}}",
    ]
    return [(gold, c, True, "gsm8k") for c in rng.sample(equal, 2)] + [
        (gold, c, False, "gsm8k") for c in rng.sample(wrong, 1)
    ]


def _latex_rewrites(gold: str, rng: random.Random) -> list[tuple[str, str, bool, str]]:
    equal = [f"\\boxed{{{gold}}}", f"<think>...</think> <answer>${gold}$</answer>"]
    wrong = []
    frac = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", gold)
    if frac:
        value = Fraction(int(frac.group(2)), int(frac.group(3))) * (-1 if frac.group(1) else 1)
        equal.append(f"The answer is {value.numerator}/{value.denominator}.")
        if _terminates(value.denominator):
            equal.append(f"<answer>{float(value)}</answer>")
        wrong.append(f"<answer>{value.denominator}/{value.numerator}</answer>")
    items = [item.strip() for item in gold.split(",")]
    if len(set(items)) > 1 and not re.search(r"[()\[\]{}]|,\\!", gold):  # a list, not 1,\!000
        equal.append(f"<answer>{', '.join(reversed(items))}</answer>")  # order-free
    if len(set(items)) > 1 and re.fullmatch(r"\([^()]+\)", gold):
        wrong.append(f"<answer>({', '.join(reversed(gold[1:-1].split(',')))})</answer>")
    if re.fullmatch(r"-?\d+", gold):
        wrong.append(f"<answer>{int(gold) + rng.choice([-1, 1])}</answer>")
    else:
        wrong.append(f"\\boxed{{{gold}+1}}")
    return [(gold, c, True, "math500") for c in equal] + [
        (gold, c, False, "math500") for c in wrong
    ]


def _terminates(denominator: int) -> bool:
    """Whether 1/denominator is a finite decimal (no prime factors but 2 and 5)."""
    for p in (2, 5):
        while denominator % p == 0:
            denominator //= p
    return denominator == 1


def run(name: str, check, pairs) -> dict:
    latencies, verdicts = [], []
    for gold, completion, _, _ in pairs:
        start = time.perf_counter()
        try:
            verdicts.append(bool(check(gold, completion)))
        except Exception:  # noqa: BLE001 - a checker crash counts as "not equal"
            verdicts.append(False)
        latencies.append(time.perf_counter() - start)
    labels = [equal for _, _, equal, _ in pairs]
    kinds = [kind for _, _, _, kind in pairs]
    return {
        "name": name,
        "accuracy": sum(v == y for v, y in zip(verdicts, labels, strict=True)) / len(pairs),
        "false_pos": sum(v and not y for v, y in zip(verdicts, labels, strict=True)),
        "false_neg": sum(y and not v for v, y in zip(verdicts, labels, strict=True)),
        "trap_fp": sum(v for v, k in zip(verdicts, kinds, strict=True) if k == "trap"),
        "median_ms": 1000 * statistics.median(latencies),
        "max_ms": 1000 * max(latencies),
        "per_s": len(pairs) / sum(latencies),
    }


def trap_false_positives(check) -> dict[str, int]:
    """Per trap kind, how many traps the checker calls equal."""
    return {kind: sum(_safe(check, g, c) for g, c in traps) for kind, traps in TRAPS.items()}


def agreement(cases_file: Path, approximate: bool) -> tuple[int, int]:
    """(agreeing, total) on Math-Verify's own `verify` assertions."""
    cases = [json.loads(line) for line in cases_file.read_text().splitlines()]
    cases = [c for c in cases if c["kind"] == "verify" and c["equal"] is not None]
    agree = sum(verify(c["gold"], c["pred"], approximate=approximate) == c["equal"] for c in cases)
    return agree, len(cases)


def worst_adversarial_ms(chars: int = 100_000) -> float:
    """r1kit's slowest call on completions of one tag or brace repeated to `chars` characters."""
    worst = 0.0
    for piece in ADVERSARIAL:
        start = time.perf_counter()
        verify("1", piece * (chars // len(piece)))
        worst = max(worst, time.perf_counter() - start)
    return 1000 * worst


def _safe(check, gold: str, completion: str) -> bool:
    try:
        return bool(check(gold, completion))
    except Exception:  # noqa: BLE001 - a checker crash counts as "not equal"
        return False


def math_verify_check(gold: str, completion: str) -> bool:
    from math_verify import parse
    from math_verify import verify as mv_verify

    return mv_verify(parse(f"${gold}$"), parse(completion))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[1] / "../shared/data")
    )
    parser.add_argument("--per-source", type=int, default=150)
    args = parser.parse_args()
    pairs = labelled_pairs(Path(args.data), args.per_source)
    verify("x", "<answer>x+0</answer>")  # start r1kit's sympy helper process before timing
    rows = [run("r1kit", verify, pairs), run("math-verify", math_verify_check, pairs)]
    table = Table(
        "checker",
        "accuracy",
        "false +",
        "false -",
        "trap false +",
        "median ms",
        "max ms",
        "verifies/s",
        title=f"{len(pairs)} labelled pairs (GSM8K + MATH-500 + spellings + traps)",
    )
    for r in rows:
        table.add_row(
            r["name"],
            f"{r['accuracy']:.3f}",
            str(r["false_pos"]),
            str(r["false_neg"]),
            str(r["trap_fp"]),
            f"{r['median_ms']:.2f}",
            f"{r['max_ms']:.0f}",
            f"{r['per_s']:.0f}",
        )
    console = Console(width=120)
    console.print(table)
    traps = Table("trap kind", "pairs", "r1kit false +", "math-verify false +")
    ours, theirs = trap_false_positives(verify), trap_false_positives(math_verify_check)
    for kind, kind_traps in TRAPS.items():
        traps.add_row(kind, str(len(kind_traps)), str(ours[kind]), str(theirs[kind]))
    console.print(traps)
    cases_file = Path(args.data) / "mathverify_cases.jsonl"
    for approximate in (False, True):
        agree, total = agreement(cases_file, approximate)
        console.print(
            f"agreement with Math-Verify's own cases (approximate={approximate}): "
            f"{agree}/{total} = {100 * agree / total:.1f}%"
        )
    console.print(
        f"r1kit worst call on 100k-character adversarial completions: "
        f"{worst_adversarial_ms():.0f} ms"
    )
    console.print(
        f"throughput ratio r1kit / math-verify: {rows[0]['per_s'] / rows[1]['per_s']:.1f}x"
    )


if __name__ == "__main__":
    main()
