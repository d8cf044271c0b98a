"""Choosing the next token: the sampling settings (one dataclass for the LM, the pipeline and the
CLI) and the draw itself (temperature, top-k, top-p)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ssmusic.errors import BadValue

MAX_SEED = 2**64 - 1  # what torch.Generator.manual_seed takes (negative seeds would wrap around)


def _real(value: object) -> bool:
    """A finite int or float (not a bool, not NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SamplingParams:
    """How `MusicLM.generate` turns logits into tokens.

    cfg_scale: classifier-free guidance (1 = conditional only, no doubled batch);
    top_k / top_p: 0 disables the filter, top_k=1 is greedy; seed: None draws from torch's global
    generator. Invalid values are refused on construction, naming the CLI flag that sets them."""

    cfg_scale: float = 3.0
    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        # the one place these rules live: the CLI, the Python API and the web API all construct one
        if not _real(self.cfg_scale) or self.cfg_scale < 0:
            raise BadValue("cfg", "a number >= 0", self.cfg_scale)
        if not _whole(self.top_k) or self.top_k < 0:
            raise BadValue("top_k", "an integer >= 0 (0 = no limit)", self.top_k)
        if not _real(self.top_p) or not 0.0 <= self.top_p <= 1.0:
            raise BadValue("top_p", "a number in [0, 1] (0 = off)", self.top_p)
        if not _real(self.temperature) or self.temperature <= 0:
            raise BadValue("temperature", "a positive number", self.temperature)
        if self.seed is not None and (not _whole(self.seed) or not 0 <= self.seed <= MAX_SEED):
            raise BadValue("seed", f"an integer from 0 to {MAX_SEED} (2^64 - 1)", self.seed)

    @property
    def guided(self) -> bool:
        return self.cfg_scale != 1.0

    def generator(self, device: torch.device | str) -> torch.Generator | None:
        """A generator seeded with `seed` on `device`, or None (torch's global one)."""
        if self.seed is None:
            return None
        return torch.Generator(device=device).manual_seed(self.seed)


def sample_next(logits: torch.Tensor, top_k: int = 250, top_p: float | torch.Tensor = 0.0,
                temperature: float | torch.Tensor = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """logits [..., V] -> token ids [...]. top_k=0 and top_p=0 disable those filters; top_k=1 is greedy.
    `top_p` and `temperature` may be 0-d tensors (FrameSampler's buffers): a tensor top_p always filters."""
    if top_k == 1:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    vocab = logits.shape[-1]
    if 0 < top_k < vocab:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if isinstance(top_p, torch.Tensor) or 0.0 < top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token when the mass before it already reaches top_p (the first token always stays)
        drop = (torch.cumsum(probs, dim=-1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = torch.softmax(logits, dim=-1)
    flat = torch.multinomial(probs.reshape(-1, vocab), 1, generator=generator)
    return flat.reshape(logits.shape[:-1])


def draw_as_sampling(shape: tuple[int, int, int], sampling: SamplingParams, generator: torch.Generator | None,
                     device: torch.device) -> None:
    """Consume the random numbers that sample_next draws for logits of `shape` [B, K, V] without
    sampling: multinomial draws one number per vocabulary entry whatever the logits, so a frame that
    is known (not sampled) keeps the draws of later frames where they were."""
    if sampling.top_k != 1:  # greedy draws nothing
        sample_next(torch.zeros(shape, device=device), sampling.top_k, sampling.top_p, sampling.temperature, generator)


class FrameSampler:
    """One decode step's logits -> the frame's tokens: classifier-free guidance, the draw, then the
    tokens the frame is forced to take. The settings that are numbers (temperature, guidance weight,
    top-p) live in tensors on the device, changed in place by `update`: the same code runs eagerly and
    inside a captured CUDA graph (ssmusic.model.graphs), where a Python number would be frozen at
    capture, and both compute the same values. top_k, and whether top-p filters, decide which
    operations run: a captured step is specific to them."""

    def __init__(self, sampling: SamplingParams, batch: int, guided: bool, device: torch.device | str) -> None:
        self.batch, self.guided, self.top_k = batch, guided, sampling.top_k
        self.filters_top_p = 0.0 < sampling.top_p < 1.0
        self.temperature = torch.zeros((), device=device)
        self.weight = torch.zeros((), device=device)  # cfg_scale - 1
        self.top_p = torch.zeros((), device=device)
        self.update(sampling)

    def update(self, sampling: SamplingParams) -> None:
        # cfg_scale - 1 taken in double, as the Python expression it replaces, then stored in float32
        self.temperature.fill_(sampling.temperature)
        self.weight.fill_(sampling.cfg_scale - 1.0)
        self.top_p.fill_(sampling.top_p)

    def __call__(self, logits: torch.Tensor, forced: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """logits [R, K, V] (R = 2 x batch when guided: conditional rows first), forced [batch, K]
        (-1 where sampled) -> tokens [batch, K]."""
        logits = logits.float()
        if self.guided:
            cond, null = logits[:self.batch], logits[self.batch:]
            logits = cond + self.weight * (cond - null)
        tokens = sample_next(logits, self.top_k, self.top_p if self.filters_top_p else 0.0, self.temperature, generator)
        return torch.where(forced >= 0, forced, tokens)
