"""Kill-proof writes: every state a kill can leave is recovered to a whole directory."""

import contextlib
import json
import os
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from r1kit import durable


class Killed(Exception):
    """Stands for SIGKILL: the write stops dead at this point."""


def _fill(directory, text: str) -> None:
    (directory / "weights.bin").write_text(text)
    (directory / "sub").mkdir()
    (directory / "sub" / "state.txt").write_text(text * 2)


def _contents(directory) -> str | None:
    if not directory.exists():
        return None
    assert durable.verify_dir(directory)[1] == [], "a directory in place must be whole"
    return (directory / "weights.bin").read_text()


@contextlib.contextmanager
def _killed_before(op: int) -> Iterator[list[str]]:
    """Raise Killed at the `op`-th rename, fsync of a directory or tree removal (from 0);
    yields the names of the operations that ran, to count them."""
    done: list[str] = []

    def wrap(owner, name):
        original = getattr(owner, name)

        def operation(*args, **kwargs):
            if len(done) == op:
                raise Killed
            done.append(name)
            return original(*args, **kwargs)

        return mock.patch.object(owner, name, operation)

    with (
        wrap(Path, "rename"),
        wrap(os, "replace"),
        wrap(durable, "fsync_dir"),
        wrap(shutil, "rmtree"),
    ):
        yield done


def _replace(target, text: str, kill_before: int = -1) -> list[str]:
    """Replace `target` with a directory holding `text`; the operations run (up to the kill)."""
    with _killed_before(kill_before) as done:
        try:
            with durable.replace_dir(target) as scratch:
                _fill(scratch, text)
        except Killed:
            pass
    return done


def test_replace_dir_writes_a_manifest_of_every_file(tmp_path):
    with durable.replace_dir(tmp_path / "ckpt", step=7) as scratch:
        _fill(scratch, "abc")
    manifest, problems = durable.verify_dir(tmp_path / "ckpt")
    assert problems == [] and manifest["step"] == 7
    assert manifest["files"]["weights.bin"]["size"] == 3
    assert set(manifest["files"]) == {"weights.bin", "sub/state.txt"}


def test_an_error_while_filling_leaves_the_previous_directory(tmp_path):
    with durable.replace_dir(tmp_path / "ckpt") as scratch:
        _fill(scratch, "old")
    with pytest.raises(RuntimeError), durable.replace_dir(tmp_path / "ckpt") as scratch:
        (scratch / "weights.bin").write_text("half")
        raise RuntimeError("disk full")
    durable.recover(tmp_path)
    assert _contents(tmp_path / "ckpt") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_a_kill_at_any_point_of_a_replacement_leaves_the_old_or_the_new(tmp_path):
    operations = len(_replace(tmp_path / "probe", "x")) + len(_replace(tmp_path / "probe", "y"))
    seen = set()
    for op in range(operations):
        parent = tmp_path / f"kill-{op}"
        parent.mkdir()
        _replace(parent / "ckpt", "old")
        _replace(parent / "ckpt", "new", kill_before=op)
        durable.recover(parent)
        seen.add(_contents(parent / "ckpt"))
        assert [p.name for p in parent.iterdir()] == ["ckpt"], op
    assert seen == {"old", "new"}


def test_a_kill_during_the_first_write_leaves_nothing(tmp_path):
    for op in range(len(_replace(tmp_path / "probe", "x"))):
        parent = tmp_path / f"kill-{op}"
        parent.mkdir()
        _replace(parent / "ckpt", "new", kill_before=op)
        durable.recover(parent)
        assert _contents(parent / "ckpt") in (None, "new")
        assert [p.name for p in parent.iterdir()] in ([], ["ckpt"])


def test_a_kill_while_removing_leaves_no_half_directory(tmp_path):
    _replace(tmp_path / "ckpt", "old")
    with _killed_before(2), contextlib.suppress(Killed):  # renamed to scratch, then dies
        durable.remove_dir(tmp_path / "ckpt")
    durable.recover(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_write_text_replaces_whole_and_leaves_no_scratch(tmp_path):
    path = tmp_path / "config.yaml"
    durable.write_text(path, "a: 1\n")
    with _killed_before(0), contextlib.suppress(Killed):
        durable.write_text(path, "a: 2\n")
    assert path.read_text() == "a: 1\n"
    durable.recover(tmp_path)
    durable.write_text(path, "a: 3\n")
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
    assert path.read_text() == "a: 3\n"


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "weights.bin").write_text("ol"),  # truncated
        lambda d: (d / "weights.bin").write_text("olD"),  # same size, other bytes
        lambda d: (d / "sub" / "state.txt").unlink(),  # missing
        lambda d: (d / durable.MANIFEST).write_text('{"files": '),  # manifest cut short
        lambda d: (d / durable.MANIFEST).unlink(),  # no manifest at all
    ],
    ids=["truncated", "same-size", "missing", "bad-manifest", "no-manifest"],
)
def test_verify_names_what_is_wrong(tmp_path, damage):
    _replace(tmp_path / "ckpt", "old")
    damage(tmp_path / "ckpt")
    problems = durable.verify_dir(tmp_path / "ckpt")[1]
    assert len(problems) == 1 and any(
        name in problems[0] for name in ("weights.bin", "state.txt", durable.MANIFEST)
    )


def test_jsonl_reader_skips_a_partial_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0}\n{"step": 1}\n{"step": 2, "lo')
    assert durable.read_jsonl(path) == [{"step": 0}, {"step": 1}]


def test_jsonl_append_trims_a_partial_last_line_first(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0}\n{"step": 1, "lo')
    durable.append_jsonl(path, [{"step": 1}, {"step": 2}])
    assert path.read_text().splitlines() == ['{"step": 0}', '{"step": 1}', '{"step": 2}']


def test_jsonl_append_to_a_file_with_only_a_partial_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_bytes(b"\x00\x00\x00")  # what a power cut can leave of an unsynced line
    durable.append_jsonl(path, [{"step": 1}])
    assert durable.read_jsonl(path) == [{"step": 1}]


def test_jsonl_reader_names_the_line_of_a_corrupt_record(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2"):
        durable.read_jsonl(path)


# Runs on a small tmpfs (256 KiB) at DISK, in namespaces of its own (see `small_disk`): a
# checkpoint-like directory, a config file and a log are written, then each again, bigger
# than the disk (or after the disk is remounted read-only).
FILL_A_SMALL_DISK = """
import json, os
from pathlib import Path
from r1kit import durable

disk = Path(os.environ["DISK"])
with durable.replace_dir(disk / "step-2", step=2) as scratch:
    (scratch / "weights.bin").write_bytes(b"old" * 1000)
durable.write_text(disk / "config.yaml", "lr: 1\\n")
if os.environ["READ_ONLY"]:
    os.system(f"mount -o remount,ro {disk}")

def checkpoint():
    with durable.replace_dir(disk / "step-2", needed=5 << 20, step=2) as scratch:
        (scratch / "weights.bin").write_bytes(b"new" * (1 << 20))

faults = {}
for name, write in {
    "checkpoint": checkpoint,
    "config": lambda: durable.write_text(disk / "config.yaml", "x" * (1 << 20)),
    "log": lambda: durable.append_jsonl(disk / "metrics.jsonl", [{"x": "y" * (1 << 20)}]),
}.items():
    try:
        write()
        faults[name] = None
    except durable.DiskFault as fault:
        faults[name] = str(fault)
print(json.dumps({
    "faults": faults,
    "names": sorted(p.name for p in disk.iterdir()),
    "old_intact": durable.verify_dir(disk / "step-2")[1] == [],
    "config": (disk / "config.yaml").read_text(),
}))
"""


def _fill_small_disk(small_disk, tmp_path, read_only: bool) -> dict:
    disk = tmp_path / "disk"
    script = f"{sys.executable} -c {shlex.quote(FILL_A_SMALL_DISK)}"
    env = f"DISK={shlex.quote(str(disk))} READ_ONLY={'1' if read_only else ''}"
    proc = small_disk(disk, "256k", f"{env} {script}")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_a_full_disk_is_a_disk_fault_naming_the_path_and_the_space(small_disk, tmp_path):
    result = _fill_small_disk(small_disk, tmp_path, read_only=False)
    disk = tmp_path / "disk"
    for name, path in [
        ("checkpoint", "step-2"),
        ("config", "config.yaml"),
        ("log", "metrics.jsonl"),
    ]:
        fault = result["faults"][name]
        assert fault.startswith(f"cannot write {disk / path}: No space left on device"), fault
        assert "KiB are free there" in fault and "delete old runs or checkpoints" in fault
    assert "it needs about 5.0 MiB" in result["faults"]["checkpoint"]
    assert "it needs about 1.0 MiB" in result["faults"]["config"]


def test_a_failed_write_leaves_the_old_copy_whole_and_no_scratch(small_disk, tmp_path):
    result = _fill_small_disk(small_disk, tmp_path, read_only=False)
    assert result["names"] == ["config.yaml", "metrics.jsonl", "step-2"]
    assert result["old_intact"] and result["config"] == "lr: 1\n"


def test_a_read_only_disk_is_a_disk_fault_saying_to_remount(small_disk, tmp_path):
    result = _fill_small_disk(small_disk, tmp_path, read_only=True)
    for fault in result["faults"].values():
        assert "Read-only file system" in fault and "remount that filesystem read-write" in fault
    assert result["old_intact"]


# torch.save and safetensors report a full disk in their own exceptions (a RuntimeError with
# the OSError as its context; a SafetensorError saying "os error 28").
LIBRARY_WRITES = """
import json, os
from pathlib import Path
import torch
from safetensors.torch import save_file
from r1kit import durable

disk, tensors = Path(os.environ["DISK"]), {"w": torch.zeros(1 << 18)}

def torch_save():
    with (disk / "state.pt").open("wb") as f:
        torch.save(tensors, f)

def safetensors_save():
    save_file(tensors, disk / "w.safetensors")

faults = {}
for name, write in {"torch": torch_save, "safetensors": safetensors_save}.items():
    try:
        with durable.writing(disk):
            write()
    except durable.DiskFault as fault:
        faults[name] = str(fault)
    for file in disk.iterdir():
        file.unlink()
print(json.dumps(faults))
"""


def test_a_library_s_failed_write_is_a_disk_fault(small_disk, tmp_path):
    disk = tmp_path / "disk"
    script = f"DISK={shlex.quote(str(disk))} {sys.executable} -c {shlex.quote(LIBRARY_WRITES)}"
    proc = small_disk(disk, "256k", script)
    assert proc.returncode == 0, proc.stderr
    faults = json.loads(proc.stdout.splitlines()[-1])
    assert set(faults) == {"torch", "safetensors"}
    assert all("No space left on device" in fault for fault in faults.values())
