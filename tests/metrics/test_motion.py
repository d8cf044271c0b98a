"""A frozen clip is frozen and a moving one is not, through the shipped codec and on the waveform."""

import numpy as np
import pytest

from ssmusic.codec.codecs import load_codec
from ssmusic.metrics.motion import codec_motion, longest_run, onset_motion, token_motion
from ssmusic.metrics.tempo import onset_times


def test_longest_run_of_identical_frames():
    assert longest_run(np.array([1, 1, 2, 2, 2, 3])) == 3
    assert longest_run(np.array([[1, 1, 1], [4, 5, 5]])) == 2  # a frame is all codebooks
    assert longest_run(np.array([7])) == 1
    motion = token_motion(np.array([[1, 1, 2, 2]]), frame_rate=2.0)
    assert motion == {"frozen_run_s": 1.0, "repeat_share": pytest.approx(2 / 3, abs=1e-4), "distinct_tokens": 2}


@pytest.fixture(scope="module")
def codec():
    return load_codec(None)


def test_a_held_tone_is_frozen_and_a_melody_is_not(synth, codec):
    held = synth.tone(60, 4.0, decay=None)
    notes = [60, 64, 67, 72, 67, 64, 62, 65, 69, 71, 74, 71, 67, 64, 60, 62]
    moving = synth.melody(notes, note_seconds=0.25)
    frozen = codec_motion(held, synth.rate, codec)
    moves = codec_motion(moving, synth.rate, codec)
    assert frozen["frozen_run_s"] > 3.0, frozen
    assert moves["frozen_run_s"] < 0.5, moves            # the case that must fail for a frozen clip
    assert moves["distinct_tokens"] > 4 * frozen["distinct_tokens"]
    held_gap = onset_motion(onset_times(held, synth.rate), 4.0)["longest_onset_gap_s"]
    moving_gap = onset_motion(onset_times(moving, synth.rate), 4.0)["longest_onset_gap_s"]
    assert held_gap > 3.5 and moving_gap < 0.6, (held_gap, moving_gap)
