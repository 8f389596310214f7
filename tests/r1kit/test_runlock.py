"""One writer per run: a live holder refuses a second one; a dead one (SIGKILL) never blocks."""

import os
import shlex
import signal
import sys
import time

import pytest

from r1kit.runlock import LOCK, RunBusy, check_free, hold


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, lock_holder):
    holder, _ = lock_holder(tmp_path / "run")
    with pytest.raises(RunBusy) as refused, hold(tmp_path / "run"):
        pass
    message = str(refused.value)
    assert f"{tmp_path / 'run'} is being written by pid {holder.pid}" in message
    assert "r1kit train recipe.yaml" in message and "since" in message
    assert "wait for it to finish or stop it" in message


def test_a_sigkilled_holder_never_blocks_even_with_its_child_alive(tmp_path, lock_holder):
    holder, child = lock_holder(tmp_path / "run")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    os.kill(child, 0)  # the orphan lives on, with the holder's descriptor of the lock file
    start = time.monotonic()
    with hold(tmp_path / "run"):
        assert time.monotonic() - start < 1


def test_a_directory_made_for_the_lock_alone_is_removed_again(tmp_path):
    with hold(tmp_path / "run"):
        assert (tmp_path / "run" / LOCK).is_file()
    assert not (tmp_path / "run").exists()


def test_a_directory_that_was_there_keeps_what_it_holds(tmp_path):
    (tmp_path / "run").mkdir()
    with hold(tmp_path / "run"):
        (tmp_path / "run" / "config.yaml").write_text("{}")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK, "config.yaml"]
    with hold(tmp_path / "run"):  # released: the next writer takes it
        pass


def test_a_run_on_a_read_only_disk_is_a_disk_fault_naming_the_lock(small_disk, tmp_path):
    disk = tmp_path / "disk"
    take = "import sys; from pathlib import Path; from r1kit.runlock import hold; "
    take += "hold(Path(sys.argv[1])).__enter__()"
    command = shlex.join([sys.executable, "-c", take, str(disk / "run")])
    script = f"mkdir {disk}/run && mount -o remount,ro {disk} && {command}"
    proc = small_disk(disk, "64k", script)
    assert f"DiskFault: cannot write {disk / 'run' / LOCK}: Read-only file system" in proc.stderr


def test_check_free_names_a_live_holder(tmp_path, lock_holder):
    holder, _ = lock_holder(tmp_path / "run")
    with pytest.raises(RunBusy, match=f"being written by pid {holder.pid}"):
        check_free(tmp_path / "run")


def test_check_free_of_a_free_run_leaves_it_free(tmp_path):
    with hold(tmp_path / "run"):
        pass
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK).write_text("{}")
    check_free(tmp_path / "run")
    with hold(tmp_path / "run"):  # nothing held on by the check
        pass
