"""Fréchet distance between Gaussian fits of two embedding sets (the "FAD" of audio evaluation):

    FD = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))

computed in float64. tr((S_a S_b)^(1/2)) is the sum of square roots of the eigenvalues of the
symmetric PSD matrix S_a^(1/2) S_b S_a^(1/2): no complex square roots, no imaginary residue."""

from __future__ import annotations

import warnings

import numpy as np

from ssmusic.errors import SsmusicError


def gaussian(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise SsmusicError(f"Fréchet distance needs at least 2 embeddings of shape [n, dim], got {x.shape}")
    if len(x) <= x.shape[1]:
        warnings.warn(f"{len(x)} embeddings for {x.shape[1]} dimensions: the covariance is rank-deficient and "
                      "the distance is biased upward; compare only runs with the same number of clips",
                      stacklevel=2)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    diff = mu_a - mu_b
    return float(max(0.0, diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt))


def frechet_distance_of(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*gaussian(a), *gaussian(b))


def frechet_of_clips(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Fréchet distance of two clip sets, each clip [windows, dim]; the rank-deficiency warning is
    silenced because callers compare with a floor or a run of the same sizes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return frechet_distance_of(np.concatenate(a), np.concatenate(b))


def frechet_with_interval(a: list[np.ndarray], b: list[np.ndarray]) -> dict:
    """The distance, its jackknife interval over the clips of both sets (statistics.jackknife_sets), and n."""
    from ssmusic.metrics.statistics import jackknife_sets

    result = {"value": round(frechet_of_clips(a, b), 4), "n_generated": len(a), "n_reference": len(b)}
    try:
        low, high = jackknife_sets(a, b, frechet_of_clips)
    except SsmusicError:  # a set too small to leave a clip out of (fewer than 2 windows would remain)
        return {**result, "interval": "none: too few clips to leave one out"}
    return {**result, "ci95": [round(max(0.0, low), 4), round(high, 4)],
            "interval": "jackknife over the clips of both sets (leave one out), normal 95%"}
