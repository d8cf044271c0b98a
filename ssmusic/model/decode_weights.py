"""Weights stored in bfloat16 or int8 for decoding, beside the float32 ones (which stay the
reference, and the only ones training and state_dict see).

A decode step with few rows is bound by streaming the weights once per token, so halving (bf16) or
quartering (int8) their bytes lowers the floor itself. int8 is weight-only and symmetric per output
row: w ~= q * scale, |q| <= 127, so each weight is off by at most scale/2 (scale = max|row| / 127);
activations stay in bf16 for the product and everything outside the linears stays float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssmusic.errors import SsmusicError

DECODE_DTYPES = ("float32", "bfloat16", "int8")
STATE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
FEW_ROWS = 16  # at most this many bf16 rows take the W @ x.T product on CPU


def check_decode_dtype(dtype: str, device: torch.device | str) -> None:
    if dtype not in DECODE_DTYPES:
        raise SsmusicError(f"--decode-dtype: expected one of {', '.join(DECODE_DTYPES)}, got {dtype!r}")
    if dtype == "int8" and torch.device(device).type != "cpu":
        # torch's int8 weight-only matmul (_weight_int8pack_mm) has CPU and MPS kernels only
        raise SsmusicError("--decode-dtype int8: CPU only (on a GPU use bfloat16)")


def state_dtype(name: str) -> torch.dtype:
    """The SSM decode state's storage type by name (--state-dtype)."""
    if name not in STATE_DTYPES:
        raise SsmusicError(f"--state-dtype: expected one of {', '.join(STATE_DTYPES)}, got {name!r}")
    return STATE_DTYPES[name]


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[out, in] float -> (int8 [out, in], float32 scales [out]), symmetric per output row."""
    scales = weight.detach().float().abs().amax(dim=1).clamp(min=1e-12) / 127.0
    q = torch.round(weight.detach().float() / scales[:, None]).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scales


def decode_linear(x: torch.Tensor, dtype: str, weight: torch.Tensor, scales: torch.Tensor | None,
                  bias: torch.Tensor | None) -> torch.Tensor:
    """x [..., in] (float32) through a bf16 `weight`, or an int8 one with bf16 `scales` -> [..., out]
    in x's dtype. The product runs in bf16 with float32 accumulation (oneDNN / cuBLAS)."""
    rows, features = x.numel() // x.shape[-1], x.shape[-1]
    flat = x.reshape(rows, features).to(torch.bfloat16)
    if dtype == "int8":
        out = torch._weight_int8pack_mm(flat.contiguous(), weight, scales)
    elif rows <= FEW_ROWS and x.device.type == "cpu":
        # bf16 on CPU: W @ x.T streams the weight ~1.3-1.5x faster than F.linear at 2-16 rows (torch 2.13,
        # 1 thread, the small model's weight shapes; float32 is the other way round, see layers.DecodeLinear)
        out = (weight @ flat.T).T
    else:
        out = F.linear(flat, weight)
    out = out.to(x.dtype)
    if bias is not None:
        out = out + bias
    return out.reshape(*x.shape[:-1], out.shape[-1])
