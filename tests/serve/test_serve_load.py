"""benchmarks/serve_load.py, small: 20 clients at once against a real server with the tiny model
(one wave, the full load's first; `--keep-jobs 16` means 4 of the 20 jobs must be forgotten)."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the web demo needs the demo extra: pip install -e '.[demo]'")
SCRIPT = Path(__file__).parents[2] / "benchmarks" / "serve_load.py"


def test_twenty_clients_nothing_lost_and_the_store_stays_bounded(tiny_model_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "load.json"
    results = bench.main(["--checkpoint", str(tiny_model_dir), "--phase", "load", "--clients", "20", "--rounds", "1",
                          "--seconds", "0.5", "--out", str(out)])
    load = results["load"]
    assert load["requests"] == load["accepted"] == load["done"] == load["wav_exact_length"] == 20
    assert load["lost"] == 0 and load["refused_other"] == []  # every other answer was "busy, retry"
    assert load["refused_503"] == load["refusals_with_retry_after"]
    assert load["refusal_messages"] in ([], ["the queue is full"])
    for store, files in zip(load["store_after_each_round"], load["files_in_outputs_after_each_round"]):
        assert store["kept"] <= 16 and files <= 3 * store["kept"]  # --keep-jobs 16: 20 jobs, 16 kept
    assert load["first_job_forgotten"] and out.is_file()
