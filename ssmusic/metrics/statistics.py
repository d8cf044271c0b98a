"""Every figure with its n and a 95% interval, and the mean and range over sampling seeds.

- Shares (a clip is right or wrong: tempo hits, mode, tag adherence) get the **Wilson score
  interval**: unlike the textbook normal interval it keeps its coverage near 0% and 100% and with
  the 16-40 clips a split holds.
- Means and medians get a **percentile bootstrap** over clips (2,000 resamples, fixed seed, so a
  rerun prints the same interval); a Fréchet distance between two clip sets gets a **jackknife**
  (leave one clip out of either set) normal interval, see jackknife_sets.
- Over seeds a figure is reported as the mean and the range (min, max) of the per-seed values,
  never the best seed.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

Z95 = 1.959963984540054  # the two-sided 95% normal quantile
BOOTSTRAP_RESAMPLES = 2000
WILSON = "Wilson score, 95%"
BOOTSTRAP = f"percentile bootstrap over clips, {BOOTSTRAP_RESAMPLES} resamples, 95%"


def wilson_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial share hits/n."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def share(hits: Sequence[bool]) -> dict:
    """A share of clips with its n and Wilson interval."""
    n, k = len(hits), int(sum(bool(h) for h in hits))
    if n == 0:
        return {"n": 0, "skipped": "no clip to count"}
    low, high = wilson_interval(k, n)
    return {"value": round(k / n, 4), "hits": k, "n": n, "ci95": [round(low, 4), round(high, 4)], "interval": WILSON}


def bootstrap_interval(values: Sequence[float], statistic: Callable[[np.ndarray], float] = np.mean,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over the rows of `values`."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return (float("nan"), float("nan"))
    index = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))
    if statistic is np.mean:  # vectorised: the common case, and the coverage test's
        stats = x[index].mean(axis=1)
    else:
        stats = np.array([statistic(x[i]) for i in index])
    low, high = np.nanpercentile(stats, [2.5, 97.5])
    return (float(low), float(high))


def describe(values: Sequence[float], statistic: str = "mean", digits: int = 4) -> dict:
    """A statistic ('mean' or 'median') of per-clip values with its n and bootstrap interval."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(x) == 0:
        return {"n": 0, "skipped": "no finite value"}
    function = {"mean": np.mean, "median": np.median}[statistic]
    low, high = bootstrap_interval(x, function)
    return {"value": round(float(function(x)), digits), "statistic": statistic, "n": int(len(x)),
            "ci95": [round(low, digits), round(high, digits)], "interval": BOOTSTRAP}


def jackknife_sets(a: Sequence, b: Sequence, statistic: Callable[[list, list], float],
                   z: float = Z95) -> tuple[float, float]:
    """Normal interval of statistic(a, b) from its leave-one-clip-out (jackknife) variance over both
    sets. For a Fréchet distance between clip sets: a bootstrap resample repeats clips, which
    shrinks its covariance and pushes every resampled distance up (the percentile interval can miss
    the estimate altogether); deleting one clip at a time does not."""
    def variance(values: list[float]) -> float:
        x = np.asarray(values, np.float64)
        return (len(x) - 1) / len(x) * float(((x - x.mean()) ** 2).sum())

    value = statistic(list(a), list(b))
    var_a = variance([statistic([c for j, c in enumerate(a) if j != i], list(b)) for i in range(len(a))])
    var_b = variance([statistic(list(a), [c for j, c in enumerate(b) if j != i]) for i in range(len(b))])
    half = z * float(np.sqrt(var_a + var_b))
    return (value - half, value + half)


def paired_difference(a: Sequence[float], b: Sequence[float], digits: int = 4) -> dict:
    """Mean of a[i] - b[i] over pairs with both values finite, with its bootstrap interval (a paired
    test can be redone from the per-clip values saved beside it)."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None and np.isfinite(x) and np.isfinite(y)]
    if not pairs:
        return {"n": 0, "skipped": "no pair with both values"}
    return describe([x - y for x, y in pairs], "mean", digits)


def over_seeds(values: Sequence[float | None], digits: int = 4) -> dict:
    """Mean and range (min, max) of one figure's per-seed values (the seeds that gave a value)."""
    x = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not x:
        return {"seeds": 0, "skipped": "no seed gave a value"}
    return {"mean": round(float(np.mean(x)), digits), "min": round(min(x), digits), "max": round(max(x), digits),
            "seeds": len(x), "per_seed": [round(v, digits) for v in x]}
