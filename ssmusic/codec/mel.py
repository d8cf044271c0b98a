"""Log-mel spectrograms, one function for every user: the offline codec's features, the
mel-stats embedding and the reconstruction distance (each with its own bands, hop and log base)."""

from __future__ import annotations

from typing import Callable

import torch


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """Slaney-style triangular filters on the HTK mel scale: [n_mels, n_fft // 2 + 1]."""
    def hz_to_mel(hz):
        return 2595.0 * torch.log10(1.0 + hz / 700.0)

    def mel_to_hz(mel):
        return 700.0 * (10 ** (mel / 2595.0) - 1.0)

    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(0, float(hz_to_mel(torch.tensor(sample_rate / 2.0))), n_mels + 2,
                                     dtype=torch.float64))
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lower) / (center - lower)
    down = (upper - freqs[None]) / (upper - center)
    bank = torch.clamp(torch.minimum(up, down), min=0)
    bank = bank * (2.0 / (upper - lower))  # equal area
    return bank.float()


def log_mel(wav: torch.Tensor, bank: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor | None = None,
            frames: int | None = None, log: Callable[[torch.Tensor], torch.Tensor] = torch.log) -> torch.Tensor:
    """Audio [..., N] -> log mel magnitudes [..., n_mels, T]: a centred STFT (Hann window unless
    given), its first `frames` frames if set, through the filterbank `bank`, floored at 1e-5."""
    window = torch.hann_window(n_fft) if window is None else window
    spec = torch.stft(wav, n_fft, hop, window=window, center=True, return_complex=True).abs()
    if frames is not None:
        spec = spec[..., :frames]
    return log(torch.clamp(bank @ spec, min=1e-5))
