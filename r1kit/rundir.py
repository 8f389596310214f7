"""The run directory: resolved recipe, metrics, samples, trackers, checkpoints, final model.

runs/<name>/config.yaml  metrics.jsonl  samples.jsonl  checkpoints/step-N/  final/  .lock
            best/  (train.save_best: the best held-out model so far, best.json its step)
            tb/  wandb/  trackers.json  (the experiment trackers', r1kit/trackers.py)
            placement.json  (the nodes of the Ray actors, r1kit/placement.py)

Everything here survives a kill at any instant (see r1kit/durable.py): config.yaml, every
checkpoint and final/ appear whole or not at all, log lines are fsynced, and `recover_checkpoint`
turns whatever a kill left into a directory `--resume` continues from. One process writes a
run at a time (`lock`, r1kit/runlock.py); a full or read-only disk is a DiskFault naming the
file, never a half-written one.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from r1kit import durable, runlock
from r1kit.recipe import RecipeError, Section
from r1kit.trackers import IDS_FILE, Trackers

CONFIG = "config.yaml"
LOGS = ("metrics.jsonl", "samples.jsonl")
PLACEMENT = "placement.json"
CHECKPOINT_NAME = re.compile(r"step-(\d+)")
BEST_RECORD = "best.json"  # in best/: {"step": N, "eval/pass@1": x}
FIX_CONFIG = "restore it, or start afresh with --overwrite"
# what a run stopped before its first result holds (config, trackers' files, lock)
NOT_STARTED = (CONFIG, "tb", "wandb", IDS_FILE, runlock.LOCK, PLACEMENT)


class RunDir:
    """One run's files; the only place that knows the layout."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.final = self.path / "final"
        self.best = self.path / "best"
        self.config: str | None = None  # config.yaml as this process wrote or read it
        self.trackers: Trackers | None = None

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """This process is the run's one writer until the block ends (RunBusy if another is)."""
        return runlock.hold(self.path)

    def create(self, recipe: Section, report_to: Sequence[str] = ()) -> None:
        """A new run: the directory and its resolved recipe."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_config(recipe)
        self.open(report_to)

    def started(self) -> bool:
        """Whether the run holds anything but its config.yaml, tb/ and lock: results, progress
        or checkpoints (a run stopped by a bad input before its first result holds none)."""
        return any(path.name not in NOT_STARTED for path in self.path.iterdir())

    def clear(self) -> None:
        """Delete everything the run holds but its lock (held by this process, which must stay
        the same file for a writer that comes next); config.yaml first, so a kill midway
        leaves no run that `--resume` would take for whole."""
        for path in sorted(self.path.iterdir(), key=lambda p: p.name != CONFIG):
            if path.name == runlock.LOCK:
                continue
            if path.is_dir() and not path.is_symlink():
                durable.remove_dir(path)
            else:
                path.unlink()

    def write_config(self, recipe: Section) -> None:
        """The fully resolved recipe (atomically), as `--resume` reads it back; not written
        again when config.yaml holds it already (a resume without changes writes nothing)."""
        text = yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
        if text != self.config:
            durable.write_text(self.path / CONFIG, text)
            self.config = text

    def read_config(self) -> dict:
        """The raw recipe in config.yaml (what `--resume` continues); a RecipeError naming the
        file and line when it is missing or not YAML."""
        path = self.path / CONFIG
        if not path.is_file():
            runlock.check_free(self.path)  # a run that is starting has none yet
            raise RecipeError(f"--resume {self.path}: no {CONFIG} there; is it a run directory?")
        try:
            self.config = path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise RecipeError(f"{path}: unreadable ({err}); {FIX_CONFIG}") from None
        return parse_config(self.config, path)

    def open(self, report_to: Sequence[str] = ()) -> None:
        """Start (or continue) writing: prove the checkpoints' directory writable before any
        step is spent (a DiskFault naming it), then start the experiment trackers."""
        durable.probe(self.checkpoints if self.checkpoints.is_dir() else self.path)
        if report_to:
            config = yaml.safe_load(self.config or "") or {}
            self.trackers = Trackers(report_to, self.path, config)

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        durable.append_jsonl(self.path / "metrics.jsonl", [{"step": step, **metrics}])
        if self.trackers is not None:
            self.trackers.log(step, metrics)

    def write_placement(self, where: dict) -> None:
        """Where the run's Ray actors run now (r1kit/placement.py), atomically."""
        durable.write_text(self.path / PLACEMENT, json.dumps(where, indent=1) + "\n")

    def log_samples(self, step: int, samples: list[dict]) -> None:
        durable.append_jsonl(self.path / "samples.jsonl", [{"step": step, **s} for s in samples])

    def metrics(self) -> list[dict]:
        return durable.read_jsonl(self.path / "metrics.jsonl", keys=("step",))

    @staticmethod
    def best_files(step: int, accuracy: float) -> dict[str, str]:
        """The files best/ holds beside the model: its record, as `best_record` reads it."""
        return {BEST_RECORD: json.dumps({"step": step, "eval/pass@1": accuracy})}

    def best_record(self) -> dict | None:
        """best/'s step and held-out pass@1, or None when the run has no best/ (yet)."""
        path = self.best / BEST_RECORD
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
            float(record["eval/pass@1"])
            int(record["step"])
        except (ValueError, TypeError, KeyError) as err:
            fix = f"delete {self.best} (the next evaluation writes it again) and run again"
            raise durable.DamagedFile(f"{path}: not a best-model record ({err!r}); {fix}") from None
        return record

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
        self.recover()
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

    def recover(self) -> None:
        """Finish or undo what a kill or a failed write left half done (scratch files, a
        set-aside checkpoint): first thing on `--resume`, before anything is written."""
        for parent in (self.path, self.checkpoints):
            if parent.is_dir():
                durable.recover(parent)

    def checkpoint_config(self) -> tuple[int, dict] | None:
        """(step, raw recipe) of the newest checkpoint holding a copy of the config.yaml it
        was trained with (checkpoints of earlier releases hold none: None)."""
        for step, path in reversed(self.saved()):
            with contextlib.suppress(OSError, RecipeError):
                return step, parse_config((path / CONFIG).read_text(), path / CONFIG)
        return None

    def prune_checkpoints(self, keep_last: int) -> None:
        """Delete all but the newest `keep_last` (>= 1) checkpoints."""
        for _, path in self.saved()[:-keep_last]:
            durable.remove_dir(path)

    def discard_logs_from(self, step: int) -> None:
        """Drop metrics and samples of `step` and later: the resumed run writes them again."""
        for name in LOGS:
            path = self.path / name
            if path.is_file():
                kept = [r for r in durable.read_jsonl(path, keys=("step",)) if r["step"] < step]
                durable.rewrite_jsonl(path, kept)

    def close(self) -> None:
        if self.trackers is not None:
            self.trackers.close()


def parse_config(text: str, path: Path) -> dict:
    """A config.yaml's mapping; a RecipeError naming `path:line` when it is not YAML."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        reason = getattr(err, "problem", None) or type(err).__name__
        raise RecipeError(f"{where}: not YAML ({reason}); {FIX_CONFIG}") from None
    if not isinstance(raw, dict):
        raise RecipeError(
            f"{path}: not a recipe (a {type(raw).__name__}, not a mapping); {FIX_CONFIG}"
        )
    return raw
