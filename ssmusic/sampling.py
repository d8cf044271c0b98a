"""Choosing the next token from logits: temperature, top-k, top-p (nucleus)."""

from __future__ import annotations

import torch


def sample_next(logits: torch.Tensor, top_k: int = 250, top_p: float = 0.0, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """logits [..., V] -> token ids [...]. top_k=0 and top_p=0 disable those filters; top_k=1 is greedy."""
    if top_k == 1:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    vocab = logits.shape[-1]
    if 0 < top_k < vocab:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0.0 < top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token when the mass before it already reaches top_p (the first token always stays)
        drop = (torch.cumsum(probs, dim=-1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = torch.softmax(logits, dim=-1)
    flat = torch.multinomial(probs.reshape(-1, vocab), 1, generator=generator)
    return flat.reshape(logits.shape[:-1])
