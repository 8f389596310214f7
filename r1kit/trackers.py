"""Experiment trackers (`output.report_to`): every step's metrics, under the same names, and the
run's recipe as its config, to TensorBoard, Weights & Biases, MLflow or trackio.

Each goes through its own library, each is optional (`pip install r1kit[wandb]` ...) and each
works offline (W&B's offline mode, an MLflow file store, trackio's local store; docs/runs.md).
A tracker is a convenience, never a reason to lose a run: one that cannot start, or fails
later, is a warning naming it and the reason, and the run goes on without it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from r1kit import durable
from r1kit.recipe import dotted_fields

IDS_FILE = "trackers.json"  # the tracker runs' ids, so a resumed run logs to the same ones
PROJECT = "r1kit"  # the W&B / MLflow experiment / trackio project unless the environment says


class Tracker(Protocol):
    def log(self, step: int, metrics: dict[str, float]) -> None: ...
    def close(self) -> None: ...


class TensorBoard:
    """Event files under the run's tb/; opened at the first step logged, so that a resumed run
    purges the steps it writes again (`purge_step`)."""

    def __init__(self, run_dir: Path, name: str, config: dict, ids: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter  # a missing tensorboard fails here

        self.open = functools.partial(SummaryWriter, str(run_dir / "tb"))
        self.config, self.writer = config, None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.writer is None:
            self.writer = self.open(purge_step=step)
            self.writer.add_text("recipe", f"```\n{json.dumps(self.config, indent=2)}\n```", step)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class WandB:
    """A W&B run (files under the run's wandb/); WANDB_MODE=offline keeps it on disk for
    `wandb sync` later. Project: WANDB_PROJECT, else r1kit."""

    def __init__(self, run_dir: Path, name: str, config: dict, ids: dict) -> None:
        import wandb

        ids.setdefault("wandb", secrets.token_hex(4))
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", PROJECT),
            name=name,
            id=ids["wandb"],
            resume="allow",
            dir=str(run_dir),
            config=config,
            settings=wandb.Settings(console="off", silent=True),
        )

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        import wandb

        self.run.finish()
        # finish() can return before W&B's service process has written the run's last records;
        # teardown waits for it (its own atexit hook is unreliable beside multiprocessing).
        wandb.teardown()


class MLflow:
    """An MLflow run in MLFLOW_TRACKING_URI, else in a file store beside the runs
    (<output.dir>/mlruns, which `mlflow ui --backend-store-uri` opens); experiment:
    MLFLOW_EXPERIMENT_NAME, else r1kit."""

    def __init__(self, run_dir: Path, name: str, config: dict, ids: dict) -> None:
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if uri is None:  # MLflow 3 keeps its file store only when asked to (mlflow-skinny has
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # no database backend)
            uri = (run_dir.parent / "mlruns").resolve().as_uri()
        self.client = MlflowClient(uri)
        if "mlflow" in ids:  # a resumed run: the same MLflow run, running again
            self.run_id = ids["mlflow"]
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self._new_run(name, config)
            ids["mlflow"] = self.run_id
        self.client.log_text(self.run_id, json.dumps(config, indent=2), "recipe.json")

    def _new_run(self, name: str, config: dict) -> str:
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", PROJECT)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        run_id = self.client.create_run(experiment_id, run_name=name).info.run_id
        from mlflow.entities import Param

        params = [Param(key, str(value)[:6000]) for key, value in dotted_fields(config).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params a call
            self.client.log_batch(run_id, params=params[start : start + 100])
        return run_id

    def log(self, step: int, metrics: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(mlflow_key(k), float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


class Trackio:
    """A trackio run in its local store (TRACKIO_DIR, else trackio's default); project:
    TRACKIO_PROJECT, else r1kit; `trackio show` opens the dashboard."""

    def __init__(self, run_dir: Path, name: str, config: dict, ids: dict) -> None:
        import trackio

        project = os.environ.get("TRACKIO_PROJECT", PROJECT)
        self.run = trackio.init(project=project, name=name, config=config, resume="allow")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()


KINDS: dict[str, type] = {
    "tensorboard": TensorBoard,
    "wandb": WandB,
    "mlflow": MLflow,
    "trackio": Trackio,
}


def mlflow_key(name: str) -> str:
    """MLflow allows only letters, digits and `_-. :/` in a metric name, read as a file path:
    `eval/pass@1` is logged there as `eval/pass_at_1`, and a custom reward's path
    (`reward//abs/path.py:fn/mean`) loses its empty and `.` parts."""
    name = re.sub(r"[^\w\-. :/]", "_", name.replace("@", "_at_"))
    return "/".join(part for part in name.split("/") if part not in ("", ".", ".."))


class Trackers:
    """The trackers a run reports to; each failure is a warning and drops that tracker."""

    def __init__(self, names: Sequence[str], run_dir: Path, config: dict) -> None:
        ids_path = run_dir / IDS_FILE
        ids = json.loads(ids_path.read_text()) if ids_path.is_file() else {}
        self.active: dict[str, Tracker] = {}
        for name in names:
            try:
                self.active[name] = KINDS[name](run_dir, run_dir.name, config, ids)
            except ImportError as err:
                _warn(name, f"{err}; pip install 'r1kit[{name}]'", "start")
            except Exception as err:  # any library's own error: the run goes on without it
                _warn(name, f"{type(err).__name__}: {err}", "start")
        if ids:
            durable.write_text(ids_path, json.dumps(ids))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for name, tracker in list(self.active.items()):
            try:
                tracker.log(step, metrics)
            except Exception as err:
                _warn(name, f"{type(err).__name__}: {err}", "log")
                del self.active[name]

    def close(self) -> None:
        for name, tracker in self.active.items():
            try:
                tracker.close()
            except Exception as err:
                _warn(name, f"{type(err).__name__}: {err}", "close")
        self.active = {}


def _warn(name: str, reason: str, doing: str) -> None:
    warnings.warn(
        f"output.report_to: {name} failed to {doing} ({reason}); the run goes on without it",
        stacklevel=3,
    )
