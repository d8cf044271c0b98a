"""MusicGen's delay pattern: codebook k is shifted right by k frames, so one LM step predicts
codebook k of frame t-k, conditioned on all coarser codebooks of that frame. With K = 1 it is the
identity."""

from __future__ import annotations

import torch


def build_delay(codes: torch.Tensor, special: int) -> torch.Tensor:
    """[B, K, T] -> [B, K, T + K - 1]; positions with no code hold `special`."""
    batch, n_codebooks, length = codes.shape
    if n_codebooks == 1:
        return codes
    out = codes.new_full((batch, n_codebooks, length + n_codebooks - 1), special)
    for k in range(n_codebooks):
        out[:, k, k:k + length] = codes[:, k]
    return out


def revert_delay(delayed: torch.Tensor) -> torch.Tensor:
    """[B, K, T + K - 1, ...] -> [B, K, T, ...]: undo `build_delay` (also for logits)."""
    n_codebooks = delayed.shape[1]
    if n_codebooks == 1:
        return delayed
    length = delayed.shape[2] - n_codebooks + 1
    return torch.stack([delayed[:, k, k:k + length] for k in range(n_codebooks)], dim=1)
