"""Writes that survive a kill at any instant: fsynced temporary names, renames, manifests.

A directory is built under `NAME.tmp`, every file fsynced and listed with its size and sha256
in `manifest.json` (written last), then renamed to `NAME`. Replacing an existing `NAME` moves
it to `NAME.old` first and deletes it only once the new one is in place, so some complete
copy exists at every instant; `recover` finishes or undoes whatever a kill interrupted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

MANIFEST = "manifest.json"
SCRATCH = ".tmp"  # being written, or being deleted: never complete
PREVIOUS = ".old"  # a complete copy, set aside while its replacement is renamed in


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    """Replace a file's contents atomically: readers see the old or the new file, never half."""
    tmp = path.with_name(path.name + SCRATCH)
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


@contextlib.contextmanager
def replace_dir(path: Path, **meta: object) -> Iterator[Path]:
    """Yield a scratch directory to fill; on success it becomes `path`, with a manifest.

    `meta` (e.g. the step) goes into the manifest. On an exception `path` is untouched.
    """
    tmp = path.with_name(path.name + SCRATCH)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    files = {
        str(f.relative_to(tmp)): _digest(f, fsync=True)
        for f in sorted(tmp.rglob("*"))
        if f.is_file()
    }
    write_text(tmp / MANIFEST, json.dumps({**meta, "files": files}, indent=1))
    fsync_dir(tmp)
    previous = path.with_name(path.name + PREVIOUS)
    if path.exists():
        remove_dir(previous)
        path.rename(previous)
    tmp.rename(path)
    fsync_dir(path.parent)
    remove_dir(previous)


def remove_dir(path: Path) -> None:
    """Delete a directory so that a kill midway leaves only a scratch name, never a husk."""
    doomed = path if path.name.endswith(SCRATCH) else path.with_name(path.name + SCRATCH)
    if path.exists() and doomed != path:
        shutil.rmtree(doomed, ignore_errors=True)
        path.rename(doomed)
        fsync_dir(path.parent)
    shutil.rmtree(doomed, ignore_errors=True)


def recover(parent: Path) -> None:
    """Undo what a kill interrupted in `parent`: put set-aside copies back, drop scratch."""
    for previous in list(parent.glob(f"*{PREVIOUS}")):
        path = previous.with_name(previous.name.removesuffix(PREVIOUS))
        if path.exists():
            remove_dir(previous)
        else:
            previous.rename(path)
    for scratch in list(parent.glob(f"*{SCRATCH}")):
        if scratch.is_dir():
            shutil.rmtree(scratch)
        else:
            scratch.unlink()
    fsync_dir(parent)


def verify_dir(path: Path) -> tuple[dict, list[str]]:
    """The manifest of `path` and what is wrong with the files it lists (empty: intact)."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return {}, [f"{MANIFEST} unreadable ({type(err).__name__}: {err})"]
    problems = []
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            problems.append(f"{name} is missing")
        elif (size := file.stat().st_size) != expected["size"]:
            problems.append(f"{name} is {size} bytes, the manifest says {expected['size']}")
        elif _digest(file)["sha256"] != expected["sha256"]:
            problems.append(f"{name} does not match its sha256 in the manifest")
    return manifest, problems


def _digest(file: Path, fsync: bool = False) -> dict:
    sha = hashlib.sha256()
    with file.open("rb") as f:
        if fsync:
            os.fsync(f.fileno())
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return {"size": file.stat().st_size, "sha256": sha.hexdigest()}


def append_jsonl(path: Path, records: list[dict]) -> None:
    """Append one line per record, fsynced; a partial last line (a kill mid-write) goes first."""
    with path.open("a+b") as f:
        end = f.seek(0, os.SEEK_END)
        if end:
            f.seek(end - 1)
            if f.read(1) != b"\n":
                f.seek(0)
                f.truncate(f.read().rfind(b"\n") + 1)
        f.write(b"".join(json.dumps(r).encode() + b"\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict]:
    """A JSON-lines file's complete lines; a partial last line (a kill mid-write) is skipped."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_bytes().split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as err:
            raise ValueError(f"{path}:{number}: not a JSON line ({err})") from None
    return records


def rewrite_jsonl(path: Path, records: list[dict]) -> None:
    """Replace a JSON-lines file atomically with `records`."""
    write_text(path, "".join(json.dumps(r) + "\n" for r in records))
