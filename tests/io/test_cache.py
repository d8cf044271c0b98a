from pathlib import Path

from ssmusic.io import cache


def test_root_follows_ssmusic_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("SSMUSIC_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.root() == tmp_path / "home" / ".cache" / "ssmusic"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.root() == tmp_path / "xdg" / "ssmusic"
    monkeypatch.setenv("SSMUSIC_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.root() == tmp_path / "mine"


def test_compiled_code_can_live_elsewhere(monkeypatch, tmp_path):
    monkeypatch.setenv("SSMUSIC_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.delenv(cache.COMPILE_ENV, raising=False)
    assert cache.compile_dir() == tmp_path / "mine" / "compile"
    monkeypatch.setenv(cache.COMPILE_ENV, str(tmp_path / "shared"))
    assert cache.compile_dir() == Path(tmp_path / "shared")
