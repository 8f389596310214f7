"""Writes that survive a kill at any instant: fsynced temporary names, renames, manifests.

A directory is built under `NAME.tmp`, every file fsynced and listed with its size and sha256
in `manifest.json` (written last), then renamed to `NAME`. Replacing an existing `NAME` moves
it to `NAME.old` first and deletes it only once the new one is in place, so some complete
copy exists at every instant; `recover` finishes or undoes whatever a kill interrupted.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from r1kit.errors import UserError

MANIFEST = "manifest.json"
SCRATCH = ".tmp"  # being written, or being deleted: never complete
PREVIOUS = ".old"  # a complete copy, set aside while its replacement is renamed in
PROBE = ".probe" + SCRATCH  # proves a directory writable; a kill leaves only scratch

# The write failures a user fixes (disk full, no permission, ...) and how to fix each.
FREE_SPACE = (
    "free space there (delete old runs or checkpoints, or keep fewer: train.keep_last, "
    "sft.keep_last) or set output.dir to a larger disk"
)
MAKE_WRITABLE = "make it writable for this user (chmod/chown) or set output.dir elsewhere"
DISK_FAULTS = {
    errno.ENOSPC: FREE_SPACE,
    errno.EDQUOT: "your disk quota there is used up: " + FREE_SPACE,
    errno.EACCES: MAKE_WRITABLE,
    errno.EPERM: MAKE_WRITABLE,
    errno.EROFS: "remount that filesystem read-write or set output.dir to a writable disk",
}
OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how Rust writers (safetensors) report one


class DiskFault(UserError):
    """A write failed for a reason of the disk's (full, read-only, not permitted): `errno`."""

    def __init__(self, message: str, errno: int):
        super().__init__(message)
        self.errno = errno


@contextlib.contextmanager
def writing(path: Path, needed: int | Callable[[], int] = 0) -> Iterator[None]:
    """Turn a disk fault raised while writing `path` into a DiskFault that names the path,
    the fault, the bytes needed (`needed`, or a function computing them) and the fix; the
    outermost `writing` names it (a checkpoint, not the file inside it that failed)."""
    try:
        yield
    except Exception as err:
        code = fault_errno(err)
        if code is None or (isinstance(err, UserError) and not isinstance(err, DiskFault)):
            raise
        amount = needed() if callable(needed) else needed
        raise DiskFault(_explain(path, code, amount), code) from None


def fault_errno(err: BaseException) -> int | None:
    """The disk fault's errno behind `err` (an OSError, or a library's error wrapping one:
    torch.save's RuntimeError, safetensors' SafetensorError), None if it is no disk fault."""
    while err is not None:
        code = getattr(err, "errno", None)
        if code is None and (found := OS_ERROR.search(str(err))):
            code = int(found[1])
        if code in DISK_FAULTS:
            return code
        err = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
    return None


def _explain(path: Path, code: int, needed: int) -> str:
    message = f"cannot write {path}: {os.strerror(code)}"
    if code in (errno.ENOSPC, errno.EDQUOT):
        message += f"; it needs about {_size(needed)}, and {_size(_free(path))} are free there"
    return f"{message}; {DISK_FAULTS[code]}"


def _free(path: Path) -> int:
    """Bytes free to this user on the filesystem of `path` (or of its nearest parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def _size(count: int) -> str:
    """A byte count as people read it: 812 bytes, 4.2 MiB, 1.3 GiB."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def probe(directory: Path) -> None:
    """Prove `directory` writable now (a DiskFault if not), before work is spent on what
    would be written there."""
    file = directory / PROBE
    with writing(directory):
        with file.open("wb") as f:
            f.write(b"r1kit")
            os.fsync(f.fileno())
        file.unlink()


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    """Replace a file's contents atomically: readers see the old or the new file, never half.
    A DiskFault leaves the old file and no scratch."""
    tmp = path.with_name(path.name + SCRATCH)
    with writing(path, len(text.encode())):
        try:
            with tmp.open("w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)


@contextlib.contextmanager
def replace_dir(path: Path, needed: int | Callable[[], int] = 0, **meta: object) -> Iterator[Path]:
    """Yield a scratch directory to fill; on success it becomes `path`, with a manifest.

    `meta` (e.g. the step) goes into the manifest. On an exception `path` is untouched and
    the scratch directory removed; a disk fault is a DiskFault saying `needed` bytes.
    """
    tmp = path.with_name(path.name + SCRATCH)
    with writing(path, needed):
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
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
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a set-aside `path` is put back by recover
            raise
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
    """Append one line per record, fsynced; a partial last line (a kill mid-write) goes
    first, and a failed write leaves none."""
    data = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    with writing(path, len(data)), path.open("a+b") as f:
        end = f.seek(0, os.SEEK_END)
        if end:
            f.seek(end - 1)
            if f.read(1) != b"\n":
                f.seek(0)
                end = f.read().rfind(b"\n") + 1
                f.truncate(end)
        try:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            f.truncate(end)  # no partial line holding the space a full disk lacks
            raise


class DamagedFile(UserError):
    """A file a run reads back is not what it wrote: the message names file:line and the fix."""


def read_jsonl(path: Path, keys: tuple[str, ...] = ()) -> list[dict]:
    """A JSON-lines file's complete lines, each an object holding `keys`; a partial last line
    (a kill mid-write) is skipped. A damaged complete line is a DamagedFile naming it."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_bytes().split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            problem = "" if isinstance(record, dict) else "not a JSON object"
        except ValueError as err:
            problem = f"not a JSON line ({err})"
        if not problem and (missing := [key for key in keys if key not in record]):
            problem = f"no {', '.join(map(repr, missing))} in this line"
        if problem:
            raise DamagedFile(f"{path}:{number}: {problem}; delete that line and run again")
        records.append(record)
    return records


def rewrite_jsonl(path: Path, records: list[dict]) -> None:
    """Replace a JSON-lines file atomically with `records`."""
    write_text(path, "".join(json.dumps(r) + "\n" for r in records))
