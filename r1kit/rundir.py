"""The run directory: resolved recipe, metrics, samples, TensorBoard, checkpoints, final model.

runs/<name>/config.yaml  metrics.jsonl  samples.jsonl  tb/  checkpoints/step-N/  final/

Everything here survives a kill at any instant (see r1kit/durable.py): config.yaml, every
checkpoint and final/ appear whole or not at all, log lines are fsynced, and `recover_checkpoint`
turns whatever a kill left into a directory `--resume` continues from.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from r1kit import durable
from r1kit.recipe import Recipe

LOGS = ("metrics.jsonl", "samples.jsonl")
CHECKPOINT_NAME = re.compile(r"step-(\d+)")


class RunDir:
    """One run's files; the only place that knows the layout."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.final = self.path / "final"
        self._tb = None

    def create(self, recipe: Recipe, tensorboard: bool) -> None:
        """A new run: the directory and its resolved recipe."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_config(recipe)
        self.open(tensorboard)

    def started(self) -> bool:
        """Whether the run holds anything but its config.yaml and tb/: results, progress or
        checkpoints (a run stopped by a bad input before its first result holds none)."""
        return any(path.name not in ("config.yaml", "tb") for path in self.path.iterdir())

    def write_config(self, recipe: Recipe) -> None:
        """The fully resolved recipe (atomically), as `--resume` reads it back."""
        text = yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
        durable.write_text(self.path / "config.yaml", text)

    def open(self, tensorboard: bool) -> None:
        """Start (or continue) writing TensorBoard events."""
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.path / "tb"))

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        durable.append_jsonl(self.path / "metrics.jsonl", [{"step": step, **metrics}])
        if self._tb is not None:
            for key, value in metrics.items():
                self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def log_samples(self, step: int, samples: list[dict]) -> None:
        durable.append_jsonl(self.path / "samples.jsonl", [{"step": step, **s} for s in samples])

    def metrics(self) -> list[dict]:
        return durable.read_jsonl(self.path / "metrics.jsonl")

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints / f"step-{step}"

    def saved(self) -> list[tuple[int, Path]]:
        """(step, directory) of each checkpoint, oldest first; other names are not checkpoints."""
        paths = self.checkpoints.iterdir() if self.checkpoints.is_dir() else ()
        return sorted((int(m[1]), p) for p in paths if (m := CHECKPOINT_NAME.fullmatch(p.name)))

    def recover_checkpoint(self) -> tuple[Path | None, list[str]]:
        """After a kill: finish or undo interrupted saves, then the newest checkpoint that
        verifies against its manifest (None: start over), and a line per problem met.

        A broken checkpoint is renamed `step-N.broken` (kept for inspection): the resumed run
        writes that step again, and a broken one must not count towards `keep_last`.
        """
        for parent in (self.path, self.checkpoints):
            if parent.is_dir():
                durable.recover(parent)
        problems = []
        for step, path in reversed(self.saved()):
            manifest, wrong = durable.verify_dir(path)
            if not wrong and manifest.get("step") != step:
                wrong = [f"its manifest is for step {manifest.get('step')}"]
            if not wrong:
                return path, problems
            broken = path.with_name(path.name + ".broken")
            durable.remove_dir(broken)
            path.rename(broken)
            problems.append(f"{path}: {'; '.join(wrong)}; set aside as {broken.name}")
        return None, problems

    def prune_checkpoints(self, keep_last: int) -> None:
        """Delete all but the newest `keep_last` (>= 1) checkpoints."""
        for _, path in self.saved()[:-keep_last]:
            durable.remove_dir(path)

    def discard_logs_from(self, step: int) -> None:
        """Drop metrics and samples of `step` and later: the resumed run writes them again."""
        for name in LOGS:
            path = self.path / name
            if path.is_file():
                kept = [r for r in durable.read_jsonl(path) if r["step"] < step]
                durable.rewrite_jsonl(path, kept)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
