"""How close a reconstruction is to its reference: log-mel distance and the multi-resolution
log-magnitude STFT distance (what is heard), SI-SNR (the waveform). Used by `ssmusic codebooks`,
benchmarks/codec_compare.py and benchmarks/decoder_compare.py."""

from __future__ import annotations

import torch

from ssmusic.codec.mel import log_mel, mel_filterbank


def evaluation_mel(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """An evaluation mel spectrogram independent of the codecs' own: 80 bands, 1024/256, log10."""
    return log_mel(wav, mel_filterbank(sample_rate, 1024, 80), 1024, 256, log=torch.log10)


def mel_distance(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float:
    """Mean absolute difference of log10-mel spectrograms ([..., N] each; 0 for identical audio)."""
    return float((evaluation_mel(reference, sample_rate) - evaluation_mel(estimate, sample_rate)).abs().mean())


STFT_SIZES = (512, 1024, 2048)
STFT_FLOOR = 1e-5  # the codec's own log-mel floor: quieter bins count as silence in both signals


def stft_distance(reference: torch.Tensor, estimate: torch.Tensor, sizes: tuple[int, ...] = STFT_SIZES,
                  floor: float = STFT_FLOOR) -> float:
    """Multi-resolution log-magnitude STFT distance: the mean over `sizes` (Hann window, hop n/4,
    centred) of mean |log10 |A| - log10 |B||, magnitudes floored at `floor`. [..., N] each, equal
    lengths; 0 for identical audio. Blind to a global phase shift but not to smeared harmonics,
    blurred attacks or a noisy floor, which is what a phase-retrieval decoder gets wrong."""
    if reference.shape != estimate.shape:
        raise ValueError(f"stft_distance: shapes differ, {tuple(reference.shape)} vs {tuple(estimate.shape)}")
    total = 0.0
    for n in sizes:
        window = torch.hann_window(n, device=reference.device)
        a, b = (torch.stft(x.detach().reshape(-1, x.shape[-1]).float(), n, n // 4, window=window,
                           return_complex=True).abs() for x in (reference, estimate))
        total += float((a.clamp(min=floor).log10() - b.clamp(min=floor).log10()).abs().mean())
    return total / len(sizes)


def si_snr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Scale-invariant SNR in dB, averaged over leading dimensions. Identical signals give a very
    large finite value (~150 dB; the 1e-8 guards keep it finite for JSON)."""
    reference = reference - reference.mean(-1, keepdim=True)
    estimate = estimate - estimate.mean(-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (reference.pow(2).sum(-1, keepdim=True) + 1e-8)
    target = scale * reference
    noise = estimate - target
    return float((10 * torch.log10(target.pow(2).sum(-1) / (noise.pow(2).sum(-1) + 1e-8) + 1e-8)).mean())
