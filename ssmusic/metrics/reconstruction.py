"""How close a reconstruction is to its reference: log-mel distance (what is heard) and SI-SNR (the
waveform). Used by `ssmusic codebooks` and benchmarks/codec_compare.py."""

from __future__ import annotations

import torch

from ssmusic.codec.mel import log_mel, mel_filterbank


def evaluation_mel(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """An evaluation mel spectrogram independent of the codecs' own: 80 bands, 1024/256, log10."""
    return log_mel(wav, mel_filterbank(sample_rate, 1024, 80), 1024, 256, log=torch.log10)


def mel_distance(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float:
    """Mean absolute difference of log10-mel spectrograms ([..., N] each; 0 for identical audio)."""
    return float((evaluation_mel(reference, sample_rate) - evaluation_mel(estimate, sample_rate)).abs().mean())


def si_snr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Scale-invariant SNR in dB, averaged over leading dimensions. Identical signals give a very
    large finite value (~150 dB; the 1e-8 guards keep it finite for JSON)."""
    reference = reference - reference.mean(-1, keepdim=True)
    estimate = estimate - estimate.mean(-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (reference.pow(2).sum(-1, keepdim=True) + 1e-8)
    target = scale * reference
    noise = estimate - target
    return float((10 * torch.log10(target.pow(2).sum(-1) / (noise.pow(2).sum(-1) + 1e-8) + 1e-8)).mean())
