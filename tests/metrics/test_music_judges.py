"""Motion, tempo and key judges on known readings, each beside its real-clip ceiling."""

import numpy as np

from ssmusic.metrics.key import PROFILES
from ssmusic.metrics.music_judges import key, motion, ordering, tempo


def _reading(bpm=120.0, onset_rate=2.0, frozen=0.5, tonic=0, mode="major", chroma_mode=None):
    chroma = np.roll(PROFILES["krumhansl"][0 if (chroma_mode or mode) == "major" else 1], tonic)
    return {"tempo_bpm": bpm, "onset_rate": onset_rate, "longest_onset_gap_s": frozen, "frozen_run_s": frozen,
            "repeat_share": 0.5, "distinct_tokens": 20, "key_tonic": tonic, "key_mode": mode,
            "chroma": np.asarray(chroma, float)}


def test_ordering_of_slow_and_fast_prompts():
    bpms = [60, 62, 150, 160]
    assert ordering(bpms, [60, 61, 150, 158])["value"] == 1.0
    assert ordering(bpms, [150, 160, 60, 61])["value"] == 0.0       # must fail: reversed
    assert ordering(bpms, [60, 61, 150, 158])["pairs"] == 4
    assert "skipped" in ordering([100, 110], [1, 2])


def test_tempo_hits_octaves_and_ceiling():
    gen = [_reading(bpm=120), _reading(bpm=240), _reading(bpm=90)]
    ref = [_reading(bpm=121)] * 3
    result = tempo(gen, [120, 120, 120], ref, [120, 120, 120], "librosa")
    assert result["hit"]["value"] == round(1 / 3, 4) and result["octave_error"]["hits"] == 1
    assert result["ceiling"]["hit"]["value"] == 1.0
    assert "skipped" in tempo(gen, [None] * 3, ref, [None] * 3, "librosa")


def test_mode_given_tonic_reads_the_chroma_and_fails_the_parallel_mode():
    gen = [_reading(tonic=2, mode="major"), _reading(tonic=2, mode="minor", chroma_mode="minor")]
    result = key(gen, [(2, "major"), (2, "major")], gen, [(2, "major"), (2, "minor")], "librosa-krumhansl",
                 "krumhansl")
    assert result["mode_given_tonic"]["value"] == 0.5          # the minor clip fails a major prompt
    assert result["ceiling"]["mode_given_tonic"]["value"] == 1.0
    assert result["key_exact"]["hits"] == 1


def test_motion_compares_medians_with_real_and_pairs_by_caption():
    gen = [_reading(frozen=3.0), _reading(frozen=4.0), _reading(frozen=3.5)]
    ref = [_reading(frozen=0.8), _reading(frozen=0.7), _reading(frozen=0.75)]
    result = motion(gen, ref, ref)
    assert result["frozen_run_s"]["generated"]["value"] == 3.5 and result["frozen_run_s"]["real"]["value"] == 0.75
    assert result["frozen_run_s"]["ratio"] == round(3.5 / 0.75, 3)
    assert result["frozen_run_s"]["paired_difference"]["value"] == round(np.mean([2.2, 3.3, 2.75]), 4)
