"""The multi-resolution STFT distance: zero for the same audio, blind to what it should be blind to,
and able to fail (it rises for smeared phase and added noise)."""

import pytest
import torch

from ssmusic.metrics.reconstruction import stft_distance


def chord(seconds: float = 1.0, rate: int = 22050) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return sum(0.2 * torch.sin(2 * torch.pi * f * t) for f in (220.0, 277.2, 329.6))


def test_identical_audio_is_zero_and_sign_flip_changes_nothing():
    x = chord()
    assert stft_distance(x, x) == 0.0
    assert stft_distance(x, -x) < 1e-6  # a magnitude distance: blind to a global phase inversion


def test_it_fails_smeared_phase_and_noise():
    x = chord()
    spec = torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True)
    random_phase = torch.polar(spec.abs(), torch.rand(spec.shape, generator=torch.Generator().manual_seed(0)) * 6.283)
    smeared = torch.istft(random_phase, 1024, 256, window=torch.hann_window(1024), length=x.shape[-1])
    noisy = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    assert stft_distance(x, smeared) > 0.3  # the same magnitudes with incoherent phase do not survive
    assert stft_distance(x, noisy) > 0.3  # a noise floor shows in the quiet bins
    assert stft_distance(x, 0.9 * x) == pytest.approx(-torch.log10(torch.tensor(0.9)).item(), abs=0.01)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="shapes"):
        stft_distance(torch.zeros(100), torch.zeros(101))
