"""The run directory: resolved recipe, metrics, samples, TensorBoard, checkpoints, final model.

runs/<name>/config.yaml  metrics.jsonl  samples.jsonl  tb/  checkpoints/step-N/  final/
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from r1kit.recipe import Recipe


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

    def write_config(self, recipe: Recipe) -> None:
        """The fully resolved recipe, as `--resume` reads it back."""
        (self.path / "config.yaml").write_text(
            yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
        )

    def open(self, tensorboard: bool) -> None:
        """Start (or continue) writing TensorBoard events."""
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.path / "tb"))

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        _append_jsonl(self.path / "metrics.jsonl", {"step": step, **metrics})
        if self._tb is not None:
            for key, value in metrics.items():
                self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def log_samples(self, step: int, samples: list[dict]) -> None:
        for sample in samples:
            _append_jsonl(self.path / "samples.jsonl", {"step": step, **sample})

    def metrics(self) -> list[dict]:
        path = self.path / "metrics.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints / f"step-{step}"

    def latest_checkpoint(self) -> Path | None:
        done = [p for p in self.checkpoints.glob("step-*") if (p / "trainer_state.pt").is_file()]
        return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)

    def prune_checkpoints(self, keep_last: int) -> None:
        done = sorted(self.checkpoints.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
        for old in done[:-keep_last]:
            shutil.rmtree(old)

    def truncate_after(self, step: int) -> None:
        """Drop log lines past `step`: a resumed run rewrites them, exactly as before."""
        for name in ("metrics.jsonl", "samples.jsonl"):
            path = self.path / name
            if path.is_file():
                kept = [
                    ln for ln in path.read_text().splitlines() if json.loads(ln)["step"] <= step
                ]
                path.write_text("".join(line + "\n" for line in kept))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _append_jsonl(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
