import json

import pytest

from ssmusic.cli import main
from ssmusic.experiments.compare import Variant, parse_ints, parse_variants
from ssmusic.experiments.report import calibrated_time, interpolated, markdown, refresh, summarize
from ssmusic.errors import SsmusicError


def _records(points, speed=100):
    """(step, val_loss, wall_s) -> metrics.jsonl-like records (every step is an evaluation)."""
    return [{"step": s, "val_loss": v, "cond_gap": 0.1 * s, "wall_s": w, "tokens_per_s": speed} for s, v, w in points]


def test_summary_gives_mean_and_spread_over_seeds_and_the_equal_wall_time_view():
    curves = {
        "transformer-prefix": {0: _records([(1, 5.0, 10), (2, 4.0, 20)]), 1: _records([(1, 6.0, 10), (2, 4.4, 20)])},
        "simba-prefix": {0: _records([(1, 4.0, 15), (2, 3.0, 30)]), 1: _records([(1, 4.4, 15), (2, 3.4, 30)])},
        "mamba-prefix": {0: _records([(1, 6.0, 5), (2, 4.5, 10)]), 1: _records([(1, 7.0, 5)])},  # seed 1 unfinished
    }
    summary = summarize(curves)
    assert summary["reference"] == "transformer-prefix"
    assert summary["val_loss"]["transformer-prefix"]["1"] == {"mean": 5.5, "min": 5.0, "max": 6.0, "n": 2}
    assert summary["val_loss"]["simba-prefix"]["2"] == {"mean": 3.2, "min": 3.0, "max": 3.4, "n": 2}
    assert list(summary["val_loss"]["mamba-prefix"]) == ["1"]  # step 2 lacks a seed: no mean of one
    assert summary["cond_gap"]["simba-prefix"]["2"]["mean"] == pytest.approx(0.2)
    assert summary["reference_final_val_loss"] == 4.2
    assert summary["first_reaching_reference"] == {"transformer-prefix": {"step": 2, "wall_s": 20.0},
                                                   "simba-prefix": {"step": 1, "wall_s": 15.0},
                                                   "mamba-prefix": None}
    # budget: the shortest mean run (mamba: (10 + 5) / 2 s); the last loss each seed reached by then
    assert summary["equal_wall_time"]["budget_s"] == 7.5
    assert summary["equal_wall_time"]["val_loss"]["mamba-prefix"] == {"mean": 6.5, "min": 6.0, "max": 7.0, "n": 2}
    assert "transformer-prefix" not in summary["equal_wall_time"]["val_loss"]  # no evaluation within 7.5 s
    assert summary["tokens_per_s"]["simba-prefix"] == 100


def test_calibrated_time_compares_at_the_shortest_full_run_measured_in_timed_seconds_per_step():
    curves = {"transformer-prefix": {0: _records([(100, 5.0, 1), (200, 4.0, 2)]), 1: _records([(100, 6.0, 9), (200, 5.0, 99)])},
              "simba-prefix": {0: _records([(100, 4.0, 1), (200, 3.0, 2)]), 1: _records([(100, 4.4, 1), (200, 3.4, 2)])}}
    generation = {"transformer-prefix": {0: [{"step": 200, "fad": 10.0}], 1: [{"step": 200, "fad": 12.0}]},
                  "simba-prefix": {0: [{"step": 100, "fad": 20.0}, {"step": 200, "fad": 8.0}],
                                   1: [{"step": 100, "fad": 22.0}, {"step": 200, "fad": 9.0}]}}
    summary = summarize(curves, generation)
    # simba's step costs twice the transformer's: 200 transformer steps (100 s) buy 100 simba steps
    view = calibrated_time(summary, {"transformer-prefix": 0.5, "simba-prefix": 1.0})
    assert view["budget_s"] == 100.0
    assert view["val_loss"]["transformer-prefix"] == {"step": 200, "mean": 4.5, "min": 4.0, "max": 5.0, "n": 2}
    assert view["val_loss"]["simba-prefix"] == {"step": 100, "mean": 4.2, "min": 4.0, "max": 4.4, "n": 2}
    assert view["generation"]["fad"]["simba-prefix"]["step"] == 100
    assert view["generation"]["fad"]["simba-prefix"]["mean"] == 21.0
    assert view["generation"]["fad"]["transformer-prefix"]["mean"] == 11.0
    summary["calibrated_time"] = view
    table = markdown(summary, {})
    assert "At equal calibrated training time (100 s" in table and "4.2000 [4.0000–4.4000] (step 100)" in table


def test_equal_time_is_read_between_evaluations_not_at_the_last_one_below_the_budget(tmp_path):
    curve = {"100": {"mean": 4.0}, "200": {"mean": 3.0}, "300": {"mean": 2.0}}
    # 290 steps: the last evaluation below (step 200, 3.0) is far from the curve there (2.1)
    assert interpolated(curve, 290.0) == {"at_step": 290.0, "between": [200, 300], "mean": 2.1}
    assert interpolated(curve, 300.0000000001)["between"] == [300, 300]  # float noise at the last step
    assert interpolated(curve, 50.0) is None and interpolated(curve, 301.0) is None  # never extrapolated
    curves = {"transformer-prefix": {0: _records([(100, 5.0, 1), (200, 4.0, 2)])},
              "simba-prefix": {0: _records([(100, 4.0, 1), (200, 3.0, 2)])}}
    summary = summarize(curves)
    summary["calibrated_time"] = calibrated_time(summary, {"transformer-prefix": 0.5, "simba-prefix": 0.8})
    assert summary["calibrated_time"]["val_loss_interpolated"]["simba-prefix"]["mean"] == 3.75  # step 125
    assert summary["calibrated_time"]["val_loss"]["simba-prefix"]["step"] == 100
    # refresh recomputes the view from a written compare.json alone (an older one lacks it)
    del summary["calibrated_time"]["val_loss_interpolated"]
    summary["parameters"] = {}
    path = tmp_path / "compare.json"
    path.write_text(json.dumps(summary))
    refresh(path)
    assert json.loads(path.read_text())["calibrated_time"]["val_loss_interpolated"]["simba-prefix"]["at_step"] == 125.0
    assert "3.7500 (step 125)" in (tmp_path / "compare.md").read_text()


def test_variants_and_seeds_parse_or_say_what_is_expected():
    assert parse_variants("simba:prefix,mamba,transformer:cross", "prefix") == [
        Variant("simba", "prefix"), Variant("mamba", "prefix"), Variant("transformer", "cross")]
    assert parse_variants("simba", "cross")[0].name == "simba-cross"
    for bad in ("gru:prefix", "simba:late", "simba,simba:prefix", ""):
        with pytest.raises(SsmusicError, match="--variants"):
            parse_variants(bad, "prefix")
    assert parse_ints("0, 1,2", "--seeds") == [0, 1, 2]
    for bad in ("0,a", "1,1", ""):
        with pytest.raises(SsmusicError, match="--seeds"):
            parse_ints(bad, "--seeds")


@pytest.fixture(scope="module")
def reference_audio(tmp_path_factory):
    """Two 1 s test clips with captions and instruments, the reference for generation metrics."""
    import csv
    import math

    import soundfile
    import torch

    root = tmp_path_factory.mktemp("reference")
    t = torch.arange(22050) / 22050
    rows = []
    for i, (freq, instrument) in enumerate([(220, "flute"), (440, "piano")]):
        soundfile.write(root / f"r{i}.wav", (0.3 * torch.sin(2 * math.pi * freq * t)).numpy(), 22050)
        rows.append({"path": f"r{i}.wav", "caption": f"a {instrument} tone", "split": "test", "instrument": instrument})
    with (root / "captions.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_compare_cli_seeds_variants_windows_and_generation(tmp_path, tiny_dataset, reference_audio, capsys):
    out = tmp_path / "cmp"
    args = ["compare", str(tiny_dataset), "--out", str(out), "--preset", "tiny", "--steps", "4", "--batch-size", "4",
            "--eval-every", "2", "--crop-frames", "20", "--variants", "simba:prefix,transformer:prefix",
            "--seeds", "0,1", "--model", "d_model=32", "--model", "headdim=16", "--warmup-steps", "1",
            "--gen-steps", "2,4", "--reference", str(reference_audio), "--gen-prompts", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| step | simba-prefix" in printed and "first reaches transformer-prefix's final mean" in printed
    assert "At equal training wall time" in printed and "fad of generated test captions" in printed
    assert "has 2 validation clips" in printed
    summary = json.loads((out / "compare.json").read_text())
    for variant in ("simba-prefix", "transformer-prefix"):
        assert summary["val_loss"][variant]["4"]["n"] == 2 and list(summary["val_loss"][variant]) == ["2", "4"]
        for metric in ("fad", "kl"):
            assert sorted(summary["generation"][metric][variant]) == ["2", "4"]
        # generation metrics vs wall time: the training wall time at each checked step, over both seeds
        logged = {s: [json.loads(line) for line in (out / variant / f"seed{s}" / "metrics.jsonl").read_text().splitlines()]
                  for s in (0, 1)}
        for step in (2, 4):
            walls = [r["wall_s"] for s in (0, 1) for r in logged[s] if r["step"] == step]
            assert summary["generation_wall_s"][variant][str(step)]["n"] == 2
            assert summary["generation_wall_s"][variant][str(step)]["max"] == max(walls)
    assert "Training wall time (s) at the generation checks" in printed
    assert "calibrated_time" not in summary  # no --time-steps: no calibrated view
    assert summary["settings"]["seeds"] == [0, 1] and "20-frame windows" in summary["settings"]["validation"]
    assert summary["settings"]["model"] == {"d_model": 32, "headdim": 16}  # the overrides the runs used
    assert summary["settings"]["valid_clips"] == 2
    # the seed is the only difference between a variant's runs; the variant the only one within a seed
    configs = {(v, s): json.loads((out / v / f"seed{s}" / "train_config.json").read_text())
               for v in ("simba-prefix", "transformer-prefix") for s in (0, 1)}
    assert configs[("simba-prefix", 0)]["seed"] == configs[("transformer-prefix", 0)]["seed"] == 0
    assert configs[("simba-prefix", 1)]["seed"] == 1
    seed0 = [json.loads(line)["loss"] for line in (out / "simba-prefix" / "seed0" / "metrics.jsonl").read_text().splitlines()]
    seed1 = [json.loads(line)["loss"] for line in (out / "simba-prefix" / "seed1" / "metrics.jsonl").read_text().splitlines()]
    assert seed0 != seed1
    # parameter counts are matched by the preset, also with the width override
    params = summary["parameters"]
    assert abs(params["transformer-prefix"] - params["simba-prefix"]) / params["simba-prefix"] < 0.15
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((out / "simba-prefix" / "seed0" / "generated" / "step_2").glob("*.wav"))) == 2
    # pausing to generate does not change training: the same run without --gen-steps logs the same losses
    plain = args[:args.index("--gen-steps")] + ["--out", str(tmp_path / "plain"), "--variants", "simba:prefix",
                                                "--seeds", "0"]
    assert main(plain) == 0
    losses = [[json.loads(line)["loss"] for line in (root / "simba-prefix" / "seed0" / "metrics.jsonl").read_text().splitlines()]
              for root in (out, tmp_path / "plain")]
    assert losses[0] == losses[1] and len(losses[0]) == 4
    # a rerun reuses finished runs and their generation results; --time-steps adds the calibrated view
    kept = [(out / "simba-prefix" / "seed0" / name).read_text() for name in ("metrics.jsonl", "generation.jsonl")]
    assert main(args + ["--time-steps", "3"]) == 0
    assert [(out / "simba-prefix" / "seed0" / name).read_text() for name in ("metrics.jsonl", "generation.jsonl")] == kept
    calibrated = json.loads((out / "compare.json").read_text())["calibrated_time"]
    assert set(calibrated["step_seconds"]) == {"simba-prefix", "transformer-prefix"}
    assert all(seconds > 0 for seconds in calibrated["step_seconds"].values())
    assert calibrated["budget_s"] == pytest.approx(min(4 * s for s in calibrated["step_seconds"].values()), abs=0.06)
    assert not (out / ".step_timing").exists()  # the timing runs leave nothing behind


def test_compare_gen_steps_need_a_reference(tmp_path, tiny_dataset):
    assert main(["compare", str(tiny_dataset), "--out", str(tmp_path / "x"), "--gen-steps", "2"]) == 2


def test_every_variant_is_matched_to_prefix_simba_parameters(tiny_dataset):
    from ssmusic.experiments.compare import matched_configs
    from ssmusic.model.presets import count_parameters
    from ssmusic.data.datasets import load_manifest
    from ssmusic.training.train import TrainConfig

    manifest = load_manifest(tiny_dataset)
    variants = parse_variants("simba:prefix,mamba:prefix,simba:cross,transformer:prefix,transformer:cross")
    base = TrainConfig(preset="tiny", model_overrides={"d_model": 32, "headdim": 16})
    counts = {v.name: count_parameters(c.lm_config(manifest))
              for v, c in matched_configs(tiny_dataset, base, variants).items()}
    unmatched_cross = count_parameters(TrainConfig(preset="tiny", conditioning="cross",
                                                   model_overrides=base.model_overrides).lm_config(manifest))
    assert unmatched_cross > 1.2 * counts["simba-prefix"]  # what the preset alone gives cross-SiMBA
    for name, count in counts.items():
        assert abs(count - counts["simba-prefix"]) / counts["simba-prefix"] < 0.15, (name, counts)
    fixed = TrainConfig(preset="tiny", model_overrides={"n_layers": 3})
    assert {c.lm_config(manifest).n_layers for c in matched_configs(tiny_dataset, fixed, variants).values()} == {3}


def test_equal_time_budgets_give_each_variant_its_own_schedule_and_learning_rate(tmp_path, tiny_dataset):
    """--time-budget: every variant's step count from its own timed seconds per step (so each run
    has its full warm-up and decay within the budget), kept for reruns; --lr-by-backbone per backbone."""
    from ssmusic.experiments.compare import parse_lrs

    out = tmp_path / "budget"
    args = ["compare", str(tiny_dataset), "--out", str(out), "--preset", "tiny", "--batch-size", "2",
            "--eval-every", "1000", "--model", "d_model=32", "--model", "headdim=16", "--model", "n_layers=1",
            "--variants", "simba,transformer", "--time-budget", "1.5", "--lr-by-backbone", "transformer=2e-3"]
    assert main(args) == 0
    budget = json.loads((out / "time_budget.json").read_text())
    assert budget["budget_s"] == 1.5 and set(budget["step_seconds"]) == {"simba-prefix", "transformer-prefix"}
    configs = {v: json.loads((out / v / "seed0" / "train_config.json").read_text())
               for v in ("simba-prefix", "transformer-prefix")}
    for variant, config in configs.items():
        assert config["steps"] == max(1, int(1.5 / budget["step_seconds"][variant]))
    assert configs["transformer-prefix"]["lr"] == 2e-3 and configs["simba-prefix"]["lr"] == 0.0  # the preset's
    summary = json.loads((out / "compare.json").read_text())
    assert summary["settings"]["lr"] == {"simba-prefix": 1e-3, "transformer-prefix": 2e-3}
    assert summary["settings"]["time_budget"] == budget
    kept = (out / "time_budget.json").read_text(), (out / "simba-prefix" / "seed0" / "metrics.jsonl").read_text()
    assert main(args) == 0  # a rerun keeps the timing and the finished runs
    assert ((out / "time_budget.json").read_text(), (out / "simba-prefix" / "seed0" / "metrics.jsonl").read_text()) == kept
    assert parse_lrs("simba=5e-4, transformer=1e-4") == {"simba": 5e-4, "transformer": 1e-4}
    for bad in ("rwkv=1e-3", "simba=fast", "simba=-1"):
        with pytest.raises(SsmusicError, match="--lr-by-backbone"):
            parse_lrs(bad)


def test_the_finding_b_gpu_script_end_to_end_on_the_cpu(tmp_path, tiny_dataset, reference_audio):
    """benchmarks/finding_b_gpu.py at toy sizes on the CPU: the lr sweep picks one lr per backbone,
    the budgeted runs use them, each final model's codes travel in one small archive (no weights),
    and the judge phase decodes and scores them where the archive is unpacked."""
    import subprocess
    import sys
    import tarfile
    from pathlib import Path

    script = Path(__file__).parents[2] / "benchmarks" / "finding_b_gpu.py"
    common = ["--data", str(tiny_dataset), "--work", str(tmp_path / "work"), "--device", "cpu", "--preset", "tiny",
              "--model", '{"d_model": 32, "headdim": 16, "n_layers": 1}', "--crop-frames", "0", "--batch-size", "2",
              "--warmup-steps", "1", "--eval-every", "1000", "--lrs", "1e-3,3e-3", "--sweep-budget", "1",
              "--budget", "1", "--seeds", "0,1", "--prompts", "2"]

    def run(phases: str, *extra: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, str(script), phases, *common, *extra], capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done

    run("sweep,runs,codes,pack", "--out", str(tmp_path / "out"))
    sweep = json.loads((tmp_path / "work" / "sweep.json").read_text())
    assert set(sweep["lr"]) == {"simba", "transformer"} and all(lr in (1e-3, 3e-3) for lr in sweep["lr"].values())
    summary = json.loads((tmp_path / "work" / "compare" / "compare.json").read_text())
    assert summary["settings"]["lr"] == {"simba-prefix": sweep["lr"]["simba"],
                                         "transformer-prefix": sweep["lr"]["transformer"]}
    with tarfile.open(tmp_path / "out" / "finding_b.tar.gz") as archive:
        names = archive.getnames()
        archive.extractall(tmp_path / "unpacked", filter="data")
    assert not any(name.endswith("model.safetensors") for name in names)
    assert sum(name.endswith("codes.safetensors") for name in names) == 4  # 2 variants x 2 seeds
    judged = subprocess.run([sys.executable, str(script), "judge", "--work", str(tmp_path / "unpacked"),
                             "--reference", str(reference_audio)], capture_output=True, text=True, timeout=900)
    assert judged.returncode == 0, judged.stderr[-3000:]
    record = json.loads((tmp_path / "unpacked" / "judged.json").read_text())
    assert set(record["runs"]) == {"simba-prefix", "transformer-prefix"}
    assert record["mean"]["simba-prefix"]["fad"]["n"] == 2
