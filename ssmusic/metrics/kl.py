"""KL divergence between classifier label distributions of reference and generated audio, paired by
caption (as AudioLDM/MusicGen evaluations do with PaSST): mean over pairs of KL(p_ref || p_gen)."""

from __future__ import annotations

import numpy as np

from ssmusic.errors import SsmusicError


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Row-wise KL(p || q) for probability rows [n, classes] (renormalized, eps-smoothed)."""
    p = np.asarray(p, np.float64) + eps
    q = np.asarray(q, np.float64) + eps
    p /= p.sum(-1, keepdims=True)
    q /= q.sum(-1, keepdims=True)
    return (p * (np.log(p) - np.log(q))).sum(-1)


def paired_kl(reference: dict[str, np.ndarray], generated: dict[str, np.ndarray]) -> tuple[float, int]:
    """reference/generated: caption -> mean label distribution of its clips. -> (mean KL, pairs)."""
    common = sorted(set(reference) & set(generated))
    if not common:
        raise SsmusicError("KL: no generated clip shares a caption with the reference (generate from the "
                           "reference captions, e.g. the demo test split's captions.csv)")
    values = kl_divergence(np.stack([reference[c] for c in common]), np.stack([generated[c] for c in common]))
    return float(values.mean()), len(common)


def paired_kl_values(reference: dict[str, np.ndarray], generated: dict[str, np.ndarray]) -> list[float]:
    """The per-caption KL(p_ref || p_gen) values paired_kl averages (for its interval)."""
    common = sorted(set(reference) & set(generated))
    return kl_divergence(np.stack([reference[c] for c in common]), np.stack([generated[c] for c in common])).tolist()
