"""Key and mode of a clip: a chroma vector correlated with major and minor key profiles.

Estimators (chosen by measured accuracy on real clips of known key, see docs/evaluation.md):
- "librosa-<profile>": the clip's mean CQT chroma (librosa.feature.chroma_cqt) correlated with the
  24 rotations of a key profile: "krumhansl" (Krumhansl & Kessler's probe-tone ratings) or
  "temperley" (Temperley's corpus profiles). librosa has no key estimator of its own; this is
  the classic Krumhansl-Schmuckler algorithm over its chroma.
- "essentia-<profile>": essentia's KeyExtractor (HPCP chroma) with that profile type, if essentia
  is installed (optional: AGPL-3.0), only when asked for by name (the default, clips.KEY_ESTIMATOR,
  never depends on what is installed).

`mode_given_tonic` answers the narrower question a prompt that names its key asks: with the
tonic known, is the clip closer to the major or the minor profile on it?
"""

from __future__ import annotations

import re

import numpy as np

from ssmusic.errors import SsmusicError
from ssmusic.metrics.tempo import ESSENTIA_MISSING

PROFILES = {
    "krumhansl": ([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88],
                  [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
    "temperley": ([5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0],
                  [5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0]),
}
ESSENTIA_PROFILES = ("krumhansl", "temperley", "edma", "bgate")
ESTIMATORS = tuple(f"librosa-{p}" for p in PROFILES) + tuple(f"essentia-{p}" for p in ESSENTIA_PROFILES)
NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_LETTERS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
KEY_PATTERN = re.compile(r"\b([A-G])\s*(#|♯|b|♭|-sharp|-flat|\s+sharp|\s+flat)?\s+(major|minor)\b")


def parse_key(text: str) -> tuple[int, str] | None:
    """The first 'C# minor' / 'Bb major' / 'F sharp minor' in text -> (tonic pitch class, mode)."""
    match = KEY_PATTERN.search(text)
    if match is None:
        return None
    letter, accidental, mode = match.groups()
    shift = 0 if not accidental else (1 if "#" in accidental or "♯" in accidental or "sharp" in accidental else -1)
    return (_LETTERS[letter.lower()] + shift) % 12, mode.lower()


def key_name(tonic: int, mode: str) -> str:
    return f"{NAMES[tonic % 12]} {mode}"


def _scores(chroma: np.ndarray, profile: str) -> np.ndarray:
    """[2, 12] Pearson correlations of a 12-bin chroma with (major, minor) profiles on each tonic."""
    chroma = np.asarray(chroma, np.float64)
    out = np.empty((2, 12))
    for m, template in enumerate(PROFILES[profile]):
        for tonic in range(12):
            out[m, tonic] = np.corrcoef(chroma, np.roll(template, tonic))[0, 1]
    return np.nan_to_num(out, nan=-1.0)


def mean_chroma(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    import librosa

    return librosa.feature.chroma_cqt(y=np.asarray(wav, np.float32), sr=sample_rate).mean(axis=1)


def essentia_chroma(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """essentia's mean HPCP (harmonic pitch-class profile, 12 bins from A) rotated to start on C."""
    es = _essentia()
    audio = np.asarray(wav, np.float32)
    if sample_rate != 44100:
        audio = es.Resample(inputSampleRate=sample_rate, outputSampleRate=44100)(audio)
    window, spectrum = es.Windowing(type="blackmanharris62"), es.Spectrum()
    peaks = es.SpectralPeaks(orderBy="magnitude", magnitudeThreshold=1e-5, maxPeaks=60, minFrequency=40,
                             maxFrequency=5000)
    hpcp = es.HPCP(size=12, referenceFrequency=440, maxFrequency=5000)
    frames = [hpcp(*peaks(spectrum(window(frame)))) for frame in es.FrameGenerator(audio, 4096, 2048)]
    return np.roll(np.mean(frames, axis=0), 9)  # bin 0 is A; C is 3 semitones above -> roll by 9


def _essentia():
    try:
        import essentia.standard as es
    except ImportError as error:
        raise SsmusicError(f"key estimator 'essentia-*': {ESSENTIA_MISSING}") from error
    return es


def _essentia_key(wav: np.ndarray, sample_rate: int, profile: str) -> tuple[int, str, dict]:
    es = _essentia()
    audio = np.asarray(wav, np.float32)
    if sample_rate != 44100:
        audio = es.Resample(inputSampleRate=sample_rate, outputSampleRate=44100)(audio)
    key, scale, strength = es.KeyExtractor(profileType=profile)(audio)[:3]
    return parse_key(f"{key} {scale}") + ({"strength": float(strength)},)


class KeyEstimate(dict):
    """{'tonic': pitch class, 'mode': 'major'|'minor', 'scores': [2, 12] or None}"""


def estimate_key(wav: np.ndarray, sample_rate: int, estimator: str = "librosa-krumhansl") -> KeyEstimate:
    """Key of a mono clip [N]: tonic pitch class, mode, and the 24 profile scores (librosa-*)."""
    if estimator not in ESTIMATORS:
        raise SsmusicError(f"key estimator {estimator!r}: expected one of {list(ESTIMATORS)}")
    library, profile = estimator.split("-", 1)
    if library == "essentia":
        tonic, mode, extra = _essentia_key(wav, sample_rate, profile)
        return KeyEstimate(tonic=tonic, mode=mode, scores=None, **extra)
    scores = _scores(mean_chroma(wav, sample_rate), profile)
    m, tonic = np.unravel_index(np.argmax(scores), scores.shape)
    return KeyEstimate(tonic=int(tonic), mode=("major", "minor")[m], scores=scores.round(4).tolist())


def mode_given_tonic(wav: np.ndarray, sample_rate: int, tonic: int, profile: str = "krumhansl",
                     chroma: np.ndarray | None = None) -> str:
    """'major' or 'minor': the better-correlated profile on the known tonic."""
    scores = _scores(mean_chroma(wav, sample_rate) if chroma is None else chroma, profile)
    return "major" if scores[0, tonic % 12] >= scores[1, tonic % 12] else "minor"
