import os
import shutil
from pathlib import Path

import pytest

from ssmusic.io import atomic
from ssmusic.io.atomic import atomic_dir


def _write(directory: Path, text: str) -> None:
    for name in ("a.txt", "b.txt"):
        (directory / name).write_text(text)


def _complete(directory: Path) -> str | None:
    """The content if `directory` is a complete copy (both files, same text), else None."""
    try:
        texts = {(directory / name).read_text() for name in ("a.txt", "b.txt")}
    except OSError:
        return None
    return texts.pop() if len(texts) == 1 else None


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_replacing_a_directory_keeps_a_complete_copy_at_every_instant(tmp_path, monkeypatch, exchange):
    target = tmp_path / "model"
    target.mkdir()
    _write(target, "old")
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    seen = []

    def check():  # after every filesystem step: the target, or (fallback) a sibling, is complete
        copies = [_complete(p) for p in [target, *tmp_path.glob(".model.*")] if p.is_dir()]
        seen.append(_complete(target) if exchange else next((c for c in copies if c), None))

    def traced(function):
        def wrapper(*args, **kwargs):
            result = function(*args, **kwargs)
            check()
            return result
        return wrapper

    monkeypatch.setattr(atomic.shutil, "rmtree", traced(shutil.rmtree))
    monkeypatch.setattr(Path, "rename", traced(Path.rename))
    with atomic_dir(target) as tmp:
        _write(tmp, "new")
    assert seen and None not in seen, seen
    assert _complete(target) == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temp or backup left behind


def test_a_failed_final_rename_leaves_the_old_directory(tmp_path, monkeypatch):
    target = tmp_path / "model"
    target.mkdir()
    _write(target, "old")
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    real = Path.rename

    def failing(self, destination):
        if Path(destination) == target and ".old" not in self.name:
            raise OSError("disk full")
        return real(self, destination)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError, match="disk full"):
        with atomic_dir(target) as tmp:
            _write(tmp, "new")
    assert _complete(target) == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_new_directory_is_created_with_normal_permissions(tmp_path):
    with atomic_dir(tmp_path / "fresh") as tmp:
        _write(tmp, "x")
    assert _complete(tmp_path / "fresh") == "x"
    assert os.stat(tmp_path / "fresh").st_mode & 0o777 == 0o777 & ~atomic._umask()


def test_writes_never_touch_the_process_umask(tmp_path, monkeypatch):
    """Setting the umask to read it is not thread-safe (serve's workers write while others create
    files): the mask is read without changing it, and files still get the mode it allows."""
    def forbidden(mask):
        raise AssertionError("os.umask called during a write")

    mask = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", forbidden)
        atomic.write_text_atomic(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "d") as tmp:
            _write(tmp, "x")
        assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o640
        assert os.stat(tmp_path / "d").st_mode & 0o777 == 0o750
    finally:
        monkeypatch.undo()
        os.umask(mask)
