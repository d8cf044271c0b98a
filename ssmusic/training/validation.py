"""Validation during training: cross-entropy with the true, a shuffled and the null caption."""

from __future__ import annotations

import torch

from ssmusic.data.datasets import CodesDataset, load_batch
from ssmusic.training.distributed import autocast
from ssmusic.model.lm import MusicLM, token_loss
from ssmusic.training.config import TrainConfig


def _windows(codes: torch.Tensor, size: int, per_clip: tuple[torch.Tensor, ...]):
    """[B, K, T] -> the clips' consecutive whole windows [B * (T // size), K, size] (a shorter tail is
    dropped), each row of `per_clip` repeated once per window. A model trained on windows is then
    validated on positions 0..size-1 only: sinusoidal positions beyond the window were never trained."""
    if codes.shape[-1] <= size:
        return codes, per_clip
    n = codes.shape[-1] // size
    batch, books = codes.shape[:2]
    windows = codes[..., : n * size].reshape(batch, books, n, size).transpose(1, 2).reshape(batch * n, books, size)
    return windows, tuple(t.repeat_interleave(n, dim=0) for t in per_clip)


def _window_controls(controls: torch.Tensor, clip_frames: int, size: int) -> torch.Tensor:
    """Control rows of _windows' windows (repeated per window): each starts where its window does."""
    n = clip_frames // size if clip_frames > size else 1
    controls = controls.clone()
    controls[:, 2] += (torch.arange(n, device=controls.device) * size).repeat(controls.shape[0] // n).to(controls.dtype)
    return controls


@torch.no_grad()
def evaluate(model: MusicLM, dataset: CodesDataset, config: TrainConfig, device, encoder) -> dict[str, float]:
    """Validation cross-entropy per token (no label smoothing, no caption dropout) on whole clips, or
    with `crop_frames` on the clips' consecutive windows of that length (see _windows), three ways:
    `val_loss` with each clip's own caption, `val_loss_shuffled` with another clip's caption (the
    split rotated by half its length, so a clip never keeps its own), and `val_loss_null` with the
    null condition. `cond_gap` = shuffled - true: near zero for a model that ignores its text."""
    model.eval()
    size = config.batch_size
    limit = len(dataset) if not config.eval_batches else min(len(dataset), config.eval_batches * size)
    shift = max(1, len(dataset) // 2) if len(dataset) > 1 else 0
    totals, count = {"val_loss": 0.0, "val_loss_shuffled": 0.0, "val_loss_null": 0.0}, 0
    for start in range(0, limit, size):
        indices = list(range(start, min(limit, start + size)))
        codes, text, mask, controls = load_batch(dataset, indices, device, 0, None, encoder)
        _, other_text, other_mask, other_controls = load_batch(dataset, [(i + shift) % len(dataset) for i in indices],
                                                            device, 0, None, encoder)
        if config.crop_frames and config.eval_windows:
            clip_frames = codes.shape[-1]
            codes, (text, mask, other_text, other_mask, controls, other_controls) = _windows(
                codes, config.crop_frames, (text, mask, other_text, other_mask, controls, other_controls))
            controls, other_controls = (_window_controls(t, clip_frames, config.crop_frames) for t in (controls, other_controls))
        if not model.uses_controls:
            controls = other_controls = None
        null = torch.ones(codes.shape[0], dtype=torch.bool, device=device)
        valid = int((codes != model.pad_id).sum())
        # a model with controls hears those of the caption it is given; the null rows keep their own clip's,
        # as generation gives both halves of guidance the controls (they are not text)
        for key, (t, m, n, c) in {"val_loss": (text, mask, None, controls),
                                  "val_loss_shuffled": (other_text, other_mask, None, other_controls),
                                  "val_loss_null": (text, mask, null, controls)}.items():
            with autocast(device):
                logits = model(codes, t, m, n, c)
            totals[key] += float(token_loss(logits, codes, model.pad_id)) * valid
        count += valid
    model.train()
    losses = {key: round(value / max(1, count), 5) for key, value in totals.items()}
    losses["cond_gap"] = round(losses["val_loss_shuffled"] - losses["val_loss"], 5)
    return losses
