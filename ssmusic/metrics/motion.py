"""Does the music move? Per-clip measures of a frozen or held sound, compared with real clips.

- **Frozen run (codec)**: the clip re-encoded with a codec (the shipped one by default), the longest
  run of consecutive identical frames of its first codebook(s), in seconds. A held, unchanging
  sound encodes to one token repeated; real music changes frame within a second or so.
- **Repeat share / distinct tokens**: the share of frames equal to the previous one and the number
  of distinct tokens per clip (a jittering model repeats less and uses more tokens than real music).
- **Longest onset gap (waveform)**: the longest stretch of the clip, edges included, without a
  detected onset (librosa's onset detector): independent of any codec.
- **Onset rate**: detected onsets per second.
"""

from __future__ import annotations

import numpy as np
import torch


def longest_run(tokens: np.ndarray) -> int:
    """Longest run of identical consecutive frames of tokens [T] or [K, T] (a frame is all K equal)."""
    x = np.asarray(tokens)
    x = x[None] if x.ndim == 1 else x
    if x.shape[-1] == 0:
        return 0
    change = np.any(x[:, 1:] != x[:, :-1], axis=0)
    boundaries = np.flatnonzero(change)
    edges = np.concatenate([[-1], boundaries, [x.shape[-1] - 1]])
    return int(np.diff(edges).max())


def token_motion(tokens: np.ndarray, frame_rate: float) -> dict:
    """Frozen run (seconds), repeat share and distinct tokens of tokens [K, T]."""
    x = np.asarray(tokens)
    x = x[None] if x.ndim == 1 else x
    repeats = np.all(x[:, 1:] == x[:, :-1], axis=0)
    return {"frozen_run_s": round(longest_run(x) / frame_rate, 4),
            "repeat_share": round(float(repeats.mean()) if repeats.size else 0.0, 4),
            "distinct_tokens": int(len({tuple(col) for col in x.T}))}


def codec_motion(wav: np.ndarray, sample_rate: int, codec, codebooks: int = 1) -> dict:
    """Re-encode a mono clip with `codec` and measure its first `codebooks` codebooks."""
    codes = codec.encode(torch.as_tensor(np.asarray(wav, np.float32))[None], sample_rate)[0, :codebooks]
    return token_motion(codes.numpy(), codec.frame_rate)


def onset_motion(onsets: np.ndarray, seconds: float) -> dict:
    """Onset rate (per second) and the longest gap without an onset, edges included (seconds)."""
    times = np.concatenate([[0.0], np.sort(np.asarray(onsets, np.float64)), [seconds]])
    return {"onset_rate": round(len(onsets) / seconds, 4) if seconds > 0 else float("nan"),
            "longest_onset_gap_s": round(float(np.diff(times).max()), 4)}
