import json

import pytest

from ssmusic.experiments.bench import floor
from ssmusic.cli import main



def test_quick_bench_produces_every_table(tmp_path, capsys):
    assert main(["bench", "--quick", "--threads", "1", "--out", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    for heading in ("Decode, ms per generated token", "FLOP floor", "Paper's loop", "Peers", "End to end", "Training"):
        assert heading in out
    results = json.loads((tmp_path / "b.json").read_text())
    decode = results["decode"]
    assert set(decode) == {f"{b}@{p}" for b in ("simba", "mamba", "transformer") for p in (16, 64)}
    assert all(r["ms_per_step"] > 0 and r["peak_mb"] > 0 for r in decode.values())
    assert results["peers"]["musicgen"]["ms_per_step_first_100"] > 0
    assert results["peers"]["mamba2"]["ms_per_step_first_100"] > 0
    assert all(r["tokens_per_s"] > 0 for r in results["training"].values())
    e2e = results["end_to_end"]
    assert e2e["simba"]["frames"] == 120 and e2e["simba"]["wall_s"] > 0 and e2e["dac_decode"]["wall_s"] > 0
    assert results["peers"]["musicgen"]["layers"] >= 1
    assert (tmp_path / "b.md").read_text().startswith("preset tiny")
    assert {(r["dtype"], r["state"]) for r in results["batch"]["rows"].values()} == set(floor.BATCH_TYPES)
    assert results["agreement"]["bfloat16 state"]["top1_agreement"] > 0.5
    # from now on every run times the decode step and training at 1 and 2 threads too
    table = results["threads_table"]
    assert set(table["rows"]) == {"1", "2"} and "wait_policy" in table
    assert all(r["decode"]["ms_per_step"] > 0 and r["training"]["tokens_per_s"] > 0 for r in table["rows"].values())
    assert "| threads | decode ms/step | training tokens/s |" in out


def test_paper_size_table_integrates_the_measured_positions():
    from ssmusic.experiments import bench

    results = bench.paper_size(1, positions=(8, 16), steps=2, progress=False, preset="tiny", isolate=False)
    decode, loop = results["decode"], results["paper_loop"]
    assert set(decode) == set(loop) == {"8", "16"}
    # piecewise-linear integral over positions 0..16 of the measured per-token costs, in seconds
    ours = [decode["8"]["ms_per_step"], decode["16"]["ms_per_step"]]
    expected = (8 * ours[0] + 8 * (ours[0] + ours[1]) / 2) / 1000
    assert abs(results["total_s"]["recurrent"] - expected) < 1e-9
    assert results["total_s"]["paper_loop"] > 0 and results["total_s"]["frames"] == 16
    text = bench.tables({"preset": "paper", "device": "cpu", "threads": 1, "matmul": {}, "decode": {},
                         "paper_loop": {}, "peers": {}, "training": {}, "end_to_end": {}, "paper_size": results})
    assert "Paper size" in text and "16 tokens in all" in text and "Peers" not in text


def test_a_measurement_runs_in_its_own_process():
    from ssmusic.experiments.bench.runner import measure

    result = measure("released_loop", 1, preset="tiny", position=8, repeats=1)
    assert result["ms_per_step"] > 0 and result["peak_mb"] > 0 and result["process_s"] > 0
    assert "error" in measure("released_loop", 1, preset="no-such-preset", position=8, repeats=1)


def test_decode_floor_tables_show_the_compiled_step_beside_the_eager_one():
    from ssmusic.experiments.bench.report import tables

    step = {"ms": 2.0, "x_floor": 1.0, "weight_mb": 10.0}
    floor = {"bandwidth": {"gbps": 10.0, "reduce_gbps": 9.0, "matvec_gbps": 10.0}, "weight_mb": 10.0, "floor_ms": 2.0,
             "parameters": 1e6, "steps": {"float32": step},
             "compiled": {"float32": {**step, "ms": 1.5, "x_floor": 0.75, "first_step_s": 30.0}}}
    row = {"prompts": 64, "dtype": "float32", "ms_per_step": 100.0, "tokens_per_s": 640.0, "gflops": 50.0,
           "pct_of_peak": 25.0}
    batch = {"matmul_gflops": 200.0, "bf16_matmul_gflops": 900.0,
             "rows": {"float32@64": {**row, "path": "eager"},
                      "compiled float32@64": {**row, "path": "compiled", "pct_of_peak": 40.0},
                      "compiled bfloat16/bfloat16@64": {**row, "dtype": "bfloat16", "state": "bfloat16",
                                                        "path": "compiled", "pct_of_peak": 70.0}}}
    start = {"cold": {"first_step_s": 40.0, "cache_hits": 0, "cache_misses": 2},
             "warm": {"first_step_s": 4.0, "cache_hits": 2, "cache_misses": 0}}
    text = tables({"preset": "small", "device": "cpu", "threads": 1, "floor": floor, "batch": batch,
                   "compile_start": start})
    assert "| float32 | compiled | 10 | 2.00 | 1.50 | 0.75 |" in text
    assert "| float32 | float32 | compiled | 64 | 100.0 | 640 | 50.0 | 40 |" in text
    assert "| bfloat16 | bfloat16 | compiled | 64 | 100.0 | 640 | 50.0 | 70 |" in text
    assert "float32 matmul peak 200 GFLOP/s; the bfloat16 matmul peak is 900" in text
    assert "first step 40.0 s with an empty compile cache" in text and "4.0 s with it filled (2 hits" in text


def test_an_unwritable_out_or_a_missing_device_is_refused_before_timing(tmp_path, capsys, monkeypatch):
    import torch

    from ssmusic.experiments import bench

    monkeypatch.setattr(bench, "run_all", lambda *args, **kwargs: pytest.fail("timed first"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "a_file").write_text("not a folder")
    for flags, message in ((["--out", str(tmp_path / "a_file" / "b.json")], "a_file is not a directory"),
                           (["--device", "cuda"], "--device cuda: no CUDA device here")):
        assert main(["bench", "--quick", *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
