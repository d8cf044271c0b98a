"""The beat tracker reads a click track's tempo, and a wrong tempo is not read as the prompted one."""

import numpy as np
import pytest

from ssmusic.errors import SsmusicError
from ssmusic.metrics.motion import onset_motion
from ssmusic.metrics.tempo import estimate_tempo, onset_times, tempo_match


def test_a_120_bpm_click_track_reads_120(synth):
    bpm = estimate_tempo(synth.click_track(120), synth.rate)
    assert tempo_match(bpm, 120) == "hit", bpm


def test_a_90_bpm_click_track_does_not_read_120(synth):
    bpm = estimate_tempo(synth.click_track(90), synth.rate)
    assert tempo_match(bpm, 120) != "hit", bpm          # the case that must fail
    assert tempo_match(bpm, 90) == "hit", bpm


def test_tempo_match_counts_octave_errors_apart():
    assert tempo_match(121.0, 120) == "hit"
    assert tempo_match(240.0, 120) == "octave" and tempo_match(61.0, 120) == "octave"
    assert tempo_match(90.0, 120) == "miss" and tempo_match(float("nan"), 120) == "miss"


def test_silence_has_no_tempo_and_no_onsets(synth):
    silence = np.zeros(synth.rate * 3, np.float32)
    assert np.isnan(estimate_tempo(silence, synth.rate))
    assert onset_motion(onset_times(silence, synth.rate), 3.0) == {"onset_rate": 0.0, "longest_onset_gap_s": 3.0}


def test_onset_rate_counts_the_clicks(synth):
    clicks = synth.click_track(120, seconds=6.0)
    motion = onset_motion(onset_times(clicks, synth.rate), 6.0)
    assert motion["onset_rate"] == pytest.approx(2.0, abs=0.2)
    assert motion["longest_onset_gap_s"] < 0.6


def test_essentia_reads_the_tempo_only_when_named(synth, essentia):
    essentia.install()
    clicks = synth.click_track(120)
    assert estimate_tempo(clicks, synth.rate, "essentia") == 117.0          # the stand-in's reading
    assert tempo_match(estimate_tempo(clicks, synth.rate), 120) == "hit"    # the default is librosa's
    essentia.remove()
    with pytest.raises(SsmusicError, match="essentia is not installed"):
        estimate_tempo(clicks, synth.rate, "essentia")


def test_the_real_essentia_reads_a_120_bpm_click_track(synth):
    pytest.importorskip("essentia.standard")   # optional (AGPL-3.0): the `judges` extra
    assert tempo_match(estimate_tempo(synth.click_track(120), synth.rate, "essentia"), 120) == "hit"
