"""Everything a generation asks for is checked before any model loads, in one place (ssmusic.checks)
that the CLI and the Python API share: one-line errors, no traceback, no work lost."""

import os
import shutil

import pytest
import torch

from ssmusic import checks
from ssmusic.cli import main
from ssmusic.errors import SsmusicError


@pytest.fixture
def no_model_loads(monkeypatch):
    """Loading a model fails the test: a refusal must come before it."""
    from ssmusic.model.lm import MusicLM

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(MusicLM, "from_pretrained", refuse)


def test_a_string_is_one_prompt_and_other_types_are_refused():
    assert checks.check_prompts("a calm piano piece") == ["a calm piano piece"]
    assert checks.check_prompts(("a", "b")) == ["a", "b"]
    for bad, match in ((b"bytes", "got bytes"), (3, "got int"), ([], "no prompts"),
                       (["ok", 5], "--prompt: expected a text description of the music, got int")):
        with pytest.raises(SsmusicError, match=match):
            checks.check_prompts(bad)


def test_the_api_makes_one_clip_from_a_string(tiny_model_dir):
    from ssmusic.pipeline import TextToMusic

    model = TextToMusic.from_pretrained(tiny_model_dir)
    audio, _ = model.generate("a calm piano piece", seconds=0.2, seed=0)
    assert audio.shape[0] == 1
    assert model.generate_codes("a calm piano piece", seconds=0.2).shape[0] == 1
    assert next(iter(model.stream("a calm piano piece", seconds=0.2, chunk_seconds=0.1))).audio.shape[0] == 1
    with pytest.raises(SsmusicError, match="--seconds"):
        model.generate("x", seconds=float("inf"))


@pytest.mark.parametrize("seconds", [0, -2, float("nan"), 1e9, "10", True])
def test_bad_durations_are_refused(seconds):
    with pytest.raises(SsmusicError, match="--seconds"):
        checks.check_seconds(seconds)


def test_devices(monkeypatch):
    assert checks.check_device("cpu") == "cpu" and checks.check_device("meta") == "meta"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SsmusicError, match="--device cuda: no CUDA device here") as caught:
        checks.check_device("cuda")
    assert "\n" not in str(caught.value) and "--device cpu" in str(caught.value)
    with pytest.raises(SsmusicError, match="expected cpu or cuda"):
        checks.check_device("banana")


def test_the_api_checks_the_device_before_loading(monkeypatch, no_model_loads):
    from ssmusic.pipeline import TextToMusic

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SsmusicError, match="no CUDA device"):
        TextToMusic.from_pretrained(device="cuda")


@pytest.mark.parametrize("flags,message", [
    (["--device", "cuda"], "--device cuda: no CUDA device here"),
    (["--seconds", "0"], "--seconds: expected a positive duration up to 3600 s, got 0"),
    (["--seconds", "nan"], "--seconds: expected a positive duration"),
    (["--seconds", "99999"], "up to 3600 s, got 99999"),
    (["--cfg", "-1"], "--cfg"),
    (["--threads", "-1"], "--threads"),
])
def test_cli_refuses_before_loading(tmp_path, capsys, monkeypatch, no_model_loads, flags, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["generate", "a waltz", "-o", str(tmp_path / "x.wav"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.wav").exists()


def test_an_unwritable_output_is_refused_before_loading(tmp_path, capsys, no_model_loads):
    (tmp_path / "a_file").write_text("not a folder")
    assert main(["generate", "a waltz", "-o", str(tmp_path / "a_file" / "sub" / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert "is not a directory" in err and err.count("\n") == 1
    assert main(["generate", "a waltz", "-o", str(tmp_path / "a_file")]) == 2  # a directory of outputs
    (tmp_path / "dir.wav").mkdir()
    assert main(["generate", "a waltz", "-o", str(tmp_path / "dir.wav")]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_a_read_only_folder_is_refused_before_loading(tmp_path, capsys, no_model_loads):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user writes into read-only folders (root)")
        assert main(["generate", "a waltz", "-o", str(locked / "new" / "x.wav")]) == 2
        assert "cannot write to" in capsys.readouterr().err
    finally:
        locked.chmod(0o755)


def test_a_failed_write_after_generation_keeps_the_audio(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from ssmusic.io import audio

    real = audio.write_wav
    target = tmp_path / "out"

    def disk_full(path, *args, **kwargs):  # the planned folder fails only once the work is done
        if str(path).startswith(str(target)):
            raise OSError(28, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(audio, "write_wav", disk_full)
    code = main(["generate", "a tone", "another tone", "--seconds", "0.2", "--seed", "1", "-o", str(target),
                 "--checkpoint", str(tiny_model_dir)])
    last = capsys.readouterr().err.strip().splitlines()[-1]  # above it: progress bars of the loading
    assert code == 2 and last.startswith("ssmusic generate: error:") and "No space left on device" in last
    saved = last.rsplit(" in ", 1)[1].split(" instead")[0]
    names = sorted(p.name for p in os.scandir(saved))
    shutil.rmtree(saved)
    assert names == ["00_a-tone.json", "00_a-tone.wav", "01_another-tone.json", "01_another-tone.wav"]
