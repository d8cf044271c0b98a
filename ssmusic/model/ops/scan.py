"""Mamba2's selective state-space recurrence, three ways, all in pure PyTorch.

Per head h with scalar decay a_t = exp(dt_t * A_h), state S [headdim, d_state]:

    S_t = a_t * S_{t-1} + dt_t * x_t ⊗ B_t          y_t = S_t · C_t + D_h * x_t

- `ssd_sequential`: the recurrence as written, one step at a time. Slow; the ground truth in tests.
- `ssd_chunked`: the SSD ("state space duality") form used for training: quadratic attention-like
  products inside chunks of `chunk_size`, the recurrence only between chunks. Same result.
- `ssd_step`: one recurrent step on an explicit state, updated in place (generation).

Shapes: x [B, L, H, P], dt [B, L, H] (already softplus'ed), A [H] (negative), B/C [B, L, G, N]
with H divisible by G (heads share B/C within a group), D [H].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BATCHED_READOUT_ROWS = 16  # above this many rows, ssd_step reads its state out with a batched matmul


def _heads(t: torch.Tensor, n_heads: int) -> torch.Tensor:
    """[..., G, N] -> [..., H, N]: each group's B/C serves H/G consecutive heads."""
    groups = t.shape[-2]
    if groups == n_heads:
        return t
    if groups == 1:  # a broadcast view, no copy
        return t.expand(*t.shape[:-2], n_heads, t.shape[-1])
    return t.repeat_interleave(n_heads // groups, dim=-2)


def segsum(x: torch.Tensor) -> torch.Tensor:
    """[..., T] -> [..., T, T] with out[i, j] = x[j+1] + ... + x[i] for i >= j, -inf above.

    Summed from a masked copy rather than as cumsum differences, which lose precision when the
    cumulative decay is large."""
    T = x.shape[-1]
    x = x[..., None].expand(*x.shape, T)  # [..., T(i), T(j)] holding x[i]
    strictly_lower = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device), diagonal=-1)
    x = x.masked_fill(~strictly_lower, 0)
    out = torch.cumsum(x, dim=-2)
    lower = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device))
    return out.masked_fill(~lower, float("-inf"))


def ssd_sequential(x, dt, A, B, C, D=None, initial_state=None):
    """Reference recurrence. Returns (y [B, L, H, P], final_state [B, H, P, N])."""
    batch, length, heads, headdim = x.shape
    B, C = _heads(B, heads).float(), _heads(C, heads).float()
    state = (torch.zeros(batch, heads, headdim, B.shape[-1], device=x.device, dtype=torch.float32)
             if initial_state is None else initial_state.float())
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t].float() * A.float())  # [B, H]
        state = state * decay[..., None, None] + (dt[:, t, :, None].float() * x[:, t].float())[..., None] * B[:, t, :, None, :]
        ys.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t]))
    y = torch.stack(ys, dim=1)
    if D is not None:
        y = y + D.float()[:, None] * x.float()
    return y.to(x.dtype), state


def ssd_chunked(x, dt, A, B, C, chunk_size: int, D=None, initial_state=None):
    """Chunked SSD scan. Returns (y [B, L, H, P], final_state [B, H, P, N]).

    Written for training speed in plain PyTorch (what runs without mamba-ssm, eagerly or under
    torch.compile; benchmarks/scan_speed.py): the products with B and C are batched per group, heads
    and headdim together ([H/G * P, l] @ [l, N]: one product per chunk rather than one per head), and
    the decay inside a chunk is exp of a difference of the chunk's cumulative sums, as mamba-ssm's
    kernels compute it (one tensor, not segsum's four; the sums restart at each chunk, so they stay
    small). Between chunks, where sums grow with the sequence, segsum keeps its precision."""
    batch, length, heads, headdim = x.shape
    dtype = x.dtype
    pad = (-length) % chunk_size
    x, dt, B, C = x.float(), dt.float(), B.float(), C.float()
    x_in = x
    if pad:
        # Padded steps have dt = 0: no decay, no input, so the final state is unaffected.
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        dt = F.pad(dt, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, 0, 0, pad))
    n_chunks, (groups, d_state), size = x.shape[1] // chunk_size, B.shape[-2:], chunk_size
    per_group = heads // groups

    def chunks(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, n_chunks, chunk_size, *t.shape[2:])

    X = chunks(x * dt[..., None])  # [b, c, l, h, p]
    Bg, Cg = chunks(B).permute(0, 1, 3, 2, 4), chunks(C).permute(0, 1, 3, 2, 4)  # [b, c, g, l, n]
    a_cum = torch.cumsum(chunks(dt * A.float()), dim=2)  # [b, c, l, h]: log-decay since the chunk's start

    # 1. Within chunks: y_l = sum_{s <= l} (C_l . B_s) exp(a_l - a_s) x_s dt_s, an attention-like masked product.
    a_heads = a_cum.transpose(2, 3)  # [b, c, h, l]
    causal = torch.ones(size, size, dtype=torch.bool, device=x.device).tril()
    decay = torch.exp((a_heads[..., :, None] - a_heads[..., None, :]).masked_fill(~causal, float("-inf")))
    CB = Cg @ Bg.transpose(-1, -2)  # [b, c, g, l, s], shared by the group's heads
    M = (CB[:, :, :, None] * decay.view(batch, n_chunks, groups, per_group, size, size)).flatten(2, 3)
    y = (M @ X.transpose(2, 3)).transpose(2, 3)  # [b, c, l, h, p]

    # 2. Each chunk's contribution to the state at its end: one product per (chunk, group).
    weighted = X * torch.exp(a_cum[:, :, -1:] - a_cum)[..., None]  # [b, c, l, h, p]
    weighted = weighted.reshape(batch, n_chunks, size, groups, per_group * headdim).permute(0, 1, 3, 4, 2)
    states = (weighted @ Bg).view(batch, n_chunks, heads, headdim, d_state)  # [b, c, h, p, n]

    # 3. Carry states across chunks (a short recurrence over n_chunks, done as one product).
    if initial_state is None:
        initial_state = torch.zeros_like(states[:, :1])
    else:
        initial_state = initial_state.float()[:, None]
    states = torch.cat([initial_state, states], dim=1)  # [b, c+1, h, p, n]
    chunk_decay = torch.exp(segsum(F.pad(a_cum[:, :, -1].transpose(1, 2), (1, 0))))  # [b, h, c+1, c+1]
    states = torch.einsum("bhzc,bchpn->bzhpn", chunk_decay, states)
    states, final_state = states[:, :-1], states[:, -1]

    # 4. The state entering each chunk, read out through C with the decay inside the chunk.
    entering = states.reshape(batch, n_chunks, groups, per_group * headdim, d_state)
    readout = (Cg @ entering.transpose(-1, -2)).view(batch, n_chunks, groups, size, per_group, headdim)
    y = y + readout.permute(0, 1, 3, 2, 4, 5).flatten(3, 4) * torch.exp(a_cum)[..., None]

    y = y.reshape(batch, n_chunks * chunk_size, heads, headdim)[:, :length]
    if D is not None:
        y = y + D.float()[:, None] * x_in
    return y.to(dtype), final_state


def ssd_step(state: torch.Tensor, x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
             C: torch.Tensor, D: torch.Tensor | None = None, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """One step: state [B, H, P, N] is updated in place; x [B, H, P], dt [B, H], B/C [B, G, N].
    `scratch` (shaped like state) holds the read-out's product instead of a new buffer. Returns y [B, H, P]."""
    heads = x.shape[1]
    Bh, Ch = _heads(B, heads).float(), _heads(C, heads).float()
    decay = torch.exp(dt * A)  # [B, H]
    if torch.compiler.is_compiling() or state.dtype != torch.float32:
        # a bfloat16 state is storage only: computed in float32, rounded once when stored (as the kernels do)
        return _fusable_step(state, x, dt, decay, Bh, Ch, D)
    # Fused in-place updates and a multiply-sum, not matmul/bmm: at decode sizes on CPU those are
    # 2-3x slower (32 tiny GEMVs per layer).
    state.mul_(decay[..., None, None]).addcmul_((dt[..., None] * x).to(state.dtype)[..., None], Bh[:, :, None, :])
    if state.shape[0] > BATCHED_READOUT_ROWS:
        # Many rows: the state no longer fits in cache, and the multiply-sum writes and re-reads a
        # state-sized product; a batched matrix-vector product reads the state once (3x faster at
        # 128 rows, which made the SSM state, not the weights, the cost of large batches).
        y = (state @ Ch[..., None]).squeeze(-1)
    else:
        y = torch.mul(state, Ch[:, :, None, :], out=scratch).sum(-1)  # [B, H, P]
    if D is not None:
        y = y + D[:, None] * x
    return y.to(x.dtype)


def _fusable_step(state: torch.Tensor, x: torch.Tensor, dt: torch.Tensor, decay: torch.Tensor, Bh: torch.Tensor,
                  Ch: torch.Tensor, D: torch.Tensor | None) -> torch.Tensor:
    """ssd_step as written for inductor (torch.compile) where the fused kernels do not run (a CUDA
    step under compile, a CPU one below cpu_step.COMPILED_MIN_ROWS), and for a bfloat16 state without
    the C step (computed in float32, stored once): the read-out taken from the state *before* the update,
    S_t C = a S_{t-1} C + u (B . C) with u = dt x. Written the eager way (read-out of the new state),
    inductor's CPU code stored the new state twice (a temporary and the state) and read it again.
    This form is not one pass on the CPU either (measured, torch 2.13: inductor reads the state for
    the read-out and applies every layer's state update at the end of the graph), which is why a CPU
    decode step calls ops.cpu_step instead."""
    u = dt[..., None] * x.float()  # [B, H, P]
    old = state.float()
    y = decay[..., None] * (old * Ch[:, :, None, :]).sum(-1) + u * (Bh * Ch).sum(-1)[..., None]
    state.copy_(old * decay[..., None, None] + u[..., None] * Bh[:, :, None, :])
    if D is not None:
        y = y + D[:, None] * x
    return y.to(x.dtype)
