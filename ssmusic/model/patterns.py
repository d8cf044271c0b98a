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


def forced_tokens(batch: int, n_codebooks: int, steps: int, prompt_codes: torch.Tensor | None, delay_id: int,
                  device: torch.device) -> torch.Tensor:
    """[B, K, frames]: the token each delayed frame of a generation must take (-1 where it is
    sampled): the audio prompt's codes, then `steps` sampled frames, with the delay pattern's head
    and tail."""
    K = n_codebooks
    prompt_len = 0 if prompt_codes is None else prompt_codes.shape[-1]
    total = prompt_len + steps + K - 1  # delayed frames to produce
    forced = torch.full((batch, K, total), -1, dtype=torch.long, device=device)
    for k in range(K):
        # Head and tail of the delay pattern hold the delay id, as in training: with K > 2 the
        # tail of a coarse codebook is fed back before the loop ends, so a sampled tail would
        # corrupt the last frames of the finer codebooks.
        forced[:, k, :k] = delay_id
        forced[:, k, k + prompt_len + steps:] = delay_id
    if prompt_codes is not None:
        forced[:, :, :prompt_len + K - 1] = torch.maximum(
            forced[:, :, :prompt_len + K - 1], build_delay(prompt_codes.to(device), -1)[..., :prompt_len + K - 1])
    return forced
