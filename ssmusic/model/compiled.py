"""The decode step through torch.compile (inductor), its compiled code cached on disk.

Why: an eager step is ~300 small ATen ops (each a Python and dispatcher round trip): inductor fuses
the elementwise work around the matrix products into a few C++ loops. The SSM state update stays one
opaque call to ops.cpu_step's one-pass kernel on the CPU (inductor's own code for it takes three
passes). The eager step stays the reference.

`compile_decode(model)` replaces the model's `step` with a compiled one *on that instance*
(`eager_decode` undoes it), so every loop that decodes - MusicLM.generate and generate_frames,
recurrent_logits, streaming - runs it unchanged. The logits (a norm and one product per codebook)
stay eager: a second graph would double the compile time for a few ops. Shapes are static: one graph
per (rows, decode dtype), compiled at the first step; the per-frame position is a tensor, so
frames do not recompile, and a cross-attention model's caption memory is padded to a power of two
(CrossAttention.bucketed), so captions of 1-16 tokens share one graph, 17-32 the next, and so on. Backbones with self-attention are refused: their KV cache length is a
Python int that would recompile every frame.

A cold compile takes tens of seconds (`ssmusic bench --decode-floor` records it); inductor's
FX-graph and AOTAutograd caches under `cache.compile_dir()` make later processes start in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ssmusic.io.cache import compile_dir
from ssmusic.errors import SsmusicError
from ssmusic.model.ops import cpu_step

RECOMPILE_LIMIT = 64  # graphs per compiled function: (rows, dtype, grad mode) pairs; torch's 8 is few


def use_disk_cache(directory: str | Path | None = None) -> Path:
    """Point inductor's on-disk caches (FX graphs, AOTAutograd graphs, generated C++) at `directory`
    (default cache.compile_dir()): a graph compiled once is then loaded, not compiled, by later processes.
    Graphs go in a subfolder named by ops.cpu_step's source: inductor's cache key does not see a custom
    op's declared outputs, so a graph cached before that file changed could be loaded and misread them
    (seen while writing it: a stale graph read the float32 read-out as bfloat16)."""
    directory = Path(directory or compile_dir()) / f"graphs-{cpu_step.fingerprint()}"
    directory.mkdir(parents=True, exist_ok=True)
    # inductor reads this variable at every cache access (torch._inductor.runtime.cache_dir_utils)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(directory)
    torch._inductor.config.fx_graph_cache = True
    torch._functorch.config.enable_autograd_cache = True
    return directory


def compile_decode(model: torch.nn.Module, directory: str | Path | None = None) -> torch.nn.Module:
    """Decode `model` (a MusicLM) with a compiled step, cached under `directory`."""
    from ssmusic.model.layers import SelfAttention

    if any(isinstance(m, SelfAttention) for m in model.modules()):
        raise SsmusicError("--compile: recurrent backbones only (simba, mamba); a transformer's KV cache "
                           "grows every frame and would recompile the step each time")
    use_disk_cache(directory)
    cpu_step.available()  # built or loaded now: the trace reads the outcome, it cannot run a compiler
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    # fullgraph: a graph break would silently fall back to eager pieces; dynamic=False: one graph per
    # shape, which decoding a clip keeps, and static shapes compile to the tightest loops
    step = torch.compile(type(model).step.__get__(model), fullgraph=True, dynamic=False)

    def contiguous_step(tokens: torch.Tensor, state, pooled: torch.Tensor | None = None) -> torch.Tensor:
        # static shapes guard strides too: a frame sliced out of a [B, K, T] clip has strides that
        # depend on T, and would recompile the step for every clip length
        return step(tokens.contiguous(), state, None if pooled is None else pooled.contiguous())

    model.step = contiguous_step
    return model


def eager_decode(model: torch.nn.Module) -> torch.nn.Module:
    """Undo compile_decode: the class's eager step again."""
    model.__dict__.pop("step", None)
    return model


def is_compiled(model: torch.nn.Module) -> bool:
    return "step" in model.__dict__
