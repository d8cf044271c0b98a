import json

import numpy as np
import pytest
import soundfile
import torch

from ssmusic.io.audio import write_wav
from ssmusic.cli import main
from ssmusic.io.wavstream import GrowingWav, partial_path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SSMUSIC_CACHE_DIR", str(tmp_path / "cache"))


def test_growing_wav_is_valid_at_every_moment_and_equals_write_wav(tmp_path):
    audio = torch.rand(1, 9000) * 2.2 - 1.1  # beyond [-1, 1] too: clipped alike
    path = tmp_path / "grow.wav"
    path.write_bytes(b"an older file")
    wav = GrowingWav(path, 22050)
    assert wav.partial == partial_path(path) == tmp_path / "grow.partial.wav"
    assert soundfile.read(wav.partial)[0].shape == (0,)  # a valid empty WAV from the start
    for start in range(0, 9000, 2500):
        wav.append(audio[0, start:start + 2500])
        data, rate = soundfile.read(wav.partial)  # a reader mid-way sees every sample written so far
        assert rate == 22050 and len(data) == min(9000, start + 2500)
        assert path.read_bytes() == b"an older file"  # replaced only when complete
    wav.finish()
    write_wav(tmp_path / "whole.wav", audio, 22050)
    assert path.read_bytes() == (tmp_path / "whole.wav").read_bytes() and not wav.partial.exists()


@pytest.mark.parametrize("failure", [RuntimeError("codec failed"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_a_stream_that_stops_leaves_an_existing_file_as_it_was(tmp_path, tiny_model_dir, monkeypatch, failure):
    from ssmusic.pipeline import TextToMusic

    out = tmp_path / "mine.wav"
    write_wav(out, torch.full((1, 100), 0.25), 22050)
    before = out.read_bytes()
    original = TextToMusic.stream

    def stopping(self, *args, **kwargs):  # two chunks, then the failure
        for index, chunk in enumerate(original(self, *args, **kwargs)):
            if index == 2:
                raise failure
            yield chunk

    monkeypatch.setattr(TextToMusic, "stream", stopping)
    args = ["a tone", "--seconds", "1.0", "--seed", "3", "--checkpoint", str(tiny_model_dir), "-o", str(out),
            "--stream", "--chunk-seconds", "0.2"]
    if isinstance(failure, KeyboardInterrupt):
        assert main(["generate", *args]) == 130
    else:
        with pytest.raises(RuntimeError, match="codec failed"):
            main(["generate", *args])
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob("mine*")) == ["mine.wav"]  # no partial file left


def test_generate_stream_matches_one_shot_and_reports_timing(tmp_path, tiny_model_dir, capsys, monkeypatch):
    from ssmusic.pipeline import TextToMusic
    from ssmusic.codec.stream import default_tolerance

    out = tmp_path / "streamed.wav"
    seen = []
    original = TextToMusic.stream

    def watching(self, *args, **kwargs):  # read the growing file between chunks, as a player would
        for chunk in original(self, *args, **kwargs):
            seen.append(len(soundfile.read(partial_path(out))[0]))
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
    assert not partial_path(out).exists()


def test_generate_stream_refuses_a_bad_chunk(tmp_path, tiny_model_dir, capsys):
    assert main(["generate", "x", "--stream", "--chunk-seconds", "0", "-o", str(tmp_path / "x.wav"),
                 "--checkpoint", str(tiny_model_dir)]) == 2
    assert "--chunk-seconds" in capsys.readouterr().err and not (tmp_path / "x.wav").exists()


def test_a_file_already_named_like_the_partial_one_is_left_as_it_was(tmp_path):
    """The user's own grow.partial.wav is not overwritten: the stream grows at grow.partial-2.wav."""
    path = tmp_path / "grow.wav"
    theirs = partial_path(path)
    theirs.write_bytes(b"someone's file")
    wav = GrowingWav(path, 22050)
    assert wav.partial == tmp_path / "grow.partial-2.wav"
    wav.append(torch.zeros(100))
    wav.finish()
    assert theirs.read_bytes() == b"someone's file" and len(soundfile.read(path)[0]) == 100
    assert not (tmp_path / "grow.partial-2.wav").exists()
