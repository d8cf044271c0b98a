import csv
import json
import shutil

import pytest
import soundfile

from ssmusic.cli import main
from ssmusic.data.demo import Clip, build, caption, piece_split, plan
from ssmusic.errors import SsmusicError

needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="install.sh installs fluidsynth")


@needs_fluidsynth
def test_tiny_demo_dataset(tmp_path):
    info = build(tmp_path / "demo", clips=5, seconds=3.0, sample_rate=16000, seed=1, workers=1, progress=False)
    rows = list(csv.DictReader((tmp_path / "demo" / "captions.csv").open()))
    assert info["clips"] == len(rows) >= 4 and info["clips"] + info["skipped"] == 5
    for row in rows:
        data, rate = soundfile.read(tmp_path / "demo" / row["path"])
        assert rate == 16000 and len(data) == 48000 and abs(data).max() > 0.01
        assert row["split"] in ("train", "valid", "test")
        assert row["key"] in row["caption"] and row["tempo_bpm"] in row["caption"]
        assert int(row["gm_program"]) >= 0 and row["instrument"]
    meta = json.loads((tmp_path / "demo" / "dataset.json").read_text())
    assert meta["settings"]["seed"] == 1 and "licences" in meta
    # resumable and deterministic: a second run keeps the files and writes the same captions
    before = (tmp_path / "demo" / "captions.csv").read_bytes()
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "demo").glob("*.wav")}
    build(tmp_path / "demo", clips=5, seconds=3.0, sample_rate=16000, seed=1, workers=1, progress=False)
    assert (tmp_path / "demo" / "captions.csv").read_bytes() == before
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "demo").glob("*.wav")} == mtimes


def test_plan_is_seeded_and_splits_by_piece():
    a, b = plan(60, 10.0, 22050, seed=3), plan(60, 10.0, 22050, seed=3)
    assert a == b and plan(60, 10.0, 22050, seed=4) != a
    split_of = {}
    for clip in plan(400, 10.0, 22050, seed=0):
        assert split_of.setdefault(clip.piece_id, clip.split) == clip.split  # no piece in two splits
    assert {"train", "valid", "test"} <= set(split_of.values())
    assert piece_split("bach/bwv1.6.mxl", -1, 0) == piece_split("bach/bwv1.6.mxl", -1, 0)
    assert len({c.program for c in a}) >= 5 and len({c.collection for c in a}) >= 4


def test_caption_shapes_name_the_rendering():
    meta = {"title": "BWV 281", "composer": "J. S. Bach", "label": "Bach chorale", "key": "G major",
            "mode": "major", "meter": "4/4"}
    texts = [caption(Clip(i, "bach", "bach/bwv281.mxl", -1, "train", 52, 60, 0, 10.0, 22050), meta)
             for i in range(4)]
    assert len(set(texts)) == 4
    assert texts[0] == "A slow Bach chorale in G major sung by a choir, 4/4, about 60 BPM."
    assert all("G major" in t and "60 BPM" in t and "choir" in t for t in texts)


def test_bad_arguments_and_missing_soundfont(tmp_path, capsys):
    with pytest.raises(SsmusicError, match="--clips"):
        build(tmp_path, clips=0)
    if shutil.which("fluidsynth"):
        assert main(["data", "demo", str(tmp_path / "x"), "--soundfont", str(tmp_path / "none.sf2")]) == 2
        assert "none.sf2: file not found" in capsys.readouterr().err


def test_builder_and_cli_agree_on_the_default_clip_count(monkeypatch):
    """`ssmusic data demo` without --clips builds each version's own default (v1 600, v2 3000)."""
    import inspect

    from ssmusic.cli import build_parser
    from ssmusic.data import demo
    from ssmusic.data.demo_v2 import build as demo_v2

    info = {"clips": 0, "hours": 0, "splits": {}, "skipped": 0, "render_seconds": 0}
    for version, module, default in (("1", demo, 600), ("2", demo_v2, 3000)):
        assert inspect.signature(module.build).parameters["clips"].default == default
        calls = []
        monkeypatch.setattr(module, "build", lambda *args, calls=calls, **kwargs: calls.append(kwargs) or info)
        module.run(build_parser().parse_args(["data", "demo", "out", "--version", version]))
        assert calls[0]["clips"] == default


def test_instrument_list_option():
    from ssmusic.data.instruments import ALL_INSTRUMENTS, INSTRUMENTS, parse_instruments

    assert parse_instruments(None) == list(INSTRUMENTS)
    assert parse_instruments("Trumpet, steel drums,12,trumpet") == [56, 114, 12]
    assert not set(parse_instruments("trumpet,accordion,steel drums,banjo")) & set(INSTRUMENTS)
    with pytest.raises(SsmusicError, match="unknown instrument 'kazoo'; known: accordion"):
        parse_instruments("kazoo")
    clips = plan(40, 10.0, 22050, seed=0, programs=[56, 105])
    assert {c.program for c in clips} == {56, 105}
    assert plan(40, 10.0, 22050, seed=0) == plan(40, 10.0, 22050, seed=0, programs=list(INSTRUMENTS))
    meta = {"title": "t", "composer": "c", "label": "Bach chorale", "key": "G major", "mode": "major", "meter": ""}
    assert "steel drums" in caption(Clip(0, "bach", "bach/x.mxl", -1, "train", 114, 60, 0, 10.0, 22050), meta)
    assert len(ALL_INSTRUMENTS) == 33
