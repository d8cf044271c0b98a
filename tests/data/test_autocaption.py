import csv

import pytest
import soundfile
import torch

from ssmusic.data.autocaption import captions_file, filename_caption, folder_captions
from ssmusic.data.captions import held_out_splits as split_of
from ssmusic.cli import main
from ssmusic.errors import SsmusicError


def _folder(directory, names):
    directory.mkdir()
    t = torch.arange(16000) / 16000
    for i, name in enumerate(names):
        soundfile.write(directory / name, (0.3 * torch.sin(2 * torch.pi * (220 + 40 * i) * t)).numpy(), 16000)
    return directory


def test_filename_captions_and_splits():
    assert filename_caption(__import__("pathlib").Path("steel_drums-calypso 03.wav")) == "steel drums calypso 03"
    files = [f"f{i}.wav" for i in range(30)]
    splits = split_of(files)
    assert list(splits.values()).count("valid") == 2 and list(splits.values()).count("test") == 2
    assert split_of(list(reversed(files))) == splits  # decided by the names, not their order
    assert set(split_of(files[:5]).values()) == {"train"}  # too few files to hold any out


def test_folder_captions_one_for_all_or_from_names(tmp_path):
    audio = _folder(tmp_path / "audio", ["banjo_reel.wav", "sub/trumpet-jig.wav".replace("sub/", "")])
    rows = folder_captions(audio, caption="my band, live")
    assert {r["caption"] for r in rows} == {"my band, live"} and len(rows) == 2
    assert [r["caption"] for r in folder_captions(audio, from_filenames=True)] == ["banjo reel", "trumpet jig"]
    for kwargs in ({}, {"caption": "x", "from_filenames": True}, {"caption": " "}):
        with pytest.raises(SsmusicError):
            folder_captions(audio, **kwargs)
    with pytest.raises(SsmusicError, match="no captions.csv; pass --captions FILE"):
        captions_file(audio, tmp_path / "out")


def test_prepare_a_folder_without_captions(tmp_path, tiny_codec_dir, capsys):
    audio = _folder(tmp_path / "audio", [f"take_{i:02d}.wav" for i in range(12)])
    out = tmp_path / "data"
    assert main(["prepare", str(audio), "--caption", "my music", "--out", str(out), "--codec", tiny_codec_dir,
                 "--clip-seconds", "1"]) == 0
    printed = capsys.readouterr().out
    assert "warning: one caption for all (12 files): text conditioning then carries little" in printed
    rows = list(csv.DictReader((out / "captions.csv").open()))
    assert len(rows) == 12 and {r["split"] for r in rows} == {"train", "valid", "test"}
    assert '"valid": 1' in (out / "manifest.json").read_text().replace("\n", "").replace("  ", "")
    assert main(["prepare", str(audio), "--captions-from-filenames", "--out", str(tmp_path / "d2"), "--codec",
                 tiny_codec_dir, "--clip-seconds", "1"]) == 0
    assert "12 distinct captions from file names" in capsys.readouterr().out
    assert main(["prepare", str(audio), "--out", str(tmp_path / "d3")]) == 2
    assert "--caption" in capsys.readouterr().err
    assert main(["prepare", str(audio), "--captions", str(out / "captions.csv"), "--caption", "x",
                 "--out", str(tmp_path / "d4")]) == 2
