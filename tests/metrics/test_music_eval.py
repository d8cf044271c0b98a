"""`evaluate` with the judges that hear music, end to end on a tiny dataset of synthetic clips: every
judge reports n and an interval beside its floor or ceiling, per-clip readings are kept, and a judge
that cannot run is skipped with its reason while the others still run."""

import csv
import json

import numpy as np
import pytest
import soundfile

from ssmusic.errors import SsmusicError
from ssmusic.metrics import clips as clips_module
from ssmusic.metrics.evaluate import evaluate, table

RATE = 22050
SPLITS = ["train", "train", "valid", "valid", "test", "test"]


def _piece(bpm, tonic, minor, seconds=6.0):
    from judge_signals import melody

    steps = [0, 2, 3, 5, 7, 3, 2, 0] if minor else [0, 2, 4, 5, 7, 4, 2, 0]
    notes = [tonic + steps[i % len(steps)] for i in range(int(seconds * bpm / 60) + 1)]
    return melody(notes, note_seconds=60.0 / bpm)[: int(seconds * RATE)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("judged")
    ref, gen = root / "ref", root / "gen"
    ref.mkdir()
    gen.mkdir()
    rows = []
    for i, split in enumerate(SPLITS):
        bpm, minor = (60, False) if i % 2 else (150, True)
        caption = f"A {'slow' if bpm < 100 else 'fast'} piano piece in {'C minor' if minor else 'C major'} at {bpm} BPM, take {i}."
        soundfile.write(ref / f"r{i}.wav", _piece(bpm, 60, minor), RATE)
        rows.append([f"r{i}.wav", caption, split, "piano", bpm, "C minor" if minor else "C major"])
        if split == "test":  # one generated clip per test caption: one that moves, one held tone
            from judge_signals import tone

            audio = _piece(bpm, 60, minor) if i == 4 else tone(60, 6.0, decay=None)
            soundfile.write(gen / f"g{i}.wav", audio, RATE)
            (gen / f"g{i}.json").write_text(json.dumps({"prompt": caption}))
    with (ref / "captions.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["path", "caption", "split", "instrument", "tempo_bpm", "key"], *rows])
    return gen, ref, root / "cache"


def test_every_judge_reports_n_interval_and_its_floor_or_ceiling(dataset):
    gen, ref, cache = dataset
    metrics = ["music_fd", "tag_kl", "tag_adherence", "motion", "tempo", "key"]
    results = evaluate(gen, ref, metrics, split="test", cache_dir=cache, progress=False)
    fd = results["music_fd"]
    assert fd["n_generated"] == 2 and len(fd["ci95"]) == 2 and fd["floor"]["n_real"] == 2
    assert results["tag_kl"]["pairs"] == 2 and "floor" in results["tag_kl"]
    assert results["tag_adherence"]["ceiling"]["n"] > 0
    frozen = results["motion"]["frozen_run_s"]
    assert frozen["generated"]["n"] == 2 and frozen["real"]["n"] == 2
    assert max(c["music"]["frozen_run_s"] for c in results["clips"]["generated"]) > 5.0   # the held tone
    assert results["tempo"]["hit"]["n"] == 2 and "ceiling" in results["tempo"]
    assert results["key"]["mode_given_tonic"]["n"] == 2 and results["key"]["ceiling"]["mode_given_tonic"]["n"] == 2
    clip = results["clips"]["generated"][0]
    assert clip["prompt"].startswith("A fast piano") and clip["music"]["prompted_bpm"] == 150.0
    assert set(clip["tags"]) >= {"piano", "slow", "fast"} and clip["tag_kl"] is not None
    assert "music-network Fréchet distance" in table(results) and "mode (tonic given" in table(results)
    assert results["tempo"]["estimator"] == "librosa" and "tempo within 8% (librosa)" in table(results)


def test_the_command_prints_every_judge_with_n_interval_and_floor_or_ceiling(dataset, tmp_path, capsys):
    from ssmusic.cli import main

    gen, ref, cache = dataset
    out = tmp_path / "evaluation.json"
    assert main(["evaluate", str(gen), "--reference", str(ref), "--split", "test", "--cache-dir", str(cache),
                 "--out", str(out)]) == 0
    rows = {cells[1].strip(): cells[2:4] for line in capsys.readouterr().out.splitlines()
            if (cells := line.split("|"))[0] == "" and len(cells) >= 5}
    judged = {"music-network Fréchet distance": "floor", "tag KL (ref ‖ gen)": "floor", "tag adherence": "ceiling",
              "frozen_run_s (median)": "real", "onset_rate (median)": "real", "longest_onset_gap_s (median)": "real",
              "tempo within 8% (librosa)": "real", "slow < fast (librosa)": "real", "slow < fast (onsets)": "real",
              "mode (tonic given, temperley profiles)": "real", "key (tonic and mode, librosa-temperley)": "real"}
    for label, beside in judged.items():
        generated, real = rows[label]
        assert "n=" in generated and "[" in generated, (label, generated)          # n and a 95% interval
        assert beside in real and "n=" in real, (label, real)                        # its floor or ceiling
    assert rows["fad"][0].strip()[0].isdigit() and "skipped" in rows["clap"][0]   # the earlier judges too
    saved = json.loads(out.read_text())
    assert saved["tempo"]["estimator"] == "librosa" and saved["command"].startswith("ssmusic evaluate")


def test_essentia_asked_for_without_it_stops_before_any_work(dataset, essentia, tmp_path, capsys):
    from ssmusic.cli import main

    gen, ref, cache = dataset
    essentia.remove()
    code = main(["evaluate", str(gen), "--reference", str(ref), "--split", "test", "--tempo-estimator", "essentia",
                 "--seeds", "0", "--cache-dir", str(cache), "--out", str(tmp_path / "never.json")])
    assert code == 2 and "--tempo-estimator essentia: essentia is not installed" in capsys.readouterr().err
    assert not (tmp_path / "never.json").exists() and not (gen / "seed_0").exists()   # nothing generated


def test_a_judge_that_cannot_run_is_skipped_and_the_others_run(dataset, monkeypatch):
    gen, ref, cache = dataset

    def unavailable(*args, **kwargs):
        raise SsmusicError("the music network is not available (no weights)")

    monkeypatch.setattr(clips_module.NetworkReader, "__init__", unavailable)
    results = evaluate(gen, ref, ["music_fd", "tag_kl", "tempo"], split="test", cache_dir=cache, progress=False)
    assert results["music_fd"] == {"skipped": "the music network is not available (no weights)"}
    assert results["tempo"]["hit"]["n"] == 2
    no_split = evaluate(gen, ref, ["motion"], cache_dir=cache, progress=False)   # whole reference, no floor pool
    assert no_split["motion"]["frozen_run_s"]["real"]["n"] == 6
