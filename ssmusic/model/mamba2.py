"""The Mamba2 mixer, with mamba_ssm's parameter names and layout so weights move freely between
this implementation, mamba_ssm's fused kernels and transformers' Mamba2Mixer:

    in_proj -> [z | xBC | dt];  xBC -> causal depthwise conv1d -> SiLU -> [x | B | C]
    y = SSD(x, softplus(dt + dt_bias), A = -exp(A_log), B, C) + D x
    out_proj(RMSNormGated(y, gate=z))        (norm after gating, per group, as mamba_ssm)
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ssmusic.model.layers import DecodeLinear
from ssmusic.model.ops import kernels
from ssmusic.model.state import SSMState


class GatedRMSNorm(nn.Module):
    def __init__(self, dim: int, group_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.group_size = group_size
        self.eps = eps

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float() * F.silu(gate.float())
        grouped = F.rms_norm(x.unflatten(-1, (-1, self.group_size)), (self.group_size,), eps=self.eps)
        return self.weight * grouped.flatten(-2).to(dtype)


class Mamba2(nn.Module):
    def __init__(self, d_model: int, d_state: int = 64, expand: int = 2, headdim: int = 64,
                 d_conv: int = 4, ngroups: int = 1, chunk_size: int = 64,
                 dt_min: float = 0.001, dt_max: float = 0.1) -> None:
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state, self.headdim, self.ngroups, self.chunk_size = d_state, headdim, ngroups, chunk_size
        self.nheads = self.d_inner // headdim
        self.d_conv = d_conv
        self.conv_dim = self.d_inner + 2 * ngroups * d_state
        self.in_proj = DecodeLinear(d_model, self.d_inner + self.conv_dim + self.nheads, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, groups=self.conv_dim,
                                padding=d_conv - 1, bias=True)
        # dt_bias = softplus^-1(dt) for dt log-uniform in [dt_min, dt_max], as mamba_ssm.
        dt = torch.exp(torch.rand(self.nheads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm = GatedRMSNorm(self.d_inner, group_size=self.d_inner // ngroups)
        self.out_proj = DecodeLinear(self.d_inner, d_model, bias=False)
        # the decode state's SSM part: float32 (the reference), or bfloat16 storage (MusicLM.set_state_dtype)
        self.state_dtype = torch.float32

    def _split(self, projected: torch.Tensor):
        return projected.split([self.d_inner, self.conv_dim, self.nheads], dim=-1)

    def _ssm_inputs(self, xbc: torch.Tensor):
        x, B, C = xbc.split([self.d_inner, self.ngroups * self.d_state, self.ngroups * self.d_state], dim=-1)
        return x, B.unflatten(-1, (self.ngroups, self.d_state)), C.unflatten(-1, (self.ngroups, self.d_state))

    def allocate(self, batch: int, device: torch.device, dtype: torch.dtype) -> SSMState:
        return SSMState(
            conv=torch.zeros(batch, self.d_conv - 1, self.conv_dim, device=device, dtype=dtype),
            taps=self.conv1d.weight[:, 0].T.to(device, dtype).contiguous(),
            ssm=torch.zeros(batch, self.nheads, self.headdim, self.d_state, device=device, dtype=self.state_dtype),
            scratch=torch.empty(batch, self.nheads, self.headdim, self.d_state, device=device, dtype=torch.float32)
            if self.state_dtype == torch.float32 else None)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None,
                state: SSMState | None = None) -> torch.Tensor:
        """Parallel form over [B, L, d]. `mask` [B, L] (False = left padding) makes those positions
        exact no-ops. With `state`, the final conv/SSM states are written into it (prefill)."""
        batch, length, _ = hidden.shape
        z, xbc, dt = self._split(self.in_proj(hidden))
        if mask is not None:
            xbc = xbc * mask[..., None].to(xbc.dtype)
        if state is not None:
            tail = xbc[:, -(self.d_conv - 1):]
            state.conv.zero_()
            state.conv[:, state.conv.shape[1] - tail.shape[1]:].copy_(tail)
        xbc = F.silu(self.conv1d(xbc.transpose(1, 2))[..., :length].transpose(1, 2))
        if mask is not None:
            xbc = xbc * mask[..., None].to(xbc.dtype)
        x, B, C = self._ssm_inputs(xbc)
        dt = F.softplus(dt.float() + self.dt_bias.float())
        A = -torch.exp(self.A_log.float())
        y, final = kernels.chunk_scan(x.unflatten(-1, (self.nheads, self.headdim)), dt, A, B, C,
                                      self.chunk_size, D=self.D.float())
        if state is not None:
            state.ssm.copy_(final)
        return self.out_proj(self.norm(y.flatten(-2).to(hidden.dtype), z))

    def step(self, hidden: torch.Tensor, state: SSMState) -> torch.Tensor:
        """One token: hidden [B, d] -> [B, d]; `state` is updated in place."""
        z, xbc, dt = self._split(self.in_proj(hidden))
        # the window is [state.conv ; xbc] ([B, d_conv, conv_dim], oldest first), never built
        conv = (state.conv * state.taps[:-1]).sum(1) + xbc * state.taps[-1] + self.conv1d.bias
        state.conv.copy_(torch.cat([state.conv[:, 1:], xbc[:, None]], dim=1))
        xbc = F.silu(conv)
        x, B, C = self._ssm_inputs(xbc)
        dt = F.softplus(dt.float() + self.dt_bias.float())
        A = -torch.exp(self.A_log.float())
        y = kernels.state_step(state.ssm, x.unflatten(-1, (self.nheads, self.headdim)).float(), dt, A,
                               B.float(), C.float(), self.D.float(), state.scratch)
        return self.out_proj(self.norm(y.flatten(-2).to(hidden.dtype), z))
