"""The one dispatch point between the pure-PyTorch Mamba2 path and the fused kernels: mamba_ssm's on
CUDA, and for the recurrent step on the CPU ops.cpu_step (built from C with the system compiler).

mamba_ssm is optional (`pip install ssmusic[cuda]`); it is used only when importable *and* the
tensors are on CUDA. Parameters are identical on both paths, so one checkpoint runs on either.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings

import torch

from ssmusic.model.ops import cpu_step
from ssmusic.model.ops.scan import ssd_chunked, ssd_step


@functools.lru_cache(maxsize=1)
def _mamba_ssm():
    """The fused kernels, or None. Not installed is the normal CPU case and stays silent; installed
    but unimportable (CUDA/triton/ABI mismatch) would otherwise make GPU runs silently slow, so it
    warns once (the cache) with the reason."""
    if importlib.util.find_spec("mamba_ssm") is None:
        return None
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update
    except Exception as err:  # ImportError, OSError from a CUDA library, a triton error, ...
        warnings.warn(f"mamba-ssm is installed but its kernels do not import ({type(err).__name__}: {err}); "
                      "using the pure-PyTorch Mamba2 path", RuntimeWarning, stacklevel=3)
        return None
    return mamba_chunk_scan_combined, selective_state_update


@functools.lru_cache(maxsize=8)
def _zero(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """One zero per device and dtype, made once: not a fill launched per layer and per decode step."""
    return torch.zeros(1, device=device, dtype=dtype)


def use_fused(tensor: torch.Tensor) -> bool:
    # under torch.compile the reference ops are what inductor fuses into its own kernels; mamba-ssm's
    # autotuned Triton calls (and the import probe) cannot be traced into a full graph
    return tensor.is_cuda and not torch.compiler.is_compiling() and _mamba_ssm() is not None


def chunk_scan(x, dt, A, B, C, chunk_size: int, D, initial_state=None):
    """Dispatch for the chunked scan: (y [B,L,H,P], final_state [B,H,P,N])."""
    if use_fused(x):
        scan, _ = _mamba_ssm()
        y, final = scan(x, dt, A, B, C, chunk_size, D=D, initial_states=initial_state,
                        return_final_states=True)
        return y, final
    return ssd_chunked(x, dt, A, B, C, chunk_size, D=D, initial_state=initial_state)


def state_step(state, x, dt, A, B, C, D, scratch=None):
    """Dispatch for one recurrent step (state updated in place): y [B, H, P]."""
    if use_fused(x):
        _, update = _mamba_ssm()
        heads, headdim, d_state = state.shape[1:]
        # dt arrives with its bias and softplus applied; a zero bias is still passed because, with A
        # and dt broadcast over the head dimension (its fast path), mamba-ssm 2.3 reads
        # dt_bias.stride() and fails on None (found on an H200: results/gpu_check_h200.md)
        no_bias = _zero(dt.device, dt.dtype).expand(heads, headdim)
        return update(
            state, x, dt[..., None].expand(-1, -1, headdim),
            A[:, None, None].expand(heads, headdim, d_state), B, C,
            D[:, None].expand(heads, headdim), dt_bias=no_bias, dt_softplus=False)
    if cpu_step.usable(state):
        return cpu_step.ssd_step_(state, x, dt, A, B, C, D).to(x.dtype)
    return ssd_step(state, x, dt, A, B, C, D, scratch)
