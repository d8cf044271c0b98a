"""CUDA-graph decoding: one decode step, with its sampling, captured once and replayed per frame.

Why: on a GPU a decode step is bound by launching its ~300 small kernels from Python, not by the
GPU (one prompt of the small preset: 8.4 ms eager on an H200 against a 39 us memory floor). A CUDA
graph records those launches once and replays them in one call.

A DecodeGraph owns everything the captured step touches, at fixed addresses: a decode state made
static (DecodeState.static: the position and the KV caches' lengths are tensors advanced in place,
attention reads the whole cache masked by position), the frame fed in (`tokens`), the next frame's
forced tokens (`forced`), the pooled caption vector, the sampling settings (a FrameSampler's
buffers: temperature, guidance weight, top-p) and the random generator. Its unit of work is
    tokens -> step -> logits -> CFG -> draw -> where forced -> tokens
so that the sampled frame is already where the next replay reads it: per frame the host copies in
one forced frame and replays. Each generation writes its prefill into the same state (`prefill(...,
state=)`), reseeds the generator and refills the settings' buffers, then replays.

Captured once per (rows, codebooks, top-k, top-p on/off, seeded or not, pooled or not, caption
length for cross-attention, KV capacity rounded up to a power of two for attention, device, the
weights' addresses): a new shape captures anew (a few steps' time), later generations of the same
shape only replay. Random numbers come from the generator registered with the graph (seeded runs)
or from torch's default CUDA generator, each replay advancing it as the eager calls would: a graph
draws what eager decoding draws. Off CUDA a DecodeGraph is called instead of replayed: the same
static-buffer path, which the CPU tests compare with eager decoding.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict

import torch

from ssmusic.model.controls import no_controls
from ssmusic.model.layers import SelfAttention
from ssmusic.model.sampling import FrameSampler, SamplingParams

WARMUP = 3  # eager runs on a side stream before capture (cuBLAS/cuFFT plans, Triton autotuning)
MAX_GRAPHS = 8  # captured steps kept per model (each holds its decode state on the device)
MIN_CAPACITY = 256
_capture_lock = threading.Lock()  # one capture at a time in a process (serve's workers share a model)


class DecodeGraph:
    """One batch shape's static buffers and its captured step (None off CUDA: then called directly)."""

    def __init__(self, model, sampling: SamplingParams, batch: int, guided: bool, cond_shape: torch.Size,
                 pooled: torch.Tensor | None, capacity: int, pool=None) -> None:
        device = model.null.device
        rows, K = cond_shape[0], model.config.n_codebooks
        self.model, self.guided, self.busy = model, guided, False
        self.state = model.allocate(rows, capacity, device, model.null.dtype).static()
        self.tokens = torch.zeros(batch, K, dtype=torch.long, device=device)
        self.forced = torch.full((batch, K), -1, dtype=torch.long, device=device)
        self.pooled = None if pooled is None else torch.zeros_like(pooled)
        self.sampler = FrameSampler(sampling, batch, guided, device)
        self.generator = None if sampling.seed is None else torch.Generator(device=device).manual_seed(0)
        # a prefill of a blank caption of the right shape fills the cross-attention buffers the step reads
        blank = torch.zeros(cond_shape, device=device, dtype=model.null.dtype)
        # (and, for a model that hears the prompt's controls, the buffer each generation's prefill writes)
        controls = no_controls(rows, device) if model.uses_controls else None
        model.prefill(blank, torch.ones(cond_shape[:2], dtype=torch.bool, device=device), 0, pooled=self.pooled,
                      state=self.state, controls=controls)
        self.graph = self._capture(pool) if device.type == "cuda" else None

    def _body(self) -> None:
        fed = torch.cat([self.tokens, self.tokens]) if self.guided else self.tokens
        h = self.model.step(fed, self.state, self.pooled)
        self.tokens.copy_(self.sampler(self.model._logits(h), self.forced, self.generator))

    def _capture(self, pool) -> torch.cuda.CUDAGraph:
        device = self.tokens.device
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP):
                self._body()
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        if self.generator is not None:
            graph.register_generator_state(self.generator)
        # thread_local: another thread's CUDA work (serve's other workers) does not break this capture
        with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
            self._body()
        return graph

    def start(self, sampling: SamplingParams, pooled: torch.Tensor | None) -> torch.Generator | None:
        """A new generation: its settings and caption vector into the buffers, the generator reseeded.
        -> the generator to draw from (None: torch's default one)."""
        self.sampler.update(sampling)
        if self.pooled is not None:
            self.pooled.copy_(pooled)
        if self.generator is not None:
            self.generator.manual_seed(sampling.seed)
        return self.generator

    def replay(self, forced: torch.Tensor) -> torch.Tensor:
        """Step on `tokens` (the last frame), then draw the next: -> `tokens`, overwritten."""
        self.forced.copy_(forced)
        if self.graph is None:
            self._body()
        else:
            self.graph.replay()
        return self.tokens


def _weights(model) -> tuple[int, ...]:
    """Where the weights live: a step captured before .to(), or before new decode-weight copies, reads
    memory that is no longer theirs."""
    return tuple(t.data_ptr() for t in itertools.chain(model.parameters(), model.buffers()))


def _key(model, sampling: SamplingParams, batch: int, guided: bool, cond_shape, pooled, capacity: int) -> tuple:
    attention = any(isinstance(m, SelfAttention) for m in model.modules())
    cross = model.config.conditioning == "cross"
    return (batch, guided, sampling.top_k, 0.0 < sampling.top_p < 1.0, sampling.seed is not None, pooled is None,
            cond_shape[1] if cross else 0, capacity if attention else 0, str(model.null.device),
            model.config.n_codebooks)


def capacity_for(needed: int) -> int:
    """KV capacity rounded up to a power of two (from MIN_CAPACITY), so nearby lengths share a capture."""
    return max(MIN_CAPACITY, 1 << (needed - 1).bit_length())


def runner(model, sampling: SamplingParams, batch: int, guided: bool, cond_shape, pooled, needed: int) -> DecodeGraph:
    """A free DecodeGraph for this generation's shape, captured now if none is cached."""
    # room for the generation, and for the blank prefill and warm-up steps made before capture
    capacity = capacity_for(max(needed, cond_shape[1] + 1 + WARMUP + 1))
    key = _key(model, sampling, batch, guided, cond_shape, pooled, capacity)
    weights = _weights(model)
    with _capture_lock:
        cache = model.__dict__.setdefault("_decode_graphs", {"weights": weights, "graphs": OrderedDict()})
        if cache["weights"] != weights:  # moved or re-copied: every capture reads stale memory
            cache["weights"], cache["graphs"] = weights, OrderedDict()
        graphs = cache["graphs"].setdefault(key, [])
        cache["graphs"].move_to_end(key)
        found = next((g for g in graphs if not g.busy), None)
        if found is None:
            pool = cache.get("pool")
            if pool is None and model.null.device.type == "cuda":
                pool = cache["pool"] = torch.cuda.graph_pool_handle()
            found = DecodeGraph(model, sampling, batch, guided, cond_shape, pooled, capacity, pool)
            graphs.append(found)
            while len(cache["graphs"]) > MAX_GRAPHS:
                cache["graphs"].popitem(last=False)
        found.busy = True
    return found


def forget(model) -> None:
    """Drop a model's captured steps (after its decode weights or state type change)."""
    model.__dict__.pop("_decode_graphs", None)
