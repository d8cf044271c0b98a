import sys
import warnings

import pytest

from ssmusic.ops import kernels


@pytest.fixture
def fresh(monkeypatch):
    for name in [m for m in sys.modules if m == "mamba_ssm" or m.startswith("mamba_ssm.")]:
        monkeypatch.delitem(sys.modules, name)
    kernels._mamba_ssm.cache_clear()
    yield
    kernels._mamba_ssm.cache_clear()


def test_a_broken_mamba_ssm_install_warns_once_with_its_reason(tmp_path, monkeypatch, fresh):
    package = tmp_path / "mamba_ssm"
    package.mkdir()
    (package / "__init__.py").write_text("raise OSError('libcudart.so.12: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert kernels._mamba_ssm() is None
        assert kernels._mamba_ssm() is None
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert "libcudart.so.12" in messages[0] and "pure-PyTorch" in messages[0]


def test_mamba_ssm_not_installed_is_silent(monkeypatch, fresh):
    monkeypatch.setattr(kernels.importlib.util, "find_spec", lambda name: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernels._mamba_ssm() is None
