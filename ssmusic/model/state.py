"""Typed decode state: one `DecodeState` is handed through every block (as mamba's
InferenceParams); each block's part is a `BlockState`, and `step()` updates it in place.

Everything is preallocated for the whole generation so a step never grows a tensor (no torch.cat),
which keeps per-step cost flat and lets CUDA graphs / torch.compile capture a step. What changes from
one step to the next lives in tensors changed in place (the position, a KV cache's length), never in a
reassigned Python number: a captured step replays reading and advancing them (ssmusic.model.graphs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SSMState:
    """Mamba2 layer state: the last d_conv-1 conv inputs and the SSM state."""

    # [B, d_conv - 1, conv_dim]: time-major, so shifting the window is contiguous copies, not a
    # 3-of-4 strided gather per channel (that shift cost ~0.9 ms per layer at 128 rows, compiled)
    conv: torch.Tensor
    # the conv1d weight as [d_conv, conv_dim], copied when the state is made: laid out like the
    # window, the compiled step's conv is one vectorised loop (read through a transposed view of the
    # [conv_dim, 1, d_conv] parameter it was a scalar loop: ~0.5 ms per layer at 128 rows)
    taps: torch.Tensor
    ssm: torch.Tensor  # [B, heads, headdim, d_state], float32
    # room for the state-sized product of the read-out, reused every step: on CPU a fresh buffer
    # per step costs more (page faults) than the arithmetic
    scratch: torch.Tensor | None = None


@dataclass
class KVCache:
    """Self-attention keys/values for positions [0, length); preallocated to capacity.

    `length` is a tensor advanced in place, and a step attends to every slot masked by position
    (slot < length), so the same kernels serve every frame: what a CUDA graph or a compiled step needs.
    `window` is the host's copy of the length for eager decoding, which then reads only the filled
    slots (a long cache costs a step twice as much on average when read whole); None (`static()`): read
    the whole capacity, masked, with no Python number changing per step."""

    k: torch.Tensor  # [B, heads, capacity, head_dim]
    v: torch.Tensor
    key_mask: torch.Tensor  # [B, capacity] bool: False for padded (left-pad) prefix positions
    length: torch.Tensor  # [] long, on the cache's device
    slots: torch.Tensor  # [capacity] long: 0, 1, ..., the positions a step compares with `length`
    window: int | None = 0

    @property
    def capacity(self) -> int:
        return self.k.shape[2]


@dataclass
class CrossState:
    """Cross-attention keys/values of the condition, computed once per generation."""

    k: torch.Tensor  # [B, heads, S, head_dim]
    v: torch.Tensor
    key_mask: torch.Tensor  # [B, S]


@dataclass
class BlockState:
    """One block's decode state, by sub-layer: the sequence mixer's, the cross-attention memory
    (filled at prefill; None without cross-attention) and the channel mixer's (a second Mamba2's
    state in the mamba backbone; None for stateless MLP / EinFFT)."""

    mixer: SSMState | KVCache
    cross_attn: CrossState | None = None
    channel_mixer: SSMState | None = None


@dataclass
class DecodeState:
    """Everything a decode step needs besides its input: every block's state and the position the
    next input frame takes, per row (rows of a left-padded batch start at different positions)."""

    blocks: list[BlockState]
    position: torch.Tensor  # [B] long, advanced in place by each step
    # [B, 5] what the prompt asks for (ssmusic.model.controls.CONTROL_COLUMNS) for a model that hears
    # it (a beat clock, a key); None: nothing
    controls: torch.Tensor | None = None

    def static(self) -> "DecodeState":
        """Steps on this state change no Python value (KV caches read whole, masked by position): the
        form a captured or compiled step needs. Eager steps give the same values up to float rounding."""
        for block in self.blocks:
            if isinstance(block.mixer, KVCache):
                block.mixer.window = None
        return self


def store(current: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor:
    """`new` written into `current` when that buffer has its shape (a reused decode state keeps its
    tensors, which a captured step reads), else `new` itself."""
    if current is not None and current.shape == new.shape and current.dtype == new.dtype:
        return current.copy_(new)
    return new
