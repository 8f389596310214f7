"""Each experiment tracker stores the metrics and the recipe offline, read back from its own store;
a tracker that fails is a warning, never a lost run."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from r1kit.cli import app
from r1kit.recipe import validate
from r1kit.rundir import RunDir
from r1kit.trackers import Trackers, mlflow_key

CONFIG = {"seed": 3, "rollout": {"group_size": 4}, "rewards": [{"name": "math"}]}
STEPS = {1: {"reward": 0.25, "eval/pass@1": 0.1}, 2: {"reward": 0.75, "eval/pass@1": 0.3}}


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """Every tracker writes under tmp_path and nothing reaches a network or the home directory."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    monkeypatch.setattr("trackio.utils.TRACKIO_DIR", tmp_path / "trackio", raising=False)
    monkeypatch.setattr("trackio.sqlite_storage.TRACKIO_DIR", tmp_path / "trackio", raising=False)
    for var in ("MLFLOW_TRACKING_URI", "WANDB_PROJECT", "TRACKIO_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    run_dir = tmp_path / "runs" / "demo"
    run_dir.mkdir(parents=True)
    return run_dir


def _log(run_dir: Path, names: list[str], steps: dict = STEPS) -> None:
    trackers = Trackers(names, run_dir, CONFIG)
    assert list(trackers.active) == names
    for step, metrics in steps.items():
        trackers.log(step, metrics)
    trackers.close()


def read_tensorboard(run_dir: Path) -> tuple[dict, str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    scalars = {
        tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]
    }
    recipe = events.Tensors("recipe/text_summary")[0].tensor_proto.string_val[0].decode()
    return scalars, recipe


def read_wandb(run_dir: Path) -> tuple[dict, dict]:
    """History and config from the offline run's transaction log (LevelDB-style records of
    wandb's protobufs, in 32 KiB blocks after a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data, records, chunk, block = path.read_bytes(), [], b"", 32768
    pos = 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a record header never straddles a block: padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    history, config = {}, {}
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = {
                i.key or "/".join(i.nested_key): json.loads(i.value_json)
                for i in record.history.item
            }
            step = items.pop("_step")
            history[step] = {k: v for k, v in items.items() if not k.startswith("_")}
        elif kind in ("run", "config"):  # the config comes with the run, updates after it
            updates = (record.run.config if kind == "run" else record.config).update
            config |= {i.key: json.loads(i.value_json) for i in updates}
    return history, config


def read_mlflow(run_dir: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient((run_dir.parent / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("r1kit").experiment_id])
    return client, run


def read_trackio(run_dir: Path) -> tuple[dict, dict]:
    from trackio.sqlite_storage import SQLiteStorage

    logs = SQLiteStorage.get_logs("r1kit", run_dir.name)
    history = {
        row["step"]: {k: v for k, v in row.items() if k not in ("step", "timestamp")}
        for row in logs
    }
    return history, SQLiteStorage.get_run_config("r1kit", run_dir.name)


def test_tensorboard_stores_every_metric_and_the_recipe(offline):
    _log(offline, ["tensorboard"])
    scalars, recipe = read_tensorboard(offline)
    assert scalars == {
        "reward": {1: 0.25, 2: 0.75},
        "eval/pass@1": {1: pytest.approx(0.1), 2: pytest.approx(0.3)},
    }
    assert json.loads(recipe.strip("`\n")) == CONFIG


def test_wandb_offline_stores_every_metric_and_the_recipe_as_config(offline):
    _log(offline, ["wandb"])
    history, config = read_wandb(offline)
    assert history == STEPS
    assert config["rollout"] == {"group_size": 4} and config["seed"] == 3


def test_mlflow_file_store_holds_every_metric_and_the_recipe_as_params(offline):
    _log(offline, ["mlflow"])
    client, run = read_mlflow(offline)
    assert run.info.run_name == "demo" and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "eval/pass_at_1")
    assert [(m.step, m.value) for m in history] == [(1, 0.1), (2, 0.3)]
    assert run.data.params["rollout.group_size"] == "4"


def test_trackio_local_store_holds_every_metric_and_the_recipe(offline):
    _log(offline, ["trackio"])
    history, config = read_trackio(offline)
    assert history == STEPS
    assert config["rollout"] == {"group_size": 4}


def test_mlflow_names_differ_only_where_mlflow_forbids_a_character():
    assert mlflow_key("time/generate") == "time/generate"
    assert mlflow_key("eval/sampled/pass@4") == "eval/sampled/pass_at_4"
    assert mlflow_key("reward//work/even.py:even/mean") == "reward/work/even.py:even/mean"


def test_a_resumed_run_logs_to_the_same_tracker_runs(offline):
    _log(offline, ["wandb", "mlflow"], {1: STEPS[1]})
    _log(offline, ["wandb", "mlflow"], {2: STEPS[2]})
    run_id = json.loads((offline / "trackers.json").read_text())["wandb"]
    assert len(list(offline.glob(f"wandb/offline-run-*/run-{run_id}.wandb"))) == 2  # 2 sessions
    client, run = read_mlflow(offline)  # one MLflow run holding both steps
    assert [m.step for m in client.get_metric_history(run.info.run_id, "reward")] == [1, 2]


def test_a_tracker_that_cannot_start_is_a_warning_and_the_others_go_on(offline, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://nowhere")
    with pytest.warns(
        UserWarning, match=r"output.report_to: mlflow failed to start \(.*nosuchscheme"
    ):
        trackers = Trackers(["mlflow", "tensorboard"], offline, CONFIG)
    assert list(trackers.active) == ["tensorboard"]
    trackers.log(1, STEPS[1])
    trackers.close()
    assert read_tensorboard(offline)[0]["reward"] == {1: 0.25}


def test_a_tracker_that_fails_mid_run_is_dropped_with_a_warning(offline):
    trackers = Trackers(["tensorboard"], offline, CONFIG)
    trackers.log(1, STEPS[1])
    with pytest.warns(UserWarning, match="tensorboard failed to log"):
        trackers.log(2, {"reward": "not a number"})  # type: ignore[dict-item]
    assert trackers.active == {}
    trackers.close()
    assert read_tensorboard(offline)[0]["reward"] == {1: 0.25}


def test_a_training_run_reports_the_same_metrics_and_its_recipe_to_every_tracker(
    offline, tiny_recipe
):
    raw = tiny_recipe(
        train={"steps": 2, "save_every": 0},
        output={"report_to": ["tensorboard", "wandb", "mlflow", "trackio"]},
    )
    path = offline.parent / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code == 0, result.output
    run = RunDir(validate(raw).run_dir())
    logged = {r["step"]: set(r) - {"step"} for r in run.metrics()}
    config = yaml.safe_load((run.path / "config.yaml").read_text())
    tensorboard, _ = read_tensorboard(run.path)
    assert {step: {k for k in tensorboard if step in tensorboard[k]} for step in logged} == logged
    for history, stored in (read_wandb(run.path), read_trackio(run.path)):
        assert {step: set(metrics) for step, metrics in history.items()} == logged
        assert {k: stored[k] for k in config} == config
    client, mlflow_run = read_mlflow(run.path)
    assert set(mlflow_run.data.metrics) == {mlflow_key(k) for keys in logged.values() for k in keys}
    assert mlflow_run.data.params["rollout.group_size"] == str(config["rollout"]["group_size"])
