"""Tempo of a clip from a beat tracker, and whether it matches a prompted tempo.

Estimators (chosen by measured accuracy on real clips of known tempo, see docs/evaluation.md):
- "librosa": librosa.feature.tempo on the onset-strength envelope (the autocorrelation tempogram
  weighted by a log-normal prior around 120 BPM, as librosa.beat.beat_track uses).
- "librosa-uniform": the same tempogram without the prior (argmax over 40-240 BPM): no pull
  toward 120, more octave errors.
- "essentia": essentia's RhythmExtractor2013 ("multifeature" beat tracker), if essentia is
  installed (it is optional: AGPL-3.0, not a dependency of ssmusic). Used only when asked for by
  name: the default (clips.TEMPO_ESTIMATOR) never depends on what happens to be installed.

A tempo is a hit within +-8% of the prompted BPM; within 8% of twice or half of it, an octave
error, counted apart (a beat tracker tapping every other beat heard the right pulse).
"""

from __future__ import annotations

import numpy as np

from ssmusic.errors import SsmusicError

TOLERANCE = 0.08
ESTIMATORS = ("librosa", "librosa-uniform", "essentia")
ESSENTIA_MISSING = "essentia is not installed (pip install -e \".[judges]\"; AGPL-3.0, optional)"
HOP = 512
# An onset must rise 1 dB (band-averaged spectral flux) above its local mean. librosa's default
# normalises the envelope by its maximum, so a held, unchanging tone shows "onsets" every few
# hundred ms from rounding noise; an absolute threshold keeps a frozen clip frozen.
ONSET_DELTA_DB = 1.0


def onset_envelope(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    import librosa

    return librosa.onset.onset_strength(y=np.asarray(wav, np.float32), sr=sample_rate, hop_length=HOP)


def _librosa_tempo(wav: np.ndarray, sample_rate: int, prior: bool) -> float:
    import librosa

    envelope = onset_envelope(wav, sample_rate)
    if not prior:
        tempogram = librosa.feature.tempogram(onset_envelope=envelope, sr=sample_rate, hop_length=HOP).mean(axis=1)
        bpms = librosa.tempo_frequencies(len(tempogram), sr=sample_rate, hop_length=HOP)
        usable = (bpms >= 40) & (bpms <= 240)
        return float(bpms[usable][np.argmax(tempogram[usable])])
    return float(librosa.feature.tempo(onset_envelope=envelope, sr=sample_rate, hop_length=HOP)[0])


def _essentia_tempo(wav: np.ndarray, sample_rate: int) -> float:
    try:
        import essentia.standard as es
    except ImportError as error:
        raise SsmusicError(f"tempo estimator 'essentia': {ESSENTIA_MISSING}") from error
    audio = np.asarray(wav, np.float32)
    if sample_rate != 44100:  # RhythmExtractor2013 assumes 44.1 kHz
        audio = es.Resample(inputSampleRate=sample_rate, outputSampleRate=44100)(audio)
    return float(es.RhythmExtractor2013(method="multifeature")(audio)[0])


def has_essentia() -> bool:
    """Whether the optional essentia (the `judges` extra) can be imported."""
    try:
        import essentia.standard  # noqa: F401
    except ImportError:
        return False
    return True


def estimate_tempo(wav: np.ndarray, sample_rate: int, estimator: str = "librosa") -> float:
    """BPM of a mono clip [N]; nan for silence."""
    if estimator not in ESTIMATORS:
        raise SsmusicError(f"tempo estimator {estimator!r}: expected one of {list(ESTIMATORS)}")
    if not np.any(np.abs(wav) > 1e-4):
        return float("nan")
    if estimator == "essentia":
        return _essentia_tempo(wav, sample_rate)
    return _librosa_tempo(wav, sample_rate, prior=estimator == "librosa")


def tempo_match(estimated: float, target: float, tolerance: float = TOLERANCE) -> str:
    """'hit' within the tolerance of target, 'octave' within it of 2x or 0.5x target, else 'miss'."""
    if not np.isfinite(estimated):
        return "miss"
    if abs(estimated - target) <= tolerance * target:
        return "hit"
    if any(abs(estimated - f * target) <= tolerance * f * target for f in (2.0, 0.5)):
        return "octave"
    return "miss"


def onset_times(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset times in seconds (librosa's peak picking on the onset-strength envelope, with an
    absolute threshold: see ONSET_DELTA_DB)."""
    import librosa

    envelope = onset_envelope(wav, sample_rate)
    frames = librosa.onset.onset_detect(onset_envelope=envelope, sr=sample_rate, hop_length=HOP, normalize=False,
                                        delta=ONSET_DELTA_DB)
    return librosa.frames_to_time(frames, sr=sample_rate, hop_length=HOP)
