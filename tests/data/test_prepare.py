import csv
import json

import numpy as np
import pytest
import soundfile

from ssmusic.cli import main
from ssmusic.data.captions import read_csv, write_csv
from ssmusic.data.datasets import CodesDataset, collate, load_manifest
from ssmusic.errors import SsmusicError
from ssmusic.data.prepare import PrepareSettings, prepare


@pytest.fixture()
def codec_dir(tiny_codec_dir):
    return tiny_codec_dir


def make_audio(directory, with_split=True):
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    rng = np.random.default_rng(0)
    for i, (seconds, split) in enumerate([(2.5, "train"), (1.0, "train"), (1.0, "valid"), (1.2, "test")]):
        name = f"clip{i}.{'flac' if i == 1 else 'wav'}"
        soundfile.write(directory / name, 0.1 * rng.standard_normal(int(seconds * 16000)), 16000)
        rows.append({"path": name, "caption": f"piece number {i}", "split": split})
    (directory / "broken.wav").write_bytes(b"RIFF nonsense")
    rows.append({"path": "broken.wav", "caption": "broken", "split": "train"})
    with (directory / "captions.csv").open("w", newline="") as handle:
        fields = ["path", "caption", "split"] if with_split else ["path", "caption"]
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return directory


def test_prepare_writes_clips_manifest_and_cached_text(tmp_path, codec_dir):
    audio = make_audio(tmp_path / "audio")
    manifest = prepare(audio, audio / "captions.csv", tmp_path / "data", codec_dir, None,
                       PrepareSettings(clip_seconds=1.0), progress=False)
    # 2.5 s -> clips at 0, 1, 2 (the 0.5 s tail is kept, padded); 1.0 -> 1; the broken file is skipped
    assert manifest["splits"] == {"train": 4, "valid": 1, "test": 1}
    assert [s["path"] for s in manifest["skipped"]] == ["broken.wav"]
    assert manifest["card"] == 16 and manifest["clip_frames"] == 43 and manifest["text_dim"] == 384
    assert all(len(s["sha256"]) == 64 for s in manifest["sources"])
    train = CodesDataset(tmp_path / "data", "train")
    item = train[2]
    assert item["codes"].shape == (2, 43) and item["caption"] == "piece number 0"
    assert (item["codes"][:, -20:] == 16).all()  # padded tail marked with the pad id
    assert (train[0]["codes"] < 16).all()
    assert item["text"].shape[1] == 384 and item["text_mask"].any()
    batch = collate([train[0], train[3]])
    assert batch["codes"].shape == (2, 2, 43) and batch["text"].shape[:2] == batch["text_mask"].shape
    assert CodesDataset(tmp_path / "data", "train", n_codebooks=1)[0]["codes"].shape == (1, 43)


def test_prepare_resumes_and_is_deterministic(tmp_path, codec_dir):
    audio = make_audio(tmp_path / "audio", with_split=False)
    settings = PrepareSettings(clip_seconds=1.0, cache_text=False)
    first = prepare(audio, audio / "captions.csv", tmp_path / "a", codec_dir, None, settings, progress=False)
    work = sorted((tmp_path / "a" / ".work").glob("*.npy"))
    stamps = [p.stat().st_mtime_ns for p in work]
    (tmp_path / "a" / "manifest.json").unlink()  # as if interrupted before the end
    again = prepare(audio, audio / "captions.csv", tmp_path / "a", codec_dir, None, settings, progress=False)
    assert [p.stat().st_mtime_ns for p in work] == stamps  # nothing re-encoded
    assert again == first and sum(first["splits"].values()) == 6


def test_incomplete_dataset_and_bad_captions_are_refused(tmp_path, codec_dir):
    (tmp_path / "data" / ".work").mkdir(parents=True)
    with pytest.raises(SsmusicError, match="interrupted"):
        load_manifest(tmp_path / "data")
    audio = make_audio(tmp_path / "audio")
    (audio / "bad.csv").write_text("file,text\nclip0.wav,hello\n")
    with pytest.raises(SsmusicError, match="missing column 'path'"):
        prepare(audio, audio / "bad.csv", tmp_path / "out", codec_dir, None, progress=False)
    (audio / "bad2.csv").write_text("path,caption,split\nclip0.wav,hello,training\n")
    with pytest.raises(SsmusicError, match="bad2.csv:2: split 'training'"):
        prepare(audio, audio / "bad2.csv", tmp_path / "out", codec_dir, None, progress=False)


def test_cli_prepare(tmp_path, codec_dir, capsys):
    audio = make_audio(tmp_path / "audio")
    code = main(["prepare", str(audio), "--captions", str(audio / "captions.csv"), "--out", str(tmp_path / "d"),
                 "--codec", codec_dir, "--clip-seconds", "1", "--no-text-cache"])
    assert code == 0 and json.loads((tmp_path / "d" / "manifest.json").read_text())["splits"]["train"] == 4
    assert main(["prepare", str(tmp_path / "nope"), "--captions", "x.csv", "--out", str(tmp_path / "e")]) == 2
    assert "audio directory not found" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("not a folder")  # refused before the codec loads or a file is encoded
    assert main(["prepare", str(audio), "--captions", str(audio / "captions.csv"), "--out",
                 str(tmp_path / "a_file" / "d"), "--codec", "no-such-codec"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "a_file is not a directory" in err and err.count("\n") == 1


def test_a_file_shorter_than_one_clip_is_one_padded_clip(tmp_path, codec_dir):
    audio = tmp_path / "audio"
    audio.mkdir()
    for name, seconds in (("short.wav", 1.5), ("tiny.wav", 0.4)):
        soundfile.write(audio / name, 0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000)), 16000)
    (audio / "captions.csv").write_text("path,caption,split\nshort.wav,short,train\ntiny.wav,tiny,train\n")
    manifest = prepare(audio, audio / "captions.csv", tmp_path / "data", codec_dir, None,
                       PrepareSettings(clip_seconds=4.0, cache_text=False), progress=False)
    assert manifest["splits"]["train"] == 1
    assert manifest["skipped"] == [{"path": "tiny.wav", "reason": "shorter than the 1 s minimum"}]
    codes = CodesDataset(tmp_path / "data", "train")[0]["codes"]
    valid = int((codes[0] != 16).sum())
    assert codes.shape == (2, 172) and 60 <= valid <= 70  # 1.5 s of 4 s at 43 frames/s, the rest pad


def test_nothing_usable_names_the_options_that_fix_it(tmp_path, codec_dir, capsys):
    audio = tmp_path / "audio"
    audio.mkdir()
    soundfile.write(audio / "a.wav", np.zeros(8000), 16000)  # 0.5 s
    (audio / "captions.csv").write_text("path,caption\na.wav,half a second\n")
    args = ["prepare", str(audio), "--captions", str(audio / "captions.csv"), "--codec", codec_dir,
            "--no-text-cache"]
    assert main([*args, "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "a.wav: shorter than the 1 s minimum" in err and "--min-seconds (1)" in err and "--clip-seconds (30)" in err
    assert main([*args, "--out", str(tmp_path / "e"), "--min-seconds", "0.25"]) == 0


def test_held_out_test_splits_and_attribute_columns_carry_through(tmp_path, codec_dir):
    audio = make_audio(tmp_path / "audio")
    _, rows = read_csv(audio / "captions.csv")
    rows[2]["split"] = "test_phrasing"
    for i, row in enumerate(rows):
        row["mood"] = f"mood {i}"
    write_csv(audio / "captions.csv", rows, ["path", "caption", "split", "mood"])
    manifest = prepare(audio, audio / "captions.csv", tmp_path / "data", codec_dir, None,
                       PrepareSettings(clip_seconds=1.0, cache_text=False), progress=False)
    assert manifest["splits"] == {"train": 4, "valid": 0, "test": 1, "test_phrasing": 1}
    held_out = CodesDataset(tmp_path / "data", "test_phrasing")
    assert len(held_out) == 1 and held_out[0]["caption"] == "piece number 2"
    lines = [json.loads(line) for line in (tmp_path / "data" / "train" / "captions.jsonl").open()]
    assert [line["attributes"]["mood"] for line in lines] == ["mood 0"] * 3 + ["mood 1"]
    rows[2]["split"] = "holdout"
    write_csv(audio / "captions.csv", rows, ["path", "caption", "split", "mood"])
    with pytest.raises(SsmusicError, match="split 'holdout'.*test_<name>"):
        prepare(audio, audio / "captions.csv", tmp_path / "other", codec_dir, None, PrepareSettings(clip_seconds=1.0))


def test_sixteen_files_without_splits_get_a_valid_and_a_test_file(tmp_path, codec_dir):
    """Files without a split: at least one valid and one test file from 10 usable files on (the 5%
    hash buckets alone gave 14 / 0 / 2 here), the same rule as --captions-from-filenames; an unreadable
    file is skipped before the splits are drawn, so it never takes the only held-out place."""
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(16):
        soundfile.write(audio / f"clip{i:02d}.wav", 0.1 * rng.standard_normal(16000), 16000)
        rows.append({"path": f"clip{i:02d}.wav", "caption": f"clip {i}"})
    (audio / "broken.wav").write_bytes(b"RIFF nonsense")
    write_csv(audio / "captions.csv", rows + [{"path": "broken.wav", "caption": "broken"}], ["path", "caption"])
    manifest = prepare(audio, audio / "captions.csv", tmp_path / "data", codec_dir, None,
                       PrepareSettings(clip_seconds=1.0, cache_text=False), progress=False)
    assert manifest["splits"] == {"train": 14, "valid": 1, "test": 1}
    assert [s["path"] for s in manifest["skipped"]] == ["broken.wav"]
