"""The attribute judges in `evaluate`: generated clips judged against their prompts' attributes beside the
ceiling on the real clips, with n, interval and ratio; a judge that must fail (held tones asked for drums)
fails; the shipped judges hear no drums in a constant clip."""

import csv
import json

import numpy as np
import pytest
import soundfile

from judge_signals import RATE, click_track, melody, tone
from ssmusic.metrics.attributes import attribute_label, judge_attributes, load_judges, part_features
from ssmusic.metrics.classifier import fit
from ssmusic.metrics.evaluate import evaluate, seeds_table
from ssmusic.metrics.seeds import aggregate

SECONDS = 4.0
COLUMNS = ["path", "caption", "split", "drums", "melody_instrument", "gm_programs", "roles", "instruments"]


def _clip(drums: bool, low: bool) -> np.ndarray:
    notes = [48, 52, 55, 60] if low else [84, 88, 91, 96]
    audio = melody(notes * 8, 0.25)[: int(SECONDS * RATE)]
    return audio + click_track(120, SECONDS) if drums else audio


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    """A tiny v2-like dataset (drums yes/no, a low 'piano' or high 'flute' melody), judges fitted on its
    train split, and generated clips: held tones for the test split's drum captions."""
    root = tmp_path_factory.mktemp("v2")
    ref, gen, echo, judges, cache = (root / d for d in ("ref", "gen", "echo", "judges", "cache"))
    for d in (ref, gen, echo):
        d.mkdir()
    rows = []
    for i in range(16):
        drums, low, split = i % 2 == 1, i // 2 % 2 == 0, "test" if i >= 12 else "train"
        caption = f"A {'piano' if low else 'flute'} piece {'with' if drums else 'without'} drums, take {i}"
        soundfile.write(ref / f"r{i}.wav", _clip(drums, low), RATE)
        rows.append([f"r{i}.wav", caption, split, "yes" if drums else "no", "piano" if low else "flute",
                     "0|33" if low else "73|33", "melody|bass", "piano|electric bass" if low else "flute|electric bass"])
        if split == "test":
            soundfile.write(echo / f"e{i}.wav", _clip(drums, low), RATE)   # a generator as good as the data
            (echo / f"e{i}.json").write_text(json.dumps({"prompt": caption}))
            if drums:
                soundfile.write(gen / f"g{i}.wav", tone(66, SECONDS, decay=None), RATE)
                (gen / f"g{i}.json").write_text(json.dumps({"prompt": caption}))
    with (ref / "captions.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([COLUMNS, *rows])
    train = [dict(zip(COLUMNS, r)) for r in rows if r[2] == "train"]
    x = part_features("mel-stats", [ref / r["path"] for r in train], cache, progress=False)
    for name in ("drums", "melody_instrument", "instruments"):
        (judges / name).mkdir(parents=True)
        fit(x, [attribute_label(name, r) for r in train], name, kind="mel-stats",
            multilabel=name == "instruments").save(judges / name, {})
    return ref, gen, echo, judges, cache


def test_melody_family_comes_from_the_melody_part():
    assert attribute_label("melody_family", {"gm_programs": "46|75", "roles": "accompaniment|melody"}) == "pipe"
    assert attribute_label("melody_family", {"gm_programs": "0", "roles": ""}) == "piano"
    assert attribute_label("drums", {"drums": ""}) is None
    assert attribute_label("instruments", {"instruments": "tuba|harp|tuba"}) == "harp|tuba"


def test_held_tones_asked_for_drums_fail_and_the_real_clips_reach_the_ceiling(v2):
    ref, gen, echo, judges, cache = v2
    failed = evaluate(gen, ref, ["attributes"], split="test", cache_dir=cache, progress=False, attribute_dir=judges)
    drums = failed["attributes"]["drums"]
    assert drums["value"] == 0.0 and drums["n"] == 2 and drums["ci95"][1] < 0.7     # no drums heard
    assert drums["ceiling"] == 1.0 and drums["ceiling_clips"] == 4 and drums["ratio"] == 0.0
    assert drums["most_predicted"] == {"class": "no", "share": 1.0}
    assert drums["per_label"]["yes"]["value"] == 0.0 and drums["per_label"]["yes"]["n"] == 2
    assert "n" in drums["per_label"]["no"] and "value" not in drums["per_label"]["no"]   # no clip asked for none
    echoed = evaluate(echo, ref, ["attributes"], split="test", cache_dir=cache, progress=False, attribute_dir=judges)
    for name in ("drums", "melody_instrument", "instruments"):
        entry = echoed["attributes"][name]
        assert entry["value"] == entry["ceiling"] == 1.0 and entry["ratio"] == 1.0 and entry["n"] == 4
    assert echoed["attributes"]["instruments"]["all_named_heard"]["value"] == 1.0


def test_a_reference_without_the_attribute_columns_is_skipped_with_its_reason(tmp_path):
    result = judge_attributes([], [{"path": "a.wav", "caption": "x", "instrument": "piano"}], tmp_path,
                              directory=tmp_path / "none")
    assert "none of the attribute columns" in result["skipped"]


def test_the_command_prints_accuracy_with_n_interval_ceiling_and_ratio(v2, tmp_path, capsys):
    from ssmusic.cli import main

    ref, gen, _, judges, cache = v2
    out = tmp_path / "evaluation.json"
    assert main(["evaluate", str(gen), "--reference", str(ref), "--split", "test", "--metrics", "attributes",
                 "--attribute-judges", str(judges), "--cache-dir", str(cache), "--out", str(out)]) == 0
    rows = {cells[1].strip(): cells[2:4] for line in capsys.readouterr().out.splitlines()
            if (cells := line.split("|"))[0] == "" and len(cells) >= 5}
    generated, beside = rows["drums present/absent"]
    assert "0% [" in generated and "n=2" in generated
    assert "ceiling (real clips) 100% [" in beside and "n=4" in beside and "ratio 0.0" in beside
    assert "asked yes: 0% n=2" in beside
    assert "n=0" not in rows["melody instrument"][0]
    for label in ("ensemble (the set of instruments)", "ensemble: every named instrument heard"):
        assert "n=2" in rows[label][0] and "ceiling (real clips) 100% [" in rows[label][1]
    saved = json.loads(out.read_text())
    assert saved["attributes"]["drums"]["ratio"] == 0.0 and saved["attributes"]["drums"]["features"] == "mel-stats"


def test_over_seeds_the_accuracy_and_its_ratio_get_mean_and_range():
    per_seed = [{"attributes": {"drums": {"value": v, "ceiling": 0.9, "ratio": round(v / 0.9, 4), "n": 74}}}
                for v in (0.6, 0.9)]
    table = seeds_table({"over_seeds": aggregate(per_seed)})
    assert "| attributes.drums | 0.75 | 0.6-0.9 |" in table and "| attributes.drums.ratio | 0.833" in table


def test_the_shipped_drums_judge_hears_no_drums_in_a_held_tone_or_silence(tmp_path):
    ref, gen = tmp_path / "ref", tmp_path / "gen"
    ref.mkdir(), gen.mkdir()
    rows = [["path", "caption", "split", "drums"]]
    for i, audio in enumerate((tone(60, 6.0, decay=None), np.zeros(6 * RATE, np.float32))):
        caption = f"A rock band with drums, take {i}"
        soundfile.write(ref / f"r{i}.wav", _clip(True, True), RATE)
        rows.append([f"r{i}.wav", caption, "test", "yes"])
        soundfile.write(gen / f"g{i}.wav", audio, RATE)
        (gen / f"g{i}.json").write_text(json.dumps({"prompt": caption}))
    with (ref / "captions.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result = evaluate(gen, ref, ["attributes"], split="test", cache_dir=tmp_path / "cache", progress=False)
    drums = result["attributes"]
    assert list(drums) == ["drums"]                  # the reference has no instrument columns
    assert drums["drums"]["value"] == 0.0 and drums["drums"]["n"] == 2 and drums["drums"]["silent_clips"] == 1
    assert drums["drums"]["chance"] == 0.5 and drums["drums"]["features"] == load_judges()["drums"].features


def test_evaluate_over_seeds_reports_each_judge_and_its_ratio(v2, tmp_path, capsys):
    from ssmusic.cli import main

    ref, _, echo, judges, cache = v2
    for seed in (0, 1):  # complete seed folders are judged as they are: seed 0 as good as the data, seed 1 held tones
        folder = tmp_path / "gen" / f"seed_{seed}"
        folder.mkdir(parents=True)
        for sidecar in echo.glob("*.json"):
            audio = soundfile.read(sidecar.with_suffix(".wav"))[0] if seed == 0 else tone(66, SECONDS, decay=None)
            soundfile.write(folder / sidecar.with_suffix(".wav").name, audio, RATE)
            (folder / sidecar.name).write_text(sidecar.read_text())
    assert main(["evaluate", str(tmp_path / "gen"), "--reference", str(ref), "--split", "test", "--metrics",
                 "attributes", "--attribute-judges", str(judges), "--seeds", "0,1", "--cache-dir", str(cache)]) == 0
    summary = json.loads((tmp_path / "gen" / "evaluation.json").read_text())["over_seeds"]
    assert summary["attributes.drums.value"]["per_seed"] == [1.0, 0.5] and summary["attributes.drums.ratio"]["mean"] == 0.75
    assert "| attributes.drums.ratio | 0.75 | 0.5-1 |" in capsys.readouterr().out
