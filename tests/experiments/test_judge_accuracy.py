"""The estimator comparison reads clips of known tempo and key, reports shares per estimator, and
picks the most accurate on the selection splits."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).parents[1] / "metrics"))
from judge_signals import MAJOR_SCALE, MINOR_SCALE, click_track, scale  # noqa: E402

from ssmusic.experiments.judge_accuracy import choose, run  # noqa: E402


def test_estimators_on_clips_of_known_tempo_and_key(tmp_path):
    rows = [["path", "caption", "split", "tempo_bpm", "key"]]
    clips = [(120, 60, MAJOR_SCALE, "C major", "train"), (90, 62, MINOR_SCALE, "D minor", "valid"),
             (120, 67, MAJOR_SCALE, "G major", "test")]
    for i, (bpm, tonic, steps, key, split) in enumerate(clips):
        music = scale(tonic, steps)[: 22050 * 6]
        audio = np.pad(music, (0, max(0, 22050 * 6 - len(music)))) + click_track(bpm, 6.0)
        soundfile.write(tmp_path / f"c{i}.wav", audio, 22050)
        rows.append([f"c{i}.wav", f"clip {i}", split, bpm, key])
    with (tmp_path / "captions.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result = run(tmp_path, tmp_path / "acc.json")
    assert result["selection"]["clips"] == 2 and result["test"]["clips"] == 1
    assert result["all"]["tempo"]["librosa"]["hit"]["n"] == 3
    assert result["all"]["mode_given_tonic"]["librosa-cqt/krumhansl"]["value"] == 1.0
    assert set(result["chosen"]) == {"tempo", "key", "mode_given_tonic"}
    assert len((tmp_path / "acc.clips.jsonl").read_text().splitlines()) == 3
    assert json.loads((tmp_path / "acc.json").read_text())["chosen"] == result["chosen"]
    again = run(tmp_path, tmp_path / "acc.json")           # resumes from the per-clip log
    assert again["all"] == result["all"]


def test_choose_takes_the_best_share_of_those_that_need_no_optional_install():
    summary = {"tempo": {"a": {"hit": {"value": 0.5}}, "b": {"hit": {"value": 0.7}}, "essentia": {"hit": {"value": 0.8}}},
               "key": {"x": {"value": 0.4}, "y": {"value": 0.3}, "essentia-bgate": {"value": 0.6}},
               "mode_given_tonic": {"m": {"value": 0.9}, "n": {"value": 0.95}}}
    assert choose(summary) == {"tempo": "b", "key": "x", "mode_given_tonic": "n"}
    assert choose(summary, optional=True) == {"tempo": "essentia", "key": "essentia-bgate", "mode_given_tonic": "n"}


@pytest.mark.parametrize("name", ["judge_accuracy.json", "judge_accuracy_demo2.json"])
def test_the_judges_defaults_are_the_ones_the_measurement_chose(name):
    """The results the docs quote name the estimators the judges use by default."""
    from ssmusic.metrics.clips import KEY_ESTIMATOR, MODE_PROFILE, TEMPO_ESTIMATOR

    chosen = json.loads((Path(__file__).parents[2] / "results" / name).read_text())["chosen"]
    assert chosen == {"tempo": TEMPO_ESTIMATOR, "key": KEY_ESTIMATOR, "mode_given_tonic": f"librosa-cqt/{MODE_PROFILE}"}
