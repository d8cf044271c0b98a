import sys
import warnings

import pytest

from ssmusic.model.ops import kernels


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


def _mamba_ssm_state_update(state, x, dt, A, B, C, D, z=None, dt_bias=None, dt_softplus=False):
    """mamba-ssm 2.3's selective_state_update, in PyTorch, with its argument checks: on its fast path
    (A and dt broadcast over the head dimension) it reads dt_bias.stride(), so None fails there."""
    import torch

    heads = state.shape[1]
    assert x.shape == dt.shape == state.shape[:3] and A.shape == state.shape[1:] and D.shape == state.shape[1:3]
    if A.stride(-1) == 0 and A.stride(-2) == 0 and dt.stride(-1) == 0:
        assert dt_bias.stride(-1) == 0  # AttributeError on None, as found on an H200
    dt = dt + (0 if dt_bias is None else dt_bias)
    dt = torch.nn.functional.softplus(dt) if dt_softplus else dt
    group = heads // B.shape[1]
    B, C = B.repeat_interleave(group, dim=1), C.repeat_interleave(group, dim=1)
    state.copy_(state * torch.exp(dt[..., None] * A) + (dt * x)[..., None] * B[:, :, None, :])
    return (state * C[:, :, None, :]).sum(-1) + x * D


def test_the_fused_step_is_called_as_mamba_ssm_expects(monkeypatch):
    """The CUDA step's call into mamba-ssm, checked on the CPU against a PyTorch model of that kernel:
    the same output and state as the pure-PyTorch step."""
    import torch

    from ssmusic.model.ops.scan import ssd_step

    torch.manual_seed(0)
    batch, heads, headdim, d_state, groups = 2, 4, 8, 16, 2
    state = torch.randn(batch, heads, headdim, d_state)
    x, dt = torch.randn(batch, heads, headdim), torch.rand(batch, heads)
    A, D = -torch.rand(heads), torch.randn(heads)
    B, C = torch.randn(batch, groups, d_state), torch.randn(batch, groups, d_state)
    expected_state = state.clone()
    expected = ssd_step(expected_state, x, dt, A, B, C, D)
    monkeypatch.setattr(kernels, "use_fused", lambda tensor: True)
    monkeypatch.setattr(kernels, "_mamba_ssm", lambda: (None, _mamba_ssm_state_update))
    out = kernels.state_step(state, x, dt, A, B, C, D)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, expected_state, atol=1e-5, rtol=1e-5)


def test_the_compiled_step_never_calls_mamba_ssm(monkeypatch):
    class OnCuda:
        is_cuda = True

    monkeypatch.setattr(kernels, "_mamba_ssm", lambda: (None, None))
    assert kernels.use_fused(OnCuda())
    monkeypatch.setattr(kernels.torch.compiler, "is_compiling", lambda: True)
    assert not kernels.use_fused(OnCuda())  # inductor fuses the reference ops itself
