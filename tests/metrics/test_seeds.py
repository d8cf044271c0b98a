"""`evaluate --seeds`: each seed judged, every figure reported as the mean and range over seeds."""

import csv
import json

import pytest
import soundfile

from judge_signals import RATE, melody, tone
from ssmusic.cli import main
from ssmusic.errors import SsmusicError
from ssmusic.metrics.seeds import aggregate, parse_seeds


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    for bad in ("", "0,0", "a,b"):
        with pytest.raises(SsmusicError, match="--seeds"):
            parse_seeds(bad)


def test_aggregate_gives_mean_and_range_of_every_figure():
    per_seed = [{"tempo": {"hit": {"value": 0.2, "n": 25}}, "music_fd": {"value": 10.0, "floor": {"mean": 4.0}}},
                {"tempo": {"hit": {"value": 0.4, "n": 25}}, "music_fd": {"value": 14.0, "floor": {"mean": 4.0}}}]
    result = aggregate(per_seed)
    assert result["tempo.hit.value"] == {"mean": 0.3, "min": 0.2, "max": 0.4, "seeds": 2, "per_seed": [0.2, 0.4]}
    assert result["music_fd.value"]["mean"] == 12.0 and result["music_fd.floor.mean"]["max"] == 4.0


def test_evaluate_over_seeds_from_the_command_line(tmp_path, capsys):
    ref = tmp_path / "ref"
    ref.mkdir()
    rows = [["path", "caption", "split", "tempo_bpm", "key"]]
    for i in range(2):
        caption = f"A piano piece in C major at {90 + 30 * i} BPM"
        soundfile.write(ref / f"r{i}.wav", melody([60, 64, 67, 72] * 4, 60 / (90 + 30 * i))[: 4 * RATE], RATE)
        rows.append([f"r{i}.wav", caption, "test", 90 + 30 * i, "C major"])
        for seed in (0, 1):  # complete seed folders are judged as they are, not generated again
            folder = tmp_path / "gen" / f"seed_{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            audio = tone(60, 4.0, decay=None) if seed else melody([60, 62, 64, 65] * 4, 0.25)
            soundfile.write(folder / f"{i}.wav", audio, RATE)
            (folder / f"{i}.json").write_text(json.dumps({"prompt": caption}))
    with (ref / "captions.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    code = main(["evaluate", str(tmp_path / "gen"), "--reference", str(ref), "--split", "test", "--metrics",
                 "motion,tempo", "--seeds", "0,1", "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    result = json.loads((tmp_path / "gen" / "evaluation.json").read_text())
    frozen = result["over_seeds"]["motion.frozen_run_s.generated.value"]
    assert frozen["seeds"] == 2 and frozen["max"] > 3.0 > frozen["min"]   # seed 1 holds a tone
    assert (tmp_path / "gen" / "seed_1" / "evaluation_clips.json").is_file()
    assert "mean over seeds" in capsys.readouterr().out


def test_the_decoder_and_sampling_options_reach_generate(tmp_path, monkeypatch):
    """evaluate --seeds ... --decoder griffin-lim: the seed folders are generated with that decoder."""
    import ssmusic.generate
    from ssmusic.metrics.seeds import generate_seed

    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "captions.csv").write_text("path,caption,split\nr0.wav,a piano piece,test\n")
    seen = {}
    monkeypatch.setattr(ssmusic.generate, "run", lambda args: seen.update(vars(args)))
    generate_seed(tmp_path / "gen" / "seed_3", ref, "test", 3, {"decoder": "griffin-lim", "top_k": 50})
    assert seen["decoder"] == "griffin-lim" and seen["top_k"] == 50 and seen["seed"] == 3
    assert seen["no_controls"] is False
    generate_seed(tmp_path / "gen" / "seed_4", ref, "test", 4, {"no_controls": True})  # evaluate --no-controls
    assert seen["no_controls"] is True and seen["seed"] == 4
