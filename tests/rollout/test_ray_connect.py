"""Joining the clusters users have: token authentication (Ray's default since 2.60) found where
Ray keeps it, and a failure that says why (no cluster, no token, a wrong one) and what to set."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from rollout.ray_pool import connect_failure, token_source
from tests import ray_nodes

pytest.importorskip("ray", reason="Ray is not installed (scripts/setup.sh installs it)")
FAILED = "Failed to connect to Ray cluster at 10.0.0.1:6379"  # what Ray says to a bad token


@pytest.fixture
def no_token(tmp_path, monkeypatch):
    """A process with no Ray token anywhere Ray looks."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_auto_with_no_cluster_says_how_to_start_one():
    message = connect_failure("auto", "Could not find any running Ray instance. Please ...")
    assert "no Ray cluster is running" in message and "ray start --head" in message


def test_a_refused_connection_without_a_token_says_where_to_put_one(no_token):
    message = connect_failure("auto", FAILED)
    assert "this process has no token" in message and "RAY_AUTH_TOKEN" in message
    assert "~/.ray/auth_token" in message and FAILED in message


def test_a_refused_connection_with_a_token_names_where_it_came_from(no_token, monkeypatch):
    (no_token / ".ray").mkdir()
    (no_token / ".ray" / "auth_token").write_text("0" * 32)
    assert token_source() == str(no_token / ".ray" / "auth_token")
    assert f"the token from {no_token}/.ray/auth_token may not be" in connect_failure(
        "auto", FAILED
    )
    monkeypatch.setenv("RAY_AUTH_TOKEN", "1" * 32)  # Ray's own order: the variable first
    assert "the token from RAY_AUTH_TOKEN may not be" in connect_failure("auto", FAILED)


def test_auth_disabled_by_the_user_is_named(no_token, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert "RAY_AUTH_MODE=disabled is set" in connect_failure("h:1", FAILED)


# --- a real cluster started with `ray start --head` (token authentication on by default) ---


PORT = 6397


@pytest.fixture
def head():
    """A one-node cluster started as a user starts one (Ray's default: a token), always stopped,
    by its own processes' ids."""
    with ray_nodes.head(PORT, cpus=2) as cluster:
        assert "Token authentication is enabled" in cluster.said  # nothing was set
        yield cluster.address


def _train(tmp_path, tiny_recipe, address: str, **env: str) -> subprocess.CompletedProcess:
    raw = tiny_recipe(rollout={"workers": 1}, train={"steps": 1, "save_every": 0})
    raw["ray"] = {"address": address, "cpus_per_worker": 1}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return ray_nodes.train(str(path), "--overwrite", **env)


@pytest.mark.slow
def test_a_token_cluster_is_joined_with_auto_and_no_variable_set(tmp_path, tiny_recipe, head):
    result = _train(tmp_path, tiny_recipe, "auto")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.slow
def test_a_wrong_token_exits_2_saying_so(tmp_path, tiny_recipe, head):
    result = _train(tmp_path, tiny_recipe, head, RAY_AUTH_TOKEN="f" * 32)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    said = " ".join((result.stdout + result.stderr).split())
    assert "the token from RAY_AUTH_TOKEN may not be the cluster's" in said


@pytest.mark.slow
def test_a_local_run_beside_a_running_cluster_starts_its_own(tmp_path, tiny_recipe, head):
    result = _train(tmp_path, tiny_recipe, "local")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
