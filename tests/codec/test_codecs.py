import pytest
import torch

from ssmusic.codec.codecs import load_codec
from ssmusic.errors import SsmusicError
from ssmusic.codec.transform import TransformCodec, TransformCodecConfig, fit_codec


def tones(seconds=2.0, rate=22050, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    out = []
    for _ in range(4):
        freqs = 110 * 2 ** (torch.randint(0, 36, (3,), generator=g) / 12)
        out.append(sum(0.2 * torch.sin(2 * torch.pi * f * t) for f in freqs))
    return out


@pytest.mark.parametrize("transform", ["mel", "mdct"])
def test_transform_codec_fit_encode_decode(tmp_path, transform):
    config = TransformCodecConfig(transform=transform, card=16, n_codebooks=3, griffin_lim_iters=4)
    codec = fit_codec(tones(), config, iters=3, seed=1, progress=False)
    again = fit_codec(tones(), config, iters=3, seed=1, progress=False)
    assert torch.equal(codec.codebooks, again.codebooks)  # deterministic under a seed
    codec.save(tmp_path / "codec")
    wrapped = load_codec(str(tmp_path / "codec"))
    assert wrapped.card == 16 and wrapped.n_codebooks == 3 and abs(wrapped.frame_rate - 22050 / 512) < 1e-6
    wav = torch.stack(tones(seconds=1.0, seed=5))[:2, None]  # [B, C, N]
    codes = wrapped.encode(wav, 22050)
    assert codes.shape == (2, 3, 44) and codes.dtype == torch.long and codes.max() < 16
    for k in (1, 3):
        audio = wrapped.decode(codes[:, :k])
        assert audio.shape == (2, 1, 44 * 512) and torch.isfinite(audio).all() and audio.abs().max() > 0
    # more codebooks describe the signal better
    feats = codec.features(wav[:, 0])
    err = [(codec.dequantize(codes[:, :k]) - feats).pow(2).mean() for k in (1, 2, 3)]
    assert err[0] > err[1] > err[2]


def test_mdct_is_perfect_reconstruction_without_quantization():
    codec = TransformCodec(TransformCodecConfig(transform="mdct"), torch.zeros(1, 4, 512))
    wav = torch.stack(tones(seconds=0.5))[:1]
    back = codec.synthesize(codec.features(wav), wav.shape[-1])
    body = slice(0, wav.shape[-1] - 512)  # the last frame has no overlapping partner
    assert (back - wav)[:, body].pow(2).mean() / wav.pow(2).mean() < 1e-4


def test_encode_resamples_and_downmixes():
    config = TransformCodecConfig(card=8, n_codebooks=1, griffin_lim_iters=2)
    codec = fit_codec(tones(), config, iters=1, progress=False)
    from ssmusic.codec.codecs import Codec

    wrapped = Codec(codec, "test")
    stereo_44k = torch.randn(1, 2, 44100) * 0.1
    assert wrapped.encode(stereo_44k, 44100).shape == (1, 1, 44)
    with pytest.raises(SsmusicError, match="codes"):
        wrapped.decode(torch.zeros(1, 2, 5, dtype=torch.long))


def test_tiny_dac_through_transformers(tmp_path):
    from transformers import DacConfig, DacModel

    config = DacConfig(encoder_hidden_size=8, downsampling_ratios=[2, 4], decoder_hidden_size=16, n_codebooks=3,
                       codebook_size=32, codebook_dim=4, hidden_size=32, sampling_rate=8000)
    DacModel(config).save_pretrained(tmp_path)
    codec = load_codec(str(tmp_path))
    assert (codec.sample_rate, codec.frame_rate, codec.card, codec.n_codebooks) == (8000, 1000.0, 32, 3)
    codes = codec.encode(torch.randn(2, 1, 2000) * 0.1, 16000)  # resampled to 8 kHz first
    assert codes.shape == (2, 3, 125)
    assert codec.decode(codes).shape[:2] == (2, 1)
    assert codec.decode(codes[:, :1]).shape == codec.decode(codes).shape  # first codebook only


def test_tiny_encodec_through_transformers(tmp_path):
    from transformers import EncodecConfig, EncodecModel

    config = EncodecConfig(target_bandwidths=[20.0, 40.0], sampling_rate=8000, audio_channels=1, num_filters=4,
                           upsampling_ratios=[4, 2], codebook_size=32, hidden_size=16, num_lstm_layers=1,
                           codebook_dim=16)
    EncodecModel(config).save_pretrained(tmp_path)
    codec = load_codec(str(tmp_path))
    codes = codec.encode(torch.randn(2, 1000) * 0.1, 8000)
    assert codes.shape == (2, codec.n_codebooks, 125) and codec.n_codebooks == 8
    assert codec.decode(codes[:, :2]).shape == (2, 1, 1000)


def test_missing_hub_weights_say_what_to_download(tmp_path):
    with pytest.raises(SsmusicError, match="huggingface-cli download descript/dac_44khz"):
        load_codec("descript/dac_44khz")
    (tmp_path / "junk").mkdir()
    with pytest.raises(SsmusicError, match="not a codec directory"):
        load_codec(str(tmp_path / "junk"))
