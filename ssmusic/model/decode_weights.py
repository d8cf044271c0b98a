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
# float32, 2 to this many rows (one to four prompts with CFG) on a CPU that is not Intel's: W @ x.T too.
# Which product MKL streams faster depends on the CPU: on an Intel Xeon F.linear was 1.9-2.1x faster at
# 2 rows (results/linear_rows.json); on an AMD EPYC (Zen 5) W @ x.T is 1.6-2.2x faster at 2-4 rows with
# one thread, and with two F.linear's threaded few-row path made the small model's step 2x slower than
# W @ x.T (docs/performance.md, "Threads").
FEW_ROWS_F32 = 8


def _intel_cpu() -> bool:
    try:
        with open("/proc/cpuinfo") as handle:
            return any(line.startswith("vendor_id") and "GenuineIntel" in line for line in handle)
    except OSError:
        return False


F32_TRANSPOSED = not _intel_cpu()  # read once: the float32 few-row product W @ x.T (see FEW_ROWS_F32)


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


def few_row_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
    """The float32 CPU product of 2..FEW_ROWS_F32 rows as W @ x.T where that is the faster one
    (F32_TRANSPOSED), else None (the caller uses F.linear)."""
    rows = x.numel() // x.shape[-1]
    if not (F32_TRANSPOSED and 2 <= rows <= FEW_ROWS_F32 and x.device.type == "cpu" and x.dtype == torch.float32):
        return None
    # row-major rows: x.T is then a transposed view MKL reads as is (a column-major copy is 3x slower)
    out = (weight @ x.reshape(rows, x.shape[-1]).contiguous().T).T
    if bias is not None:
        out = out + bias  # addmm with a broadcast bias takes F.linear's slow path again
    return out.reshape(*x.shape[:-1], weight.shape[0])


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
