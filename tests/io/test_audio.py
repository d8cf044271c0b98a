import numpy as np
import pytest
import soundfile
import torch

from ssmusic.io.audio import read_audio, resample, write_wav
from ssmusic.errors import SsmusicError


def test_write_read_round_trip_and_resample(tmp_path):
    t = torch.arange(16000) / 16000
    wav = torch.stack([0.5 * torch.sin(2 * torch.pi * 440 * t), 0.25 * torch.sin(2 * torch.pi * 220 * t)])
    write_wav(tmp_path / "a.wav", wav, 16000)
    back, rate = read_audio(tmp_path / "a.wav")
    assert rate == 16000 and back.shape == (2, 16000)
    assert torch.allclose(back, wav, atol=1e-4)
    mono, rate = read_audio(tmp_path / "a.wav", sample_rate=8000, mono=True)
    assert rate == 8000 and mono.shape == (1, 8000)
    assert resample(wav, 16000, 24000).shape == (2, 24000)
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_flac_and_ogg_are_read(tmp_path):
    data = (0.1 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
    for ext in ("flac", "ogg"):
        soundfile.write(tmp_path / f"x.{ext}", data, 8000)
        wav, rate = read_audio(tmp_path / f"x.{ext}")
        assert rate == 8000 and wav.shape[0] == 1 and abs(wav.shape[1] - 4000) < 100


def test_unreadable_files_give_one_line_errors(tmp_path):
    with pytest.raises(SsmusicError, match="not found"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    with pytest.raises(SsmusicError, match="bad.wav: cannot read audio") as info:
        read_audio(tmp_path / "bad.wav")
    assert "\n" not in str(info.value)
