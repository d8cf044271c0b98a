"""The decoding loop of MusicLM.generate / generate_frames: logits -> CFG -> sample (or the forced
token) -> feed back, one delayed frame at a time.

Two ways through it, giving the same frames:
- eager (the reference, and the CPU path): the model's step and the FrameSampler called per frame;
  a wholly forced frame (an audio prompt fed step by step, the delay pattern's head) skips the logits.
- static (`static=True`; what CUDA decoding uses): a DecodeGraph (ssmusic.model.graphs) holds the
  decode state and the step's inputs and outputs in fixed buffers and runs step + sampling as one unit,
  captured once in a CUDA graph and replayed per frame on CUDA, called directly elsewhere (the tests
  drive it so on the CPU). Every frame is sampled then overwritten where forced, which draws the same
  random numbers as the eager path's skip (`draw_as_sampling`).
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from ssmusic.model import graphs
from ssmusic.model.controls import no_controls
from ssmusic.model.patterns import forced_tokens
from ssmusic.model.sampling import FrameSampler, SamplingParams, draw_as_sampling

forget_graphs = graphs.forget


def sample_frames(model, cond: torch.Tensor, cond_mask: torch.Tensor, pooled: torch.Tensor | None, batch: int,
                  steps: int, sampling: SamplingParams, guided: bool, prompt_codes: torch.Tensor | None,
                  callback: Callable[[int, int], None] | None, parallel_prefill: bool = True,
                  static: bool = False, controls: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """Yield each new frame [B, K] of a generation once its last codebook is sampled."""
    K, device = model.config.n_codebooks, model.null.device
    forced = forced_tokens(batch, K, steps, prompt_codes, model.delay_id, device)
    total = forced.shape[-1]
    prompt_len = 0 if prompt_codes is None else prompt_codes.shape[-1]
    # The first `prompt_len` delayed frames are wholly known: the parallel path runs them in one
    # forward pass; the reference feeds them one step at a time. A wholly known frame is not
    # sampled but still draws the random numbers sampling it would, on both paths: both give the
    # same continuation under a seed, and the one earlier versions gave.
    known = prompt_len if parallel_prefill else 0
    prefix = forced[:, :, :known]
    fed_prefix = torch.cat([prefix, prefix]) if guided else prefix
    runner = None
    if static:
        capacity = model.capacity(cond.shape[1], known, total - known)
        runner = graphs.runner(model, sampling, batch, guided, cond.shape, pooled, capacity)
        generator = runner.start(sampling, pooled)
        sampler = runner.sampler
    else:
        generator = sampling.generator(device)
        sampler = FrameSampler(sampling, batch, guided, device)
    try:
        if runner is not None and model.uses_controls and controls is None:  # the captured step reads a buffer
            controls = no_controls(cond.shape[0], device)
        h, state = model.prefill(cond, cond_mask, total - known, pooled=pooled, tokens=fed_prefix,
                                 state=None if runner is None else runner.state, controls=controls)
        out = torch.empty_like(forced)
        out[:, :, :known] = prefix
        vocab = (batch, K, model.heads[0].out_features)
        for _ in range(known):
            draw_as_sampling(vocab, sampling, generator, device)
        for t in range(known, total):
            if runner is not None and t > known:
                tokens = runner.replay(forced[:, :, t])  # the step fed the last frame, then this frame's draw
            elif runner is None and bool((forced[:, :, t] >= 0).all()):
                tokens = forced[:, :, t]
                draw_as_sampling(vocab, sampling, generator, device)
            else:
                tokens = sampler(model._logits(h), forced[:, :, t], generator)
            out[:, :, t] = tokens
            if callback is not None:
                callback(t, total)
            frame = t - (K - 1)  # the frame whose last codebook this step sampled
            if frame >= prompt_len:
                yield torch.stack([out[:, k, frame + k] for k in range(K)], dim=1)
            if t == total - 1:
                break
            if runner is None:
                h = model.step(torch.cat([tokens, tokens]) if guided else tokens, state, pooled)
            elif t == known:
                runner.tokens.copy_(tokens)  # later frames' tokens are written by the replayed step itself
    finally:
        if runner is not None:
            runner.busy = False  # free for the next generation of this shape
