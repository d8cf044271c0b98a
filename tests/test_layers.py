import torch

from ssmusic.layers import EinFFT, SelfAttention, sinusoidal


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
    assert cache.k.data_ptr() == pointer and cache.length == 9
