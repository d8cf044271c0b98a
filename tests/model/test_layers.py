import pytest
import torch
import torch.nn.functional as F

from ssmusic.model.layers import EinFFT, DecodeLinear, SelfAttention, sinusoidal


def test_einfft_mixes_channels_only_never_time():
    mixer = EinFFT(32, blocks=4)
    with torch.no_grad():
        for p in mixer.parameters():
            p.mul_(30)
    x = torch.randn(2, 7, 32)
    out = mixer(x)
    changed = x.clone()
    changed[:, 3] += 1.0
    out2 = mixer(changed)
    assert torch.equal(out[:, :3], out2[:, :3]) and torch.equal(out[:, 4:], out2[:, 4:])
    assert not torch.allclose(out[:, 3], out2[:, 3])
    torch.testing.assert_close(mixer.step(x[:, 5]), out[:, 5])


def test_sinusoidal_layout():
    emb = sinusoidal(torch.tensor([0, 3]), 8)
    assert torch.allclose(emb[0, :4], torch.ones(4)) and torch.allclose(emb[0, 4:], torch.zeros(4))
    assert torch.allclose(emb[1, 0], torch.cos(torch.tensor(3.0)))


def test_kv_cache_is_preallocated_and_matches_full_attention():
    attention = SelfAttention(16, 4).eval()
    x = torch.randn(2, 9, 16)
    with torch.no_grad():
        full = attention(x)
        cache = attention.allocate(2, 9, x.device, x.dtype)
        pointer = cache.k.data_ptr()
        prefill = attention(x[:, :4], state=cache)
        steps = torch.stack([attention.step(x[:, t], cache) for t in range(4, 9)], dim=1)
    torch.testing.assert_close(torch.cat([prefill, steps], 1), full, atol=1e-5, rtol=1e-5)
    assert cache.k.data_ptr() == pointer and int(cache.length) == 9 and cache.window == 9


@pytest.mark.parametrize("shape", [(1, 48), (2, 48), (2, 1, 48), (3, 5, 48), (40, 48)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_decode_path_equals_f_linear(shape, bias):
    torch.manual_seed(0)
    layer = DecodeLinear(48, 80, bias=bias)
    x = torch.randn(*shape)
    expected = F.linear(x, layer.weight, layer.bias)
    with torch.no_grad():
        fast = layer(x)
        column_major = layer(x.transpose(-1, -2).contiguous().transpose(-1, -2))
    assert fast.shape == expected.shape == (*shape[:-1], 80)
    torch.testing.assert_close(fast, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(column_major, expected, rtol=1e-5, atol=1e-5)
    # with autograd on, it is plain F.linear and gradients flow to the weight
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
