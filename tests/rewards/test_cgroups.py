"""Finding where per-run cgroups can be made (on fake hierarchies), and making real ones."""

import logging
from pathlib import Path

import pytest

from rewards import cgroups
from rewards.cgroups import Hierarchy

HYBRID_CGROUP = "9:name=systemd:/\n8:pids:/\n4:memory:/jobs/42\n1:cpu,cpuacct:/\n0::/\n"


@pytest.fixture(autouse=True)
def fresh_warnings():
    cgroups._warn_once.cache_clear()
    yield
    cgroups._warn_once.cache_clear()


def mountinfo(*mounts: tuple[Path, str, str]) -> str:
    """Lines of /proc/self/mountinfo for (mountpoint, fstype, super options) mounts."""
    return "".join(
        f"{30 + i} 23 0:{40 + i} / {point} rw,relatime - {fstype} {fstype} {options}\n"
        for i, (point, fstype, options) in enumerate(mounts)
    )


def test_own_paths_per_controller_and_for_v2():
    assert cgroups.own_paths(HYBRID_CGROUP) == {
        "name=systemd": "/",
        "pids": "/",
        "memory": "/jobs/42",
        "cpu": "/",
        "cpuacct": "/",
        "": "/",
    }


def test_v1_controllers_are_used_under_this_process_s_own_cgroup(tmp_path):
    (tmp_path / "memory" / "jobs" / "42").mkdir(parents=True)
    (tmp_path / "pids").mkdir()
    info = mountinfo(
        (tmp_path / "memory", "cgroup", "rw,memory"),
        (tmp_path / "pids", "cgroup", "rw,pids"),
        (tmp_path / "unified", "cgroup2", "rw"),
    )
    assert cgroups.find(info, HYBRID_CGROUP) == {
        "memory": Hierarchy(1, tmp_path / "memory" / "jobs" / "42"),
        "pids": Hierarchy(1, tmp_path / "pids"),
    }


def fake_v2(root: Path, controllers: str) -> str:
    (root / "app").mkdir(parents=True)
    (root / "app" / "cgroup.controllers").write_text(controllers)
    (root / "app" / "cgroup.subtree_control").write_text("")
    return mountinfo((root, "cgroup2", "rw,nsdelegate"))


def test_v2_controllers_are_enabled_for_the_children_of_this_process_s_cgroup(tmp_path):
    info = fake_v2(tmp_path, "cpu memory pids")
    found = cgroups.find(info, "0::/app\n")
    assert found == {c: Hierarchy(2, tmp_path / "app") for c in ("memory", "pids")}
    assert (tmp_path / "app" / "cgroup.subtree_control").read_text().startswith("+")


def test_a_v2_cgroup_that_refuses_controllers_is_warned_about(tmp_path, caplog):
    info = fake_v2(tmp_path, "memory pids")
    (tmp_path / "app" / "cgroup.subtree_control").unlink()
    (tmp_path / "app" / "cgroup.subtree_control").mkdir()  # writing it now fails, like EBUSY
    with caplog.at_level(logging.WARNING, logger=cgroups.__name__):
        assert cgroups.find(info, "0::/app\n") == {}
    assert "cannot enable" in caplog.text
    assert "memory is capped per process only" in caplog.text
    assert "RLIMIT_NPROC only" in caplog.text


def test_a_controller_no_hierarchy_offers_is_warned_about(tmp_path, caplog):
    info = fake_v2(tmp_path, "cpu pids")
    with caplog.at_level(logging.WARNING, logger=cgroups.__name__):
        found = cgroups.find(info, "0::/app\n")
    assert list(found) == ["pids"]
    assert "does not offer the memory controller" in caplog.text
    assert "RLIMIT_NPROC" not in caplog.text


def test_no_cgroups_at_all_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger=cgroups.__name__):
        assert cgroups.find("", "") == {}
    assert "no cgroup hierarchy has the memory controller" in caplog.text


@pytest.mark.skipif(
    set(cgroups.available()) != set(cgroups.CONTROLLERS),
    reason="this machine does not let this process make memory and pids cgroups",
)
def test_real_cgroups_get_their_limits_and_are_removed():
    run = cgroups.make(64 << 20, 8)
    memory = run.dirs["memory"] / cgroups.LIMIT_FILES[run.versions["memory"]]["memory"]
    pids = run.dirs["pids"] / "pids.max"
    limits = memory.read_text().strip(), pids.read_text().strip()
    run.remove()
    assert limits == (str(64 << 20), "8")
    assert not any(path.exists() for path in run.dirs.values())


def test_a_run_whose_cgroup_cannot_be_made_goes_on_without_it(tmp_path, monkeypatch, caplog):
    missing = Hierarchy(1, tmp_path / "gone")
    monkeypatch.setattr(cgroups, "available", lambda: {"pids": missing})
    with caplog.at_level(logging.WARNING, logger=cgroups.__name__):
        assert cgroups.make(64 << 20, 8) is None
    assert "making the run's cgroups failed" in caplog.text and "RLIMIT_NPROC" in caplog.text
