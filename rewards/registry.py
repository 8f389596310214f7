"""Finding reward functions by name, and adapting TRL- and verl-style functions to one signature.

A recipe names a reward as a built-in (`math`), `package.module:function`, or
`path/to/file.py:function`. Whatever its style, the loaded reward is called as
`fn(prompts, completions, **columns) -> list[float | None]`.
"""

from __future__ import annotations

import asyncio
import difflib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal, NamedTuple, get_args

from rewards.text import as_text

RewardFn = Callable[..., list]
RewardStyle = Literal["auto", "trl", "verl"]  # how a reward function takes its inputs


class RewardError(ValueError):
    """A reward that cannot be found, or that misbehaved on a sample."""


class Builtin(NamedTuple):
    """A built-in reward: where its function is, and a line saying what it scores."""

    spec: str
    description: str


BUILTINS: dict[str, Builtin] = {
    "math": Builtin(
        "rewards.math:math_reward", "1 if the final answer equals the row's `answer` (sympy)"
    ),
    "format": Builtin(
        "rewards.format:format_reward", "1 if the text is <think>...</think> <answer>...</answer>"
    ),
    "countdown": Builtin(
        "rewards.countdown:countdown_reward",
        "1 if the answer's equation uses `nums` and hits `target`",
    ),
    "language": Builtin(
        "rewards.language:language_reward", "share of the reasoning in the target script (R1)"
    ),
    "length": Builtin("rewards.length:overlong_penalty", "DAPO's soft overlong penalty (<= 0)"),
    "cosine_length": Builtin(
        "rewards.length:cosine_length_reward", "correctness scaled by length (cosine)"
    ),
    "code": Builtin(
        "rewards.code:code_reward", "share of tests the extracted program passes, sandboxed"
    ),
}


def load_reward(name: str, kwargs: dict | None = None, style: RewardStyle = "auto") -> LoadedReward:
    """The reward `name` with `kwargs` bound, called as fn(prompts, completions, **columns)."""
    if style not in get_args(RewardStyle):
        allowed = ", ".join(get_args(RewardStyle))
        raise RewardError(f"reward {name!r}: style must be one of {allowed}, not {style!r}")
    spec = _absolute(BUILTINS[name].spec if name in BUILTINS else name)
    fn = _find(spec)
    kwargs = dict(kwargs or {})
    _check_options(name, fn, kwargs, builtin=name in BUILTINS)
    if style == "verl" or (style == "auto" and _looks_like_verl(fn)):
        fn = partial(_call_verl, fn)
    elif inspect.iscoroutinefunction(fn):
        fn = partial(_call_async, fn)
    return LoadedReward(spec, kwargs, style, fn)


@dataclass(frozen=True)
class LoadedReward:
    """A reward with its options bound. It pickles as (spec, kwargs, style), so a worker
    process loads it again by name, file-path rewards included."""

    spec: str
    kwargs: dict
    style: str
    fn: Callable = field(repr=False, compare=False)

    def __call__(self, prompts: list, completions: list, **columns) -> list:
        return self.fn(prompts, completions, **{**columns, **self.kwargs})

    def __reduce__(self):
        return load_reward, (self.spec, self.kwargs, self.style)


def _absolute(spec: str) -> str:
    """`my.py:f` -> `/cwd/my.py:f`, so the spec means the same file in any working directory."""
    target, sep, attr = spec.rpartition(":")
    return f"{Path(target).resolve()}:{attr}" if sep and target.endswith(".py") else spec


def _find(spec: str) -> Callable:
    target, sep, attr = spec.rpartition(":")
    if not sep:
        close = difflib.get_close_matches(spec, BUILTINS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RewardError(
            f"unknown reward {spec!r}{hint}; use package.module:function, "
            f"path/to/file.py:function or a built-in:\n{_builtins_table()}"
        )
    module = _load_file(target) if target.endswith(".py") else _import(target)
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise RewardError(f"reward {spec!r}: {target} has no function {attr!r}")
    return fn


def _builtins_table() -> str:
    """The built-in rewards, a line each: their names and what they score."""
    width = max(map(len, BUILTINS))
    return "\n".join(f"  {name:<{width}}  {b.description}" for name, b in BUILTINS.items())


def _check_options(name: str, fn: Callable, kwargs: dict, builtin: bool) -> None:
    """Refuse options the function does not take. Built-ins swallow columns with `**_`, so
    their options are their parameters with defaults; other functions are checked unless they
    take `**kwargs`."""
    params = inspect.signature(fn).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = [
        name
        for name, p in params.items()
        if name not in ("prompts", "completions")
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        and (not builtin or p.default is not inspect.Parameter.empty)
    ]
    unknown = [k for k in kwargs if k not in named]
    if unknown and (builtin or not open_ended):
        raise RewardError(
            f"reward {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(named) or 'none'}"
        )


def _import(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        raise RewardError(f"reward module {module_name!r} cannot be imported: {err}") from None


def _load_file(path: str):
    file = Path(path).resolve()
    if not file.is_file():
        raise RewardError(f"reward file not found: {path}")
    name = f"r1kit_reward_{file.stem}_{abs(hash(str(file)))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's file: report whatever it raised, with its name
        raise RewardError(
            f"reward file {path} failed to import: {type(err).__name__}: {err}"
        ) from None
    sys.modules[name] = module  # worker processes find it again by path
    return module


def _looks_like_verl(fn: Callable) -> bool:
    params = inspect.signature(fn).parameters
    return "solution_str" in params and "ground_truth" in params


def _call_verl(fn: Callable, prompts: list, completions: list, **columns) -> list:
    """verl's compute_score(data_source, solution_str, ground_truth, extra_info), per sample."""
    truth = columns.get("ground_truth", columns.get("answer"))
    extra_keys = [k for k in columns if k not in ("ground_truth", "answer", "data_source")]
    scores = []
    for i, completion in enumerate(completions):
        result = fn(
            data_source=columns.get("data_source", [None] * len(completions))[i],
            solution_str=as_text(completion),
            ground_truth=None if truth is None else truth[i],
            extra_info={k: columns[k][i] for k in extra_keys},
        )
        scores.append(result["score"] if isinstance(result, dict) else result)
    return scores


def _call_async(fn: Callable, *args, **kwargs) -> list:
    return asyncio.run(fn(*args, **kwargs))
