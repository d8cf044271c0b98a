"""Fitting the attribute judges: features and penalty chosen on valid, scored on test, known answers on
synthetic features; a dataset without the v2 columns stops with a one-line error."""

import numpy as np
import pytest

from ssmusic.metrics.attribute_fit import main, select


def _rows(n: int = 120) -> list[dict]:
    splits = ["train"] * 4 + ["valid", "test"]
    return [{"split": splits[i % 6], "drums": "yes" if i % 2 else "no", "melody_instrument": ["piano", "flute"][i // 2 % 2],
             "gm_programs": "0|73", "roles": "melody|accompaniment"} for i in range(n)]


def test_the_features_that_carry_the_attribute_are_chosen_on_valid():
    rows = _rows()
    rng = np.random.default_rng(0)
    drums = np.array([r["drums"] == "yes" for r in rows], np.float32)
    informative = rng.normal(size=(len(rows), 6)).astype(np.float32)
    informative[:, 0] += 4 * drums                           # drums move one feature of the mel statistics
    parts = {"musicnn": rng.normal(size=(len(rows), 5)).astype(np.float32), "mel-stats": informative}
    chosen = select("drums", parts, rows)
    assert chosen["features"] in ("mel-stats", "musicnn+mel-stats")
    assert chosen["scores"]["valid"]["value"] >= 0.95 and chosen["scores"]["test"]["value"] >= 0.95
    assert chosen["scores"]["test"]["n"] == 20 and len(chosen["scores"]["test"]["ci95"]) == 2
    noise_only = [c["valid_accuracy"] for c in chosen["candidates"] if c["features"] == "musicnn"]
    assert max(noise_only) < 0.8                               # noise judged as noise: near chance
    assert chosen["chance"] == 0.5 and len(chosen["candidates"]) == 12


def test_features_that_ignore_the_attribute_give_a_chance_judge():
    rows = _rows()
    rng = np.random.default_rng(1)
    parts = {"musicnn": rng.normal(size=(len(rows), 5)), "mel-stats": rng.normal(size=(len(rows), 5))}
    chosen = select("melody_instrument", parts, rows, kinds=("musicnn",))
    assert chosen["scores"]["test"]["value"] < 0.8


def test_a_dataset_without_the_v2_columns_stops_before_any_feature(tmp_path):
    (tmp_path / "captions.csv").write_text("path,caption,split,instrument\na.wav,A piano,train,piano\n")
    with pytest.raises(SystemExit, match="expected demo data v2"):
        main([str(tmp_path), "--out", str(tmp_path / "judges"), "--results", str(tmp_path / "r.json")])
    assert not (tmp_path / "judges").exists()


def test_a_multi_label_judge_hears_the_set_of_instruments():
    rows = _rows()
    rng = np.random.default_rng(2)
    for i, r in enumerate(rows):
        r["instruments"] = "|".join(name for bit, name in enumerate(("piano", "tuba", "harp")) if (i % 7 + 1) >> bit & 1)
    x = rng.normal(size=(len(rows), 6))
    x[:, :3] += 8 * np.array([[name in r["instruments"].split("|") for name in ("piano", "tuba", "harp")] for r in rows])
    chosen = select("instruments", {"musicnn": x, "mel-stats": rng.normal(size=(len(rows), 4))}, rows)
    assert chosen["judge"].multilabel and chosen["judge"].classes == ["harp", "piano", "tuba"]
    assert chosen["scores"]["test"]["value"] >= 0.9 and chosen["chance"] is None
    assert chosen["prompt_ignored"]["test"]["value"] < 0.3     # each clip against the next clip's set
