import json

import numpy as np
import pytest
import soundfile
import torch

from ssmusic.io.audio import write_wav
from ssmusic.cli import main
from ssmusic.io.wavstream import GrowingWav


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SSMUSIC_CACHE_DIR", str(tmp_path / "cache"))


def test_growing_wav_is_valid_at_every_moment_and_equals_write_wav(tmp_path):
    audio = torch.rand(1, 9000) * 2.2 - 1.1  # beyond [-1, 1] too: clipped alike
    path = tmp_path / "grow.wav"
    path.write_bytes(b"an older file")
    wav = GrowingWav(path, 22050)
    assert soundfile.read(path)[0].shape == (0,)  # a valid empty WAV from the start
    for start in range(0, 9000, 2500):
        wav.append(audio[0, start:start + 2500])
        data, rate = soundfile.read(path)  # a reader mid-way sees every sample written so far
        assert rate == 22050 and len(data) == min(9000, start + 2500)
    wav.close()
    write_wav(tmp_path / "whole.wav", audio, 22050)
    assert path.read_bytes() == (tmp_path / "whole.wav").read_bytes()


def test_generate_stream_matches_one_shot_and_reports_timing(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from ssmusic.pipeline import TextToMusic
    from ssmusic.codec.stream import default_tolerance

    out = tmp_path / "streamed.wav"
    seen = []
    original = TextToMusic.stream

    def watching(self, *args, **kwargs):  # read the file between chunks, as a player would
        for chunk in original(self, *args, **kwargs):
            seen.append(len(soundfile.read(out)[0]))
            yield chunk

    monkeypatch.setattr(TextToMusic, "stream", watching)
    args = ["a tone at 220 Hz", "--seconds", "1.0", "--seed", "3", "--checkpoint", str(tiny_model_dir)]
    assert main(["generate", *args, "-o", str(out), "--stream", "--chunk-seconds", "0.2"]) == 0
    assert "time to first audio" in capsys.readouterr().err
    assert len(seen) > 2 and seen == sorted(seen) and seen[0] < seen[-1]
    assert main(["generate", *args, "-o", str(tmp_path / "whole.wav")]) == 0
    streamed, rate = soundfile.read(out, dtype="int16")
    whole, _ = soundfile.read(tmp_path / "whole.wav", dtype="int16")
    assert streamed.shape == whole.shape and seen[-1] <= len(whole)
    codec = TextToMusic.from_pretrained(tiny_model_dir).codec
    # within the stated tolerance of the clip's peak, plus one step of 16-bit rounding
    limit = default_tolerance(codec) * np.abs(whole).max() + 1
    assert np.abs(streamed.astype(int) - whole).max() <= limit
    sidecar = json.loads(out.with_suffix(".json").read_text())
    timing = sidecar["stream"]
    assert timing["chunks"] > 2 and timing["time_to_first_audio_s"] <= timing["total_s"]
    assert timing["real_time_factor"] > 0 and abs(timing["audio_s"] - len(whole) / rate) < 1e-3


def test_generate_stream_refuses_a_bad_chunk(tmp_path, tiny_model_dir, capsys):
    assert main(["generate", "x", "--stream", "--chunk-seconds", "0", "-o", str(tmp_path / "x.wav"),
                 "--checkpoint", str(tiny_model_dir)]) == 2
    assert "--chunk-seconds" in capsys.readouterr().err and not (tmp_path / "x.wav").exists()
