"""Judges of motion, tempo and key, each beside the same judge on the real reference clips.

Inputs are per-clip readings (clips.MusicReader.fields) of the generated and the reference clips,
with each generated clip's prompt and, where its prompt is a reference caption, that reference row.

- **Motion**: medians of the frozen run (codec), longest onset gap and onset rate, of repeat share
  and distinct tokens, generated vs real, each with a bootstrap interval, their ratio, and the
  paired difference to the reference clip of the same caption.
- **Tempo adherence**: share of clips whose beat-tracked tempo is within 8% of the prompted BPM,
  octave errors (2x, 0.5x) counted apart; ceiling: the same on the real clips. **Slow vs fast**:
  over pairs of clips whose prompted tempos differ by 1.5x or more, the share in which the faster
  prompt reads faster (by the beat tracker, and by onset rate), with a bootstrap interval over clips.
- **Mode adherence**: with the prompted tonic given, is the clip's chroma closer to the major or
  the minor profile, and is it the prompted mode? Also the full key (tonic and mode) estimate.
"""

from __future__ import annotations

import numpy as np

from ssmusic.metrics.statistics import BOOTSTRAP, describe, paired_difference, share

MOTION_FIELDS = ("frozen_run_s", "longest_onset_gap_s", "onset_rate", "repeat_share", "distinct_tokens")
ORDER_RATIO = 1.5


def motion(gen: list[dict], ref: list[dict], paired_ref: list[dict | None]) -> dict:
    """Per field: generated and real medians with intervals, their ratio, the paired difference."""
    out = {}
    for field in MOTION_FIELDS:
        g = describe([c[field] for c in gen], "median")
        r = describe([c[field] for c in ref], "median")
        entry = {"generated": g, "real": r}
        if g.get("value") is not None and r.get("value"):
            entry["ratio"] = round(g["value"] / r["value"], 3)
        pairs = [(c[field], p[field]) for c, p in zip(gen, paired_ref) if p is not None]
        if pairs:
            entry["paired_difference"] = paired_difference(*zip(*pairs))
        out[field] = entry
    return out


def _pair_order(bpms: list[float], readings: list[float], index: np.ndarray) -> float:
    """Share of (slow, fast) pairs among clips `index` in which the faster-prompted clip reads higher."""
    right = total = 0
    for a in index:
        for b in index:
            if bpms[b] >= ORDER_RATIO * bpms[a] and np.isfinite(readings[a]) and np.isfinite(readings[b]):
                total += 1
                right += readings[b] > readings[a]
    return right / total if total else float("nan")


def ordering(bpms: list[float], readings: list[float], seed: int = 0) -> dict:
    """Slow-vs-fast ordering share with a bootstrap interval that resamples clips (pairs share clips)."""
    index = np.arange(len(bpms))
    value = _pair_order(bpms, readings, index)
    if not np.isfinite(value):
        return {"skipped": f"no two clips with prompted tempos {ORDER_RATIO}x apart"}
    pairs = sum(1 for a in index for b in index if bpms[b] >= ORDER_RATIO * bpms[a])
    rng = np.random.default_rng(seed)
    stats = [_pair_order(bpms, readings, rng.integers(0, len(bpms), len(bpms))) for _ in range(500)]
    low, high = np.nanpercentile(stats, [2.5, 97.5])
    return {"value": round(value, 4), "pairs": pairs, "n": len(bpms), "ci95": [round(float(low), 4), round(float(high), 4)],
            "interval": BOOTSTRAP.replace("2000", "500")}


def _tempo_block(clips: list[dict], bpms: list[float | None]) -> dict:
    from ssmusic.metrics.tempo import tempo_match

    known = [(c, b) for c, b in zip(clips, bpms) if b is not None]
    matches = [tempo_match(c["tempo_bpm"], b) for c, b in known]
    return {"hit": share([m == "hit" for m in matches]), "octave_error": share([m == "octave" for m in matches]),
            "order_by_tempo": ordering([b for _, b in known], [c["tempo_bpm"] for c, _ in known]),
            "order_by_onset_rate": ordering([b for _, b in known], [c["onset_rate"] for c, _ in known])}


def tempo(gen: list[dict], gen_bpms: list[float | None], ref: list[dict], ref_bpms: list[float | None],
          estimator: str) -> dict:
    """Tempo adherence of the generated clips beside the same judge on the real clips (ceiling)."""
    if not any(b is not None for b in gen_bpms):
        return {"skipped": "no prompt names a tempo (N BPM) and none is a reference caption with tempo_bpm"}
    result = {"estimator": estimator, "tolerance": "8%", **_tempo_block(gen, gen_bpms)}
    if any(b is not None for b in ref_bpms):
        result["ceiling"] = _tempo_block(ref, ref_bpms)
    else:
        result["ceiling"] = {"skipped": "the reference has no tempo_bpm column"}
    return result


def _key_block(clips: list[dict], keys: list[tuple[int, str] | None], profile: str) -> dict:
    from ssmusic.metrics.key import mode_given_tonic

    known = [(c, k) for c, k in zip(clips, keys) if k is not None]
    modes = [mode_given_tonic(None, 0, k[0], profile, chroma=c["chroma"]) == k[1] for c, k in known]
    exact = [(c["key_tonic"], c["key_mode"]) == tuple(k) for c, k in known]
    return {"mode_given_tonic": share(modes), "key_exact": share(exact)}


def key(gen: list[dict], gen_keys: list[tuple[int, str] | None], ref: list[dict],
        ref_keys: list[tuple[int, str] | None], estimator: str, profile: str) -> dict:
    """Mode (given the prompted tonic) and key adherence beside the real clips' ceiling."""
    if not any(k is not None for k in gen_keys):
        return {"skipped": "no prompt names a key (e.g. 'in D minor') and none is a reference caption with a key"}
    result = {"estimator": estimator, "mode_profile": profile, **_key_block(gen, gen_keys, profile)}
    if any(k is not None for k in ref_keys):
        result["ceiling"] = _key_block(ref, ref_keys, profile)
    else:
        result["ceiling"] = {"skipped": "the reference has no key column"}
    return result
