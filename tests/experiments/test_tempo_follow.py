"""benchmarks/tempo_follow.py: tempo hits against their chance level, read from evaluate's per-clip readings."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "tempo_follow.py"
spec = importlib.util.spec_from_file_location("tempo_follow", SCRIPT)
tempo_follow = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tempo_follow)

ASKED = [60.0, 75.0, 90.0, 100.0, 140.0, 155.0, 170.0, 85.0]  # none within 8% of 120


def test_a_model_that_plays_one_tempo_scores_its_chance_level_and_one_that_follows_beats_it():
    deaf = tempo_follow.follow(ASKED, [120.0] * len(ASKED))
    assert deaf["hit_8pct"] == 0.0 and deaf["chance_hit_8pct"] == 0.0  # it must fail: 120 is never asked
    follows = tempo_follow.follow(ASKED, [a * 1.02 for a in ASKED])
    assert follows["hit_8pct"] == 1.0 and follows["chance_hit_8pct"] < 0.3
    halved = tempo_follow.follow(ASKED, [a / 2 for a in ASKED])
    assert halved["hit_8pct"] == 0.0 and halved["hit_or_octave"] == 1.0


def test_the_script_reads_each_seeds_clip_readings(tmp_path):
    def clips(heard):
        return [{"music": {"prompted_bpm": a, "tempo_bpm": h}} for a, h in zip(ASKED, heard)] + [{"music": {}}]

    for seed, heard in (("seed_0", ASKED), ("seed_1", [120.0] * len(ASKED))):
        (tmp_path / seed).mkdir()
        (tmp_path / seed / "evaluation_clips.json").write_text(json.dumps(
            {"generated": clips(heard), "reference": clips([a * 0.99 for a in ASKED])}))
    out = tmp_path / "follow.json"
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--out", str(out)], check=True, capture_output=True)
    report = json.loads(out.read_text())
    assert report["real"]["hit_8pct"] == 1.0 and report["real"]["n"] == len(ASKED)
    assert report["seeds"]["seed_0"]["hit_8pct"] == 1.0 and report["seeds"]["seed_1"]["hit_8pct"] == 0.0
    assert report["over_seeds"]["hit_8pct"] == {"mean": 0.5, "min": 0.0, "max": 1.0}
