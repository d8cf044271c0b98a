"""Atomic file writes: write to a temp file beside the target, then rename over it. A crash leaves
either the old file or the new one, never half of one."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ssmusic.errors import ConfigError


def _umask_by_syscall() -> int:
    """os.umask can only read the mask by setting it: for a moment the process's mask is 0, so a
    file another thread creates then gets mode 0666. Done once, at import."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


_IMPORT_UMASK = _umask_by_syscall()


def _umask() -> int:
    """The process's umask, read without changing it (Linux: /proc/self/status, where a later
    os.umask shows too); elsewhere the mask at import."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return _IMPORT_UMASK


def _default_mode() -> int:
    return 0o666 & ~_umask()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temp path to write; on success it replaces `path` (with normal permissions:
    mkstemp's 0600 would make shared datasets and models unreadable to others)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2). False where the OS or the
    filesystem cannot, so the caller falls back to two renames."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # libc without renameat2 (glibc < 2.28, musl)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _replace_dir(new: Path, path: Path) -> None:
    """Put directory `new` at `path` so that a complete copy exists at every instant: an atomic
    swap where supported (`path` never disappears), else old -> backup, new -> path, and the old
    copy is deleted only once the new one is in place."""
    if not path.exists():
        new.rename(path)
        return
    if _exchange(new, path):
        shutil.rmtree(new)  # now the old copy
        return
    backup = new.with_name(new.name + ".old")
    path.rename(backup)
    try:
        new.rename(path)
    except BaseException:
        backup.rename(path)
        raise
    shutil.rmtree(backup)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Like atomic_path for a directory: fill the yielded temp directory; on success it replaces
    `path` whole (see _replace_dir)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """JSON, indented, through atomic_path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """A text file (a Markdown table, a report) through atomic_path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file; a missing or malformed one is a ConfigError naming the path (and line)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: invalid JSON ({err.msg} at line {err.lineno})") from None
