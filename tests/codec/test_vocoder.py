"""The learned decoder: shapes, determinism, save/load, its reach, and streaming equality."""

import pytest
import torch

from ssmusic.codec.codecs import Codec, load_codec
from ssmusic.codec.stream import TOLERANCE, Context, decode_in_chunks, default_tolerance, measure_context
from ssmusic.codec.transform import TransformCodec
from ssmusic.codec.vocoder import Vocoder, VocoderConfig, frame_rotation
from ssmusic.errors import SsmusicError

TINY = dict(dim=16, intermediate=32, layers=2, kernel=5, lookahead=1)


def tiny_vocoder(seed: int = 0, **kw) -> Vocoder:
    torch.manual_seed(seed)
    return Vocoder(VocoderConfig(**{**TINY, **kw})).eval()


def tiny_vocoder_codec(tiny_codec_dir: str, **kw) -> Codec:
    """The tiny test codec's codebooks with a randomly initialised tiny learned decoder."""
    from dataclasses import replace

    base = TransformCodec.load(tiny_codec_dir)
    vocoder = tiny_vocoder(**kw)
    with torch.no_grad():  # a random head at full scale, so the phases and magnitudes vary a lot,
        vocoder.head.weight.normal_(0, 0.5)  # and quiet (streamed audio is clipped to [-1, 1])
        vocoder.prior.bias.fill_(-5.0)
    return Codec(TransformCodec(replace(base.config, decoder="vocoder"), base.codebooks, vocoder=vocoder), "tiny")


def test_shapes_and_determinism():
    model = tiny_vocoder()
    mel = torch.randn(2, 20, 128) - 4
    with torch.no_grad():
        audio = model(mel)
        again = model(mel)
    assert audio.shape == (2, 20 * 512) and torch.isfinite(audio).all()
    assert torch.equal(audio, again)
    with torch.no_grad():
        assert torch.equal(tiny_vocoder()(mel), audio)  # the same seed builds the same decoder
        assert not torch.equal(tiny_vocoder(seed=1)(mel), audio)


def test_frame_rotation_is_the_frame_origin_shift():
    """A sinusoid at bin k: its STFT phase at frame t exceeds frame 0's by 2 pi k hop t / n_fft."""
    n_fft, hop, k = 2048, 512, 37
    t = torch.arange(12 * hop, dtype=torch.float64)
    spec = torch.stft(torch.cos(2 * torch.pi * k * t / n_fft), n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64),
                      return_complex=True)[k]
    measured = torch.angle(spec[4:9] / spec[4])
    expected = frame_rotation(5, 4, n_fft, hop, torch.device("cpu"))[:, k] - frame_rotation(1, 4, n_fft, hop, torch.device("cpu"))[0, k]
    assert torch.allclose(torch.polar(torch.ones(5), measured.float()), torch.polar(torch.ones(5), expected), atol=1e-4)


def test_window_with_the_reach_equals_the_whole_and_one_frame_less_does_not():
    """With its reach on each side, a window decoded at its absolute position equals the one-shot
    decode; a frame less on either side does not (the reach is exact, not padded)."""
    model = tiny_vocoder()
    with torch.no_grad():  # full-scale residual branches and head: a fresh decoder's edge taps weigh ~1e-6
        for block in model.blocks:
            block.gamma.fill_(1.0)
        model.head.weight.normal_(0, 0.5)
    left, right = model.config.reach
    assert (left, right) == (model.config.context[0] + 1, model.config.context[1] + 2)  # n_fft = 4 hop
    mel = torch.randn(1, 60, 128) - 4
    start, stop = 25, 35

    def error(left: int, right: int, shift: int = 0) -> float:
        with torch.no_grad():
            whole = model(mel)
            window = model(mel[:, start - left:stop + right], first_frame=start - left + shift)
        part = window[:, left * 512:(left + stop - start) * 512]
        return float((part - whole[:, start * 512:stop * 512]).abs().max() / whole.abs().max())

    assert error(left, right) <= 1e-5
    assert error(left - 1, right) > 1e-4 and error(left, right - 1) > 1e-4
    assert error(left, right, shift=1) > 1e-2  # the absolute position matters


def test_stream_equals_one_shot(tiny_codec_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SSMUSIC_CACHE_DIR", str(tmp_path / "cache"))
    codec = tiny_vocoder_codec(tiny_codec_dir)
    assert default_tolerance(codec) == TOLERANCE
    context = measure_context(codec, limit=16, span=8)
    assert context == Context(*codec.backend.vocoder.config.reach)  # its reach, not a probe's estimate
    codes = torch.randint(0, codec.card, (2, codec.n_codebooks, 90))
    for k in (1, codec.n_codebooks):
        whole = codec.decode(codes[:, :k])
        streamed = torch.cat(decode_in_chunks(codec, codes[:, :k], 7, context), dim=-1)
        assert streamed.shape == whole.shape
        assert (streamed - whole).abs().max() <= TOLERANCE * whole.abs().max()
    short = torch.cat(decode_in_chunks(codec, codes, 7, Context(0, 0)), dim=-1)  # without context: seams
    assert (short - codec.decode(codes)).abs().max() > TOLERANCE * codec.decode(codes).abs().max()


def test_save_load_round_trip(tmp_path):
    model = tiny_vocoder()
    mel = torch.randn(1, 30, 128) - 4
    model.save(tmp_path, dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(Vocoder.load(tmp_path)(mel), model(mel))
    model.save(tmp_path / "half")  # float16 on disk, float32 compute
    loaded = Vocoder.load(tmp_path / "half")
    assert next(loaded.parameters()).dtype == torch.float32
    with torch.no_grad():
        reference = model(mel)
        assert (loaded(mel) - reference).abs().max() <= 1e-2 * reference.abs().max()


def test_load_refuses_a_missing_or_mismatched_decoder(tmp_path, tiny_codec_dir):
    with pytest.raises(SsmusicError, match="vocoder.json"):
        Vocoder.load(tmp_path)
    tiny_vocoder().save(tmp_path)
    (tmp_path / "vocoder.json").write_text((tmp_path / "vocoder.json").read_text().replace('"dim": 16', '"dim": 24'))
    with pytest.raises(SsmusicError, match="shape"):
        Vocoder.load(tmp_path)
    with pytest.raises(SsmusicError, match="vocoder.json"):  # the tiny codec ships no learned decoder
        load_codec(tiny_codec_dir, decoder="vocoder")
    with pytest.raises(SsmusicError, match="decoder"):
        load_codec(tiny_codec_dir, decoder="wavenet")
    with pytest.raises(SsmusicError, match="lookahead"):
        VocoderConfig(kernel=3, lookahead=3)


def test_codec_directory_round_trip_keeps_the_decoder(tmp_path, tiny_codec_dir):
    codec = tiny_vocoder_codec(tiny_codec_dir)
    codec.backend.save(tmp_path)
    loaded = load_codec(str(tmp_path))
    assert loaded.backend.vocoder is not None and loaded.backend.config.decoder == "vocoder"
    codes = torch.randint(0, codec.card, (1, codec.n_codebooks, 20))
    assert (loaded.decode(codes) - codec.decode(codes)).abs().max() <= 1e-2 * codec.decode(codes).abs().max()
    griffin_lim = load_codec(str(tmp_path), decoder="griffin-lim")
    assert griffin_lim.backend.vocoder is None and default_tolerance(griffin_lim) > TOLERANCE
    assert griffin_lim.decode(codes).shape == loaded.decode(codes).shape
