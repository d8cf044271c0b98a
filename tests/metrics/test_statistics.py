"""Intervals cover what they claim on known cases, and a bad interval is caught by the same check."""

import math

import numpy as np

from ssmusic.metrics.statistics import (bootstrap_interval, describe, over_seeds, paired_difference, share,
                                        wilson_interval, Z95)


def _coverage(interval, p: float, n: int) -> float:
    """Exact coverage: the binomial probability of the outcomes whose interval holds p."""
    covered = 0.0
    for k in range(n + 1):
        low, high = interval(k, n)
        if low <= p <= high:
            covered += math.comb(n, k) * p**k * (1 - p) ** (n - k)
    return covered


def _wald(k: int, n: int) -> tuple[float, float]:
    p = k / n
    half = Z95 * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


GRID = np.linspace(0.02, 0.98, 49)


def test_wilson_covers_95_percent_on_average_at_the_sizes_used():
    for n in (16, 25, 40):
        coverage = [_coverage(wilson_interval, p, n) for p in GRID]
        # Wilson's coverage oscillates with p (Brown, Cai & DasGupta 2001): near 95% on average, never far below
        assert 0.94 <= np.mean(coverage) <= 0.965 and min(coverage) >= 0.90, n


def test_the_coverage_check_catches_the_wald_interval():
    # the case that must fail: the normal (Wald) interval collapses at k = 0 and under-covers
    for n in (16, 25, 40):
        assert np.mean([_coverage(_wald, p, n) for p in GRID]) < 0.93, n
    assert _coverage(_wald, 0.05, 25) < 0.80


def test_bootstrap_of_a_mean_covers_near_95_percent():
    rng = np.random.default_rng(1)
    trials, covered = 300, 0
    for t in range(trials):
        x = rng.exponential(2.0, size=40)
        low, high = bootstrap_interval(x, seed=t)
        covered += low <= 2.0 <= high
    assert 0.88 <= covered / trials <= 0.99


def test_share_and_describe_report_n_and_interval():
    result = share([True] * 20 + [False] * 5)
    assert result["value"] == 0.8 and result["n"] == 25 and result["ci95"][0] < 0.8 < result["ci95"][1]
    assert share([])["n"] == 0 and "skipped" in share([])
    summary = describe([1.0, 2.0, float("nan"), 3.0], "median")
    assert summary["n"] == 3 and summary["value"] == 2.0
    assert "skipped" in describe([float("nan")])


def test_paired_difference_and_seed_range():
    assert paired_difference([2, 3, None], [1, 1, 5])["value"] == 1.5
    seeds = over_seeds([0.5, None, 0.7])
    assert seeds == {"mean": 0.6, "min": 0.5, "max": 0.7, "seeds": 2, "per_seed": [0.5, 0.7]}


def test_jackknife_interval_of_a_set_statistic_holds_its_estimate_and_covers():
    from ssmusic.metrics.statistics import jackknife_sets

    rng = np.random.default_rng(3)

    def gap(a, b):  # a smooth two-set statistic with a known value: the difference of means (true: 1.0)
        return float(np.mean(a) - np.mean(b))

    covered = 0
    for _ in range(200):
        a, b = rng.normal(1.0, 1.0, 25), rng.normal(0.0, 1.0, 25)
        low, high = jackknife_sets(list(a), list(b), gap)
        assert low <= gap(a, b) <= high
        covered += low <= 1.0 <= high
    assert 0.90 <= covered / 200 <= 0.99
