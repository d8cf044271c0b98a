"""Controls for `ssmusic codebooks` that can fail, and the music network as their judge.

"The first codebook carries the semantics" is only shown if a judge that keeps the instrument at
k = 1 loses it when the first codebook is not the clip's own. Each control decodes all K codebooks:

- **first codebook from another clip**: clip i's codebooks 2..K under clip i+1's first codebook
  (a derangement over the clips); a judge that follows the first codebook hears the other clip;
- **first codebook constant**: clip i's codebooks 2..K under one constant first-codebook token (the
  set's most frequent), the nearest a residual codec comes to "without the first codebook";
- **random tokens**: every codebook uniform at random (seeded): what no judge should call music.

The music network (musicnn, trained on real recordings, independent of the codec's log-mel features)
judges each reconstruction against the original: does its top instrument tag agree (among the
instrument tags the network has), the KL of its 50 tag probabilities, and the cosine of its
embeddings.
"""

from __future__ import annotations

import numpy as np
import torch

CONTROLS = ("first codebook from another clip", "first codebook constant", "random tokens")


def control_codes(codes: list[torch.Tensor], card: int, seed: int = 0) -> dict[str, list[torch.Tensor]]:
    """codes: per clip [1, K, T] -> per control, per clip [1, K, T]."""
    n = len(codes)
    first = torch.cat([c[0, 0] for c in codes])
    constant = int(torch.bincount(first, minlength=card).argmax())
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, list[torch.Tensor]] = {name: [] for name in CONTROLS}
    for i, own in enumerate(codes):
        length = own.shape[-1]
        other = codes[(i + 1) % n][0, 0]
        swapped = own.clone()
        swapped[0, 0] = other.repeat((length + len(other) - 1) // len(other))[:length]
        out[CONTROLS[0]].append(swapped)
        flat = own.clone()
        flat[0, 0] = constant
        out[CONTROLS[1]].append(flat)
        out[CONTROLS[2]].append(torch.randint(0, card, own.shape, generator=generator))
    return out


def load_network():
    """The music network, or None with the reason (the sweep then reports its judge as skipped)."""
    from ssmusic.errors import SsmusicError

    try:
        from ssmusic.metrics.musicnn import load_musicnn

        return load_musicnn("MTT_musicnn"), None
    except (ImportError, SsmusicError) as error:
        return None, str(error)


def network_features(tagger, wav: torch.Tensor, sample_rate: int) -> dict:
    out = tagger.analyze(wav.numpy(), sample_rate)
    return {"tags": out["tag_probs"].numpy(), "net": out["embedding"].numpy()}


def network_scores(originals: list[dict], reconstructions: list[dict], tag_names: list[str]) -> dict:
    """Agreement of the top instrument tag, tag KL and embedding cosine of reconstructions vs originals."""
    from ssmusic.metrics.kl import kl_divergence
    from ssmusic.metrics.prompts import INSTRUMENT_WORDS
    from ssmusic.metrics.statistics import describe, share

    index = [tag_names.index(t) for t in INSTRUMENT_WORDS if t in tag_names]
    a = np.stack([o["tags"] for o in originals])
    b = np.stack([r["tags"] for r in reconstructions])
    agree = a[:, index].argmax(-1) == b[:, index].argmax(-1)
    ea, eb = np.stack([o["net"] for o in originals]), np.stack([r["net"] for r in reconstructions])
    cosine = (ea * eb).sum(-1) / (np.linalg.norm(ea, axis=-1) * np.linalg.norm(eb, axis=-1) + 1e-12)
    return {"network_instrument_agreement": share(agree.tolist()),
            "network_tag_kl": describe(kl_divergence(a, b).tolist()),
            "network_cosine": describe(cosine.tolist())}
