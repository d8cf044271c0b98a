import json

from ssmusic.cli import main
from ssmusic.compare import summarize


def test_summary_finds_first_step_reaching_the_transformer():
    curves = {
        "transformer": [{"step": s, "val_loss": v, "wall_s": s, "tokens_per_s": 100} for s, v in ((1, 5.0), (2, 4.0))],
        "simba": [{"step": s, "val_loss": v, "wall_s": 2 * s, "tokens_per_s": 80} for s, v in ((1, 3.9), (2, 3.0))],
        "mamba": [{"step": s, "val_loss": v, "wall_s": s, "tokens_per_s": 90} for s, v in ((1, 6.0), (2, 4.5))],
    }
    summary = summarize(curves)
    assert summary["reference_final_val_loss"] == 4.0
    assert summary["first_step_reaching_reference"] == {"transformer": {"step": 2, "wall_s": 2},
                                                        "simba": {"step": 1, "wall_s": 2}, "mamba": None}
    assert summary["val_loss_by_step"]["1"] == {"transformer": 5.0, "simba": 3.9, "mamba": 6.0}


def test_compare_cli_trains_each_backbone_and_writes_plot_and_table(tmp_path, tiny_dataset, capsys):
    args = ["compare", str(tiny_dataset), "--out", str(tmp_path / "cmp"), "--preset", "tiny", "--steps", "4",
            "--batch-size", "4", "--eval-every", "2", "--backbones", "simba,transformer",
            "--model", "d_model=32", "--model", "headdim=16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| step | simba | transformer |" in out and "first reaches transformer's final" in out
    png = (tmp_path / "cmp" / "compare.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert set(summary["val_loss_by_step"]["4"]) == {"simba", "transformer"}
    # parameter counts are matched by the preset even with the width override
    configs = [json.loads((tmp_path / "cmp" / b / "final" / "lm_config.json").read_text()) for b in ("simba", "transformer")]
    assert configs[0]["n_layers"] != configs[1]["n_layers"] or configs[0]["d_model"] == configs[1]["d_model"]
    # rerun reuses finished runs (no new metrics lines)
    lines = (tmp_path / "cmp" / "simba" / "metrics.jsonl").read_text()
    assert main(args) == 0
    assert (tmp_path / "cmp" / "simba" / "metrics.jsonl").read_text() == lines
