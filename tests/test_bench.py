import json

from ssmusic.cli import main


def test_quick_bench_produces_every_table(tmp_path, capsys):
    assert main(["bench", "--quick", "--threads", "1", "--out", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    for heading in ("Decode, ms per generated token", "FLOP floor", "Paper's loop", "Peers", "Training"):
        assert heading in out
    results = json.loads((tmp_path / "b.json").read_text())
    decode = results["decode"]
    assert set(decode) == {f"{b}@{p}" for b in ("simba", "mamba", "transformer") for p in (16, 64)}
    assert all(r["ms_per_step"] > 0 and r["peak_mb"] > 0 for r in decode.values())
    assert results["peers"]["musicgen"]["ms_per_step_first_100"] > 0
    assert results["peers"]["mamba2"]["ms_per_step_first_100"] > 0
    assert all(r["tokens_per_s"] > 0 for r in results["training"].values())
    assert (tmp_path / "b.md").read_text().startswith("preset tiny")
