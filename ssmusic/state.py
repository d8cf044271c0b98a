"""Typed decode state. Each layer allocates its own; `step()` updates it in place.

Everything is preallocated for the whole generation so a step never grows a tensor (no torch.cat),
which keeps per-step cost flat and lets CUDA graphs / torch.compile capture a step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SSMState:
    """Mamba2 layer state: the last d_conv-1 conv inputs and the SSM state."""

    conv: torch.Tensor  # [B, conv_dim, d_conv - 1]
    ssm: torch.Tensor  # [B, heads, headdim, d_state], float32
    # room for the state-sized product of the read-out: a fresh 0.5 MB buffer every step costs
    # more (page faults) than the arithmetic on CPU
    scratch: torch.Tensor | None = None

    def select(self, rows: torch.Tensor) -> "SSMState":
        return SSMState(self.conv[rows], self.ssm[rows], None if self.scratch is None else self.scratch[rows])


@dataclass
class KVCache:
    """Self-attention keys/values for positions [0, length); preallocated to capacity."""

    k: torch.Tensor  # [B, heads, capacity, head_dim]
    v: torch.Tensor
    key_mask: torch.Tensor  # [B, capacity] bool: False for padded (left-pad) prefix positions
    length: int = 0

    @property
    def capacity(self) -> int:
        return self.k.shape[2]


@dataclass
class CrossState:
    """Cross-attention keys/values of the condition, computed once per generation."""

    k: torch.Tensor  # [B, heads, S, head_dim]
    v: torch.Tensor
    key_mask: torch.Tensor  # [B, S]
