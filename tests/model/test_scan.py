import pytest
import torch

from ssmusic.model.ops.scan import ssd_chunked, ssd_sequential, ssd_step


def _inputs(length, heads=4, headdim=8, groups=2, d_state=16, batch=2):
    g = torch.Generator().manual_seed(length)
    x = torch.randn(batch, length, heads, headdim, generator=g)
    dt = torch.rand(batch, length, heads, generator=g) * 0.5
    A = -torch.rand(heads, generator=g) * 2 - 0.1
    B = torch.randn(batch, length, groups, d_state, generator=g)
    C = torch.randn(batch, length, groups, d_state, generator=g)
    D = torch.randn(heads, generator=g)
    init = torch.randn(batch, heads, headdim, d_state, generator=g)
    return x, dt, A, B, C, D, init


@pytest.mark.parametrize("length,chunk", [(1, 4), (37, 1), (37, 4), (37, 16), (50, 64), (64, 16)])
def test_chunked_scan_matches_sequential_values(length, chunk):
    x, dt, A, B, C, D, init = _inputs(length)
    y_ref, s_ref = ssd_sequential(x, dt, A, B, C, D, init)
    y, s = ssd_chunked(x, dt, A, B, C, chunk, D, init)
    torch.testing.assert_close(y, y_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s, s_ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("length,chunk", [(13, 4), (32, 8)])
def test_chunked_scan_matches_sequential_gradients(length, chunk):
    inputs = [t.double().requires_grad_() for t in _inputs(length)]
    grads = []
    for fn in (lambda *a: ssd_sequential(*a), lambda x, dt, A, B, C, D, s: ssd_chunked(x, dt, A, B, C, chunk, D, s)):
        for t in inputs:
            t.grad = None
        y, s = fn(*inputs)
        (y.pow(2).sum() + s.sum()).backward()
        grads.append([t.grad.clone() for t in inputs])
    for g_ref, g in zip(*grads):
        torch.testing.assert_close(g, g_ref, atol=1e-4, rtol=1e-4)


def test_step_matches_sequential_and_updates_state_in_place():
    x, dt, A, B, C, D, init = _inputs(9)
    y_ref, s_ref = ssd_sequential(x, dt, A, B, C, D, init)
    state = init.clone()
    pointer = state.data_ptr()
    ys = [ssd_step(state, x[:, t], dt[:, t], A, B[:, t], C[:, t], D) for t in range(9)]
    torch.testing.assert_close(torch.stack(ys, 1), y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, s_ref, atol=1e-5, rtol=1e-5)
    assert state.data_ptr() == pointer


@pytest.mark.parametrize("rows", [2, 19])  # 19 > BATCHED_READOUT_ROWS: the batched read-out
def test_step_reads_out_few_and_many_rows_alike(rows, device):
    x, dt, A, B, C, D, init = (t.to(device) for t in _inputs(5, batch=rows))
    y_ref, s_ref = ssd_sequential(x, dt, A, B, C, D, init)
    state = init.clone()
    ys = [ssd_step(state, x[:, t], dt[:, t], A, B[:, t], C[:, t], D) for t in range(5)]
    torch.testing.assert_close(torch.stack(ys, 1), y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, s_ref, atol=1e-5, rtol=1e-5)
