"""Training and held-out rows from a built-in task, a local file or a Hub dataset.

Every row is a dict with `prompt` (the question), `answer`, and the recipe's extra columns.
`PromptStream` hands out training rows endlessly and resumably: its whole position is
`(epoch, index)` (plus its curriculum or pass rates, r1kit/curriculum.py), saved in checkpoints.
"""

from __future__ import annotations

import random
from pathlib import Path

from r1kit.curriculum import Curriculum, PassRates
from r1kit.errors import UserError
from r1kit.recipe import DATA_SUFFIXES, DataConfig
from r1kit.synthetic import BUILTIN_TASKS, GeneratedTask, builtin_task, easier


class DataError(UserError):
    """The data a recipe names cannot be loaded or lacks a column."""


class PromptStream:
    """An endless, resumable stream of training rows (a finite dataset is reshuffled per epoch).
    With a curriculum, built-in rows come from `levels[curriculum.level]`; with pass rates,
    settled dataset problems are skipped."""

    def __init__(
        self,
        rows: list[dict] | GeneratedTask,
        seed: int,
        shuffle: bool = True,
        curriculum: tuple[Curriculum, list[GeneratedTask]] | None = None,
        pass_rates: PassRates | None = None,
    ):
        self.rows = rows
        self.seed = seed
        self.shuffle = shuffle
        self.curriculum, self.levels = curriculum or (None, [])
        self.pass_rates = pass_rates
        self.epoch = 0
        self.index = 0
        self._order: list[int] | None = None

    def take(self, count: int) -> list[dict]:
        return [self._next() for _ in range(count)]

    @property
    def adaptive(self) -> bool:
        """Whether the stream learns from outcomes (`record`)."""
        return self.curriculum is not None or self.pass_rates is not None

    def record(self, rows: list[dict], solved: list[list[bool]]) -> None:
        """Which completions of each row's group were correct."""
        for row, outcomes in zip(rows, solved, strict=True):
            if self.curriculum is not None:
                self.curriculum.record(outcomes)
            if self.pass_rates is not None:
                self.pass_rates.record(row["prompt"], outcomes)

    def metrics(self) -> dict[str, float]:
        metrics = {"curriculum/level": self.curriculum.level} if self.curriculum else {}
        if self.pass_rates is not None:
            settled = sum(self.pass_rates.settled(q) for q in self.pass_rates.counts)
            metrics["data/settled_problems"] = settled
        return metrics

    def state_dict(self) -> dict:
        state = {"epoch": self.epoch, "index": self.index}
        if self.curriculum is not None:
            state["curriculum"] = self.curriculum.state_dict()
        if self.pass_rates is not None:
            state["pass_rates"] = self.pass_rates.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.index, self._order = state["epoch"], state["index"], None
        if self.curriculum is not None and "curriculum" in state:
            self.curriculum.load_state_dict(state["curriculum"])
        if self.pass_rates is not None and "pass_rates" in state:
            self.pass_rates.load_state_dict(state["pass_rates"])

    def _next(self) -> dict:
        if isinstance(self.rows, GeneratedTask):
            task = self.levels[self.curriculum.level] if self.curriculum else self.rows
            while (row := task.train_row(self.index)) is None:
                self.index += 1
            self.index += 1
            return row
        for _ in range(len(self.rows)):  # skip settled problems, unless all are
            row = self._next_row()
            if self.pass_rates is None or not self.pass_rates.settled(row["prompt"]):
                break
        return row

    def _next_row(self) -> dict:
        if self.index == len(self.rows):
            self.epoch, self.index, self._order = self.epoch + 1, 0, None
        if self._order is None:
            self._order = list(range(len(self.rows)))
            if self.shuffle:
                random.Random(f"{self.seed}/{self.epoch}").shuffle(self._order)
        row = self.rows[self._order[self.index]]
        self.index += 1
        return row


def load_data(cfg: DataConfig, seed: int) -> tuple[PromptStream, list[dict]]:
    """The training stream and the held-out rows the recipe asks for."""
    if cfg.source in BUILTIN_TASKS:
        task = builtin_task(cfg.source, cfg.arithmetic, cfg.countdown, seed, cfg.eval_size)
        curriculum = None
        if cfg.curriculum.levels:
            top = cfg.curriculum.levels  # easier levels need no held-out set: fewer digits/numbers
            levels = [
                builtin_task(cfg.source, *easier(cfg.arithmetic, cfg.countdown, top - k), seed, 0)
                for k in range(top)
            ]
            curriculum = (Curriculum(cfg.curriculum), [*levels, task])
        return PromptStream(task, seed, cfg.shuffle, curriculum), task.eval_rows
    rows = _normalised(_load_split(cfg, cfg.split), cfg, cfg.split)
    if cfg.eval_split is not None:
        eval_rows = _normalised(_load_split(cfg, cfg.eval_split), cfg, cfg.eval_split)
        eval_rows = eval_rows[: cfg.eval_size]
    else:
        if cfg.eval_size >= len(rows):
            raise DataError(
                f"data.eval_size={cfg.eval_size} leaves no training rows out of {len(rows)} "
                f"in {cfg.source}; lower it or set data.eval_split"
            )
        random.Random(seed).shuffle(rows)
        rows, eval_rows = rows[: len(rows) - cfg.eval_size], rows[len(rows) - cfg.eval_size :]
    pass_rates = PassRates(cfg.pass_rate.min_attempts) if cfg.pass_rate.enabled else None
    return PromptStream(rows, seed, cfg.shuffle, pass_rates=pass_rates), eval_rows


def hub_dataset(cfg: DataConfig) -> str | None:
    """The Hub dataset id `cfg.source` names; None for a built-in task or a local file or
    directory (what `_load_split` reads from disk)."""
    local = cfg.source in BUILTIN_TASKS or Path(cfg.source).suffix in DATA_SUFFIXES
    return None if local or Path(cfg.source).exists() else cfg.source


def _load_split(cfg: DataConfig, split: str) -> list[dict]:
    import datasets  # slow to import; only file and Hub sources need it

    path = Path(cfg.source)
    if path.suffix in DATA_SUFFIXES:
        _check_has_rows(path)
    try:
        if path.suffix in DATA_SUFFIXES:
            kind = {".jsonl": "json", ".json": "json"}.get(path.suffix, path.suffix[1:])
            dataset = datasets.load_dataset(kind, data_files={split: str(path)}, split=split)
        else:
            dataset = datasets.load_dataset(cfg.source, cfg.subset, split=split)
    except Exception as err:  # datasets raises many types; the user needs the source and why
        raise DataError(
            f"data.source {cfg.source!r} (split {split!r}) could not be loaded: {err}"
        ) from None
    return [dict(row) for row in dataset]


def _check_has_rows(path: Path) -> None:
    """Refuse a data file with nothing to train on, saying why (datasets' own error does not)."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    if not lines:
        raise DataError(f"data.source {str(path)!r}: the file is empty (no rows)")
    if path.suffix == ".csv" and len(lines) == 1:
        raise DataError(f"data.source {str(path)!r}: only a header line, no rows")


def _normalised(rows: list[dict], cfg: DataConfig, split: str) -> list[dict]:
    """Rows as the trainer reads them; a bad row is found here, before training starts."""
    places = _row_places(cfg, split, len(rows))
    return [_normalise(row, cfg, place) for row, place in zip(rows, places, strict=True)]


def _row_places(cfg: DataConfig, split: str, count: int) -> list[str]:
    """How a message names each row: file:line in a .jsonl file (whose blank lines `datasets`
    skips), else the split and the row's number."""
    path = Path(cfg.source)
    if path.suffix == ".jsonl":
        lines = [n for n, line in enumerate(path.read_bytes().splitlines(), 1) if line.strip()]
        if len(lines) == count:
            return [f"{path}:{n}" for n in lines]
    return [f"{cfg.source!r} ({split}) row {i}" for i in range(1, count + 1)]


def _normalise(row: dict, cfg: DataConfig, where: str) -> dict:
    wanted = [cfg.prompt_column, cfg.answer_column, *cfg.columns]
    missing = [column for column in wanted if column not in row]
    if missing:
        raise DataError(
            f"data.source {where}: column(s) {missing} not found; "
            f"the rows have {sorted(row)} (set data.prompt_column / answer_column / columns)"
        )
    prompt, answer = row[cfg.prompt_column], row[cfg.answer_column]
    if not isinstance(prompt, str) or blank(prompt):
        raise DataError(f"data.source {where}: column {cfg.prompt_column!r} is empty or missing")
    if blank(answer):
        raise DataError(f"data.source {where}: column {cfg.answer_column!r} is empty or missing")
    extra = {column: row[column] for column in cfg.columns}
    return {**extra, "prompt": prompt, "answer": str(answer)}


def blank(value: object) -> bool:
    """Whether a prompt or an answer is missing: None, or text that is empty or only spaces
    (a blank gold answer would make every completion's reward meaningless)."""
    return value is None or not str(value).strip()
