"""One decoder block, its sub-layers named: `mixer` (Mamba2 or causal self-attention), an optional
`cross_attn` to the caption, and `channel_mixer` (MLP or causal EinFFT; a second Mamba2 in the
mamba backbone). Each is pre-norm residual: x + dropout(sublayer(norm(x))).

    simba:        Mamba2         -> [cross-attention] -> MLP | EinFFT
    mamba:        Mamba2         -> [cross-attention] -> Mamba2
    transformer:  self-attention -> [cross-attention] -> MLP
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn

from ssmusic.config import LMConfig
from ssmusic.errors import ConfigError
from ssmusic.model.layers import MLP, CrossAttention, EinFFT, RMSNorm, SelfAttention
from ssmusic.model.mamba2 import Mamba2
from ssmusic.model.state import BlockState, CrossState, store


def _mamba2(c: LMConfig) -> Mamba2:
    return Mamba2(c.d_model, c.d_state, c.expand, c.headdim, c.d_conv, c.ngroups, c.chunk_size)


def sequence_mixer(c: LMConfig) -> nn.Module:
    """The sub-layer that mixes along time."""
    if c.backbone in ("simba", "mamba"):
        return _mamba2(c)
    if c.backbone == "transformer":
        return SelfAttention(c.d_model, c.n_heads)
    raise ConfigError(f"LMConfig.backbone: no sequence mixer for {c.backbone!r}")


def channel_mixer(c: LMConfig) -> nn.Module:
    """The sub-layer after the sequence mixer (and cross-attention)."""
    kind = {"simba": c.channel_mixer, "mamba": "mamba", "transformer": "mlp"}.get(c.backbone)
    if kind == "mamba":
        return _mamba2(c)
    if kind == "mlp":
        return MLP(c.d_model, c.ff_mult * c.d_model)
    if kind == "einfft":
        return EinFFT(c.d_model, c.einfft_blocks)
    raise ConfigError(f"LMConfig: no channel mixer {kind!r} for backbone {c.backbone!r}")


class Block(nn.Module):
    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        d = config.d_model
        # registration order = parameter order, the same as the earlier layout's (optimizer state
        # saved by older training runs still lines up)
        self.mixer_norm = RMSNorm(d)
        self.mixer = sequence_mixer(config)
        self.cross_attn_norm = RMSNorm(d) if config.conditioning == "cross" else None
        self.cross_attn = CrossAttention(d, config.n_heads) if config.conditioning == "cross" else None
        self.channel_mixer_norm = RMSNorm(d)
        self.channel_mixer = channel_mixer(config)
        self.dropout = nn.Dropout(config.dropout)

    def allocate(self, batch: int, capacity: int, device: torch.device, dtype: torch.dtype) -> BlockState:
        """Fresh decode state for `capacity` positions (an SSM's state does not grow with it)."""
        def state(layer: nn.Module):
            if isinstance(layer, Mamba2):
                return layer.allocate(batch, device, dtype)
            if isinstance(layer, SelfAttention):
                return layer.allocate(batch, capacity, device, dtype)
            return None
        return BlockState(mixer=state(self.mixer), channel_mixer=state(self.channel_mixer))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, condition: tuple[torch.Tensor, torch.Tensor],
                state: BlockState | None = None) -> torch.Tensor:
        """Parallel form over [B, L, d]; `condition` (tokens [B,S,d], mask [B,S]) feeds cross-attention.
        With `state` (prefill), the final states and the cross-attention memory are written into it."""
        x = x + self.dropout(self.mixer(self.mixer_norm(x), mask, state.mixer if state else None))
        if self.cross_attn is not None:
            memory = self.cross_attn.memory(*condition)
            if state is not None:
                memory = self.cross_attn.bucketed(memory)  # decode steps: one shape for many caption lengths
                if state.cross_attn is not None:  # a reused state: into its buffers (a captured step reads them)
                    memory = CrossState(*(store(old, fresh) for old, fresh in zip(
                        (state.cross_attn.k, state.cross_attn.v, state.cross_attn.key_mask),
                        (memory.k, memory.v, memory.key_mask))))
                state.cross_attn = memory
            x = x + self.dropout(self.cross_attn(self.cross_attn_norm(x), memory))
        h = self.channel_mixer(self.channel_mixer_norm(x), mask, state.channel_mixer if state else None)
        return x + self.dropout(h)

    def step(self, x: torch.Tensor, state: BlockState) -> torch.Tensor:
        """One frame: x [B, d] -> [B, d]; `state` is updated in place."""
        x = x + self.mixer.step(self.mixer_norm(x), state.mixer)
        if self.cross_attn is not None:
            x = x + self.cross_attn.step(self.cross_attn_norm(x), state.cross_attn)
        return x + self.channel_mixer.step(self.channel_mixer_norm(x), state.channel_mixer)


_LEGACY_KEY = re.compile(r"^blocks\.(\d+)\.(\d)\.(norm|mixer)\.(.+)$")


def rename_legacy_keys(state: dict[str, torch.Tensor], config: LMConfig) -> dict[str, torch.Tensor]:
    """Weights saved before the sub-layers had names (`blocks.{i}.{j}.norm|mixer.*`, j the position
    in the block) under today's names: j=0 is `mixer`, j=1 `cross_attn` with cross conditioning
    else `channel_mixer`, j=2 `channel_mixer`. Other keys pass through unchanged."""
    slots = ["mixer", "cross_attn", "channel_mixer"] if config.conditioning == "cross" else ["mixer", "channel_mixer"]
    renamed = {}
    for key, value in state.items():
        match = _LEGACY_KEY.match(key)
        if match and int(match.group(2)) < len(slots):
            block, slot, part, rest = match.group(1), slots[int(match.group(2))], match.group(3), match.group(4)
            key = f"blocks.{block}.{slot}_norm.{rest}" if part == "norm" else f"blocks.{block}.{slot}.{rest}"
        renamed[key] = value
    return renamed


