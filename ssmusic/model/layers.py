"""Building blocks besides Mamba2: norms, channel mixers, attention with a preallocated KV cache,
cross-attention, and sinusoidal positions. Every mixer maps [B, L, d] -> [B, L, d] in `forward`
and [B, d] -> [B, d] in `step` (stateless ones simply reuse forward)."""

from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F

from ssmusic.model.decode_weights import check_decode_dtype, decode_linear, few_row_linear, quantize_int8
from ssmusic.model.state import CrossState, KVCache


class DecodeLinear(nn.Linear):
    """nn.Linear that can decode with a bfloat16 or int8 copy of its weight.

    `set_decode_dtype("bfloat16" | "int8")` adds a copy of the weight in that type (a non-persistent
    buffer: it follows .to(device) and never enters state_dict) that inference then uses; with
    autograd on, the float32 weight is always the one used. In float32 it is `F.linear`, except 2-8 rows
    on a CPU whose MKL streams `W @ x.T` faster (decode_weights.few_row_linear: measured per CPU with
    `python benchmarks/linear_rows.py`)."""

    decode_dtype = "float32"

    def set_decode_dtype(self, dtype: str) -> None:
        """Store the decode copy of the weight (call again after the float32 weight changes)."""
        check_decode_dtype(dtype, self.weight.device)
        for name in ("decode_weight", "decode_scales"):
            self._buffers.pop(name, None)
        if dtype == "bfloat16":
            self.register_buffer("decode_weight", self.weight.detach().to(torch.bfloat16), persistent=False)
        elif dtype == "int8":
            q, scales = quantize_int8(self.weight)
            self.register_buffer("decode_weight", q, persistent=False)
            self.register_buffer("decode_scales", scales.to(torch.bfloat16), persistent=False)
        self.decode_dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.decode_dtype != "float32" and not torch.is_grad_enabled():
            return decode_linear(x, self.decode_dtype, self.decode_weight, self._buffers.get("decode_scales"),
                                 self.bias)
        if not torch.is_grad_enabled():
            out = few_row_linear(x, self.weight, self.bias)
            if out is not None:
                return out
        return F.linear(x, self.weight, self.bias)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # normalised in float32 whatever the input dtype, then scaled (one fused op on fp32 input)
        return self.weight * F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).to(x.dtype)


class MLP(nn.Module):
    """Linear(d -> hidden) -> GELU -> Linear(hidden -> d), as the released SiMBA decoder."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = DecodeLinear(dim, hidden)
        self.fc2 = DecodeLinear(hidden, dim)

    def forward(self, x: torch.Tensor, *_) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))

    def step(self, x: torch.Tensor, _state=None) -> torch.Tensor:
        return self.forward(x)


class EinFFT(nn.Module):
    """SiMBA's EinFFT channel mixer, made causal.

    The original mixes along the sequence with an FFT, so every output sees the future. Here the
    FFT runs over each token's *channels*: FFT -> block-diagonal complex MLP (ReLU on real and
    imaginary parts) -> soft-threshold -> inverse FFT. No information crosses time steps."""

    no_weight_decay = ("b1", "b2")  # biases, stored as matrices: param_groups needs their names

    def __init__(self, dim: int, blocks: int, hidden_factor: int = 1, threshold: float = 0.01) -> None:
        super().__init__()
        self.blocks, self.block = blocks, dim // blocks
        hidden = self.block * hidden_factor
        scale = 0.02
        # complex weights stored as (real, imag) pairs: safetensors has no complex dtype
        self.w1 = nn.Parameter(scale * torch.randn(2, blocks, self.block, hidden))
        self.b1 = nn.Parameter(scale * torch.randn(2, blocks, hidden))
        self.w2 = nn.Parameter(scale * torch.randn(2, blocks, hidden, self.block))
        self.b2 = nn.Parameter(scale * torch.randn(2, blocks, self.block))
        self.threshold = threshold

    @staticmethod
    def _complex_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        weight, bias = torch.complex(w[0], w[1]), torch.complex(b[0], b[1])
        return torch.einsum("...ni,nio->...no", x, weight) + bias

    def forward(self, x: torch.Tensor, *_) -> torch.Tensor:
        dtype = x.dtype
        spectrum = torch.fft.fft(x.float(), dim=-1, norm="ortho").unflatten(-1, (self.blocks, self.block))
        h = self._complex_linear(spectrum, self.w1.float(), self.b1.float())
        h = torch.complex(F.relu(h.real), F.relu(h.imag))
        h = self._complex_linear(h, self.w2.float(), self.b2.float())
        h = torch.complex(F.softshrink(h.real, self.threshold), F.softshrink(h.imag, self.threshold))
        return torch.fft.ifft(h.flatten(-2), dim=-1, norm="ortho").real.to(dtype)

    def step(self, x: torch.Tensor, _state=None) -> torch.Tensor:
        return self.forward(x)


def sinusoidal(positions: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """[..., L] integer positions -> [..., L, dim]: cosines in the first half, sines in the second."""
    half = dim // 2
    freqs = max_period ** (-torch.arange(half, device=positions.device, dtype=torch.float32) / (half - 1))
    phase = positions.float()[..., None] * freqs
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


class SelfAttention(nn.Module):
    """Causal multi-head self-attention; decoding uses a KV cache preallocated to capacity."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = DecodeLinear(dim, 3 * dim, bias=False)
        self.out = DecodeLinear(dim, dim, bias=False)

    def _qkv(self, x: torch.Tensor):
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, self.head_dim)).unbind(-3)
        return q.transpose(-2, -3), k.transpose(-2, -3), v.transpose(-2, -3)  # [B, H, L, hd]

    def allocate(self, batch: int, capacity: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        shape = (batch, self.heads, capacity, self.head_dim)
        return KVCache(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype),
                       torch.zeros(batch, capacity, dtype=torch.bool, device=device),
                       torch.zeros((), dtype=torch.long, device=device), torch.arange(capacity, device=device))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                state: KVCache | None = None) -> torch.Tensor:
        length = x.shape[1]
        q, k, v = self._qkv(x)
        allowed = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        if mask is not None:
            # Padded keys are never attended to; a padded query still needs one key to stay finite.
            allowed = allowed & (mask[:, None, None, :] | torch.eye(length, dtype=torch.bool, device=x.device))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        if state is not None:
            if length > state.capacity:
                raise ValueError(f"prefill of {length} positions exceeds the KV cache ({state.capacity})")
            state.k[:, :, :length].copy_(k)
            state.v[:, :, :length].copy_(v)
            state.key_mask[:, :length] = True if mask is None else mask
            state.key_mask[:, length:] = False  # a reused state's earlier steps
            state.length.fill_(length)
            if state.window is not None:
                state.window = length
        return self.out(out.transpose(1, 2).flatten(-2))

    def step(self, x: torch.Tensor, state: KVCache) -> torch.Tensor:
        """One query at slot `state.length`, which it fills and advances (in place: no host sync)."""
        if state.window is not None and state.window >= state.capacity:
            raise ValueError(f"KV cache full ({state.capacity} positions)")
        q, k, v = self._qkv(x[:, None])
        slot = state.length.view(1)
        state.k.index_copy_(2, slot, k)
        state.v.index_copy_(2, slot, v)
        state.key_mask.index_fill_(1, slot, True)
        state.length.add_(1)
        if state.window is None:  # every slot, those not yet filled masked out by position
            keys, values = state.k, state.v
            allowed = state.key_mask & (state.slots < state.length)
        else:
            state.window += 1
            keys, values = state.k[:, :, :state.window], state.v[:, :, :state.window]
            allowed = state.key_mask[:, :state.window]
        # Written out rather than SDPA: for one query over a long cache, CPU SDPA falls back to its math
        # path, which rescales the whole key cache every step (several times slower on a long cache).
        scores = (q @ keys.transpose(-1, -2)) * self.head_dim ** -0.5
        scores = scores.masked_fill(~allowed[:, None, None, :], float("-inf"))
        out = torch.softmax(scores, dim=-1) @ values
        return self.out(out.flatten(1))


class CrossAttention(nn.Module):
    """Attention from the music sequence to the (projected) text condition."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q = DecodeLinear(dim, dim, bias=False)
        self.kv = DecodeLinear(dim, 2 * dim, bias=False)
        self.out = DecodeLinear(dim, dim, bias=False)

    def memory(self, cond: torch.Tensor, cond_mask: torch.Tensor) -> CrossState:
        k, v = self.kv(cond).unflatten(-1, (2, self.heads, self.head_dim)).permute(2, 0, 3, 1, 4).unbind(0)
        return CrossState(k, v, cond_mask)

    @staticmethod
    def bucketed(memory: CrossState) -> CrossState:
        """The decode state's memory padded with masked keys to the next power of two (at least 16): decode
        steps then see a few caption lengths instead of one per caption, so a compiled (or captured) step
        is reused from prompt to prompt. A masked key gets no weight: the attention is the same. Always new
        contiguous tensors, as padding makes them: a compiled step's guards check strides, and that no two
        blocks share one tensor (the caption's mask would be shared)."""
        pad = max(16, 1 << (memory.k.shape[2] - 1).bit_length()) - memory.k.shape[2]
        k, v = (F.pad(t, (0, 0, 0, pad)).clone(memory_format=torch.contiguous_format) for t in (memory.k, memory.v))
        return CrossState(k, v, F.pad(memory.key_mask, (0, pad), value=False).clone(memory_format=torch.contiguous_format))

    def _attend(self, x: torch.Tensor, memory: CrossState) -> torch.Tensor:
        q = self.q(x).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, memory.k, memory.v, attn_mask=memory.key_mask[:, None, None, :])
        return self.out(out.transpose(1, 2).flatten(-2))

    def forward(self, x: torch.Tensor, memory: CrossState) -> torch.Tensor:
        return self._attend(x, memory)

    def step(self, x: torch.Tensor, memory: CrossState) -> torch.Tensor:
        return self._attend(x[:, None], memory)[:, 0]


def init_linear(module: nn.Module, std: float = 0.02) -> None:
    """GPT-style init for projections and embeddings (Mamba2's own parameters keep theirs)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)


__all__ = ["RMSNorm", "MLP", "EinFFT", "SelfAttention", "CrossAttention", "sinusoidal", "init_linear"]

