"""Streaming equals one-shot generation + decoding, for every codec family and backbone."""

import pytest
import torch

from ssmusic.codec.codecs import Codec, HFCodec, load_codec
from ssmusic.config import LMConfig, PipelineConfig
from ssmusic.errors import SsmusicError
from ssmusic.model.lm import MusicLM
from ssmusic.pipeline import TextToMusic
from ssmusic.codec.stream import (Context, StreamDecoder, boundary_jumps, decode_in_chunks, default_tolerance,
                                  measure_context, probe_audio, stream_context)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SSMUSIC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def text_encoder():
    from ssmusic.text import load_text_encoder

    return load_text_encoder()


def tiny_dac() -> Codec:
    from transformers import DacConfig, DacModel

    torch.manual_seed(0)
    config = DacConfig(encoder_hidden_size=8, downsampling_ratios=[2, 4], decoder_hidden_size=16, n_codebooks=3,
                       codebook_size=32, codebook_dim=4, hidden_size=32, sampling_rate=8000)
    return Codec(HFCodec(DacModel(config)), "tiny-dac")


def tiny_encodec() -> Codec:
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(0)
    config = EncodecConfig(target_bandwidths=[20.0, 40.0], sampling_rate=8000, audio_channels=1, num_filters=4,
                           upsampling_ratios=[4, 2], codebook_size=32, hidden_size=16, num_lstm_layers=1,
                           codebook_dim=16)
    return Codec(HFCodec(EncodecModel(config)), "tiny-encodec")


def codec_of(family: str, tiny_codec_dir: str) -> Codec:
    return {"griffin-lim": lambda: load_codec(tiny_codec_dir), "dac": tiny_dac, "encodec": tiny_encodec}[family]()


def pipeline(codec: Codec, text_encoder, backbone: str = "simba", conditioning: str = "prefix",
             n_codebooks: int = 2) -> TextToMusic:
    torch.manual_seed(1)
    lm = MusicLM(LMConfig(backbone=backbone, conditioning=conditioning, d_model=32, n_layers=2, d_state=8,
                          headdim=8, n_heads=4, card=codec.card, n_codebooks=n_codebooks,
                          text_dim=text_encoder.dim, dropout=0.0))
    config = PipelineConfig(codec=codec.name, text_encoder=text_encoder.name, sample_rate=codec.sample_rate,
                            frame_rate=codec.frame_rate, card=codec.card, n_codebooks=n_codebooks,
                            text_dim=text_encoder.dim, clip_seconds=1000 / codec.frame_rate, top_k=8)
    return TextToMusic(lm, codec, text_encoder, config)


def check_against_one_shot(model: TextToMusic, seconds: float, chunk_seconds: float, **kw) -> list:
    prompts = ["a calm piano piece", "a fast fiddle tune"]
    chunks = list(model.stream(prompts, seconds=seconds, chunk_seconds=chunk_seconds, seed=3, **kw))
    assert len(chunks) > 2
    assert all(chunk.audio.shape[:2] == (2, 1) for chunk in chunks)
    codes = model.generate_codes(prompts, seconds=seconds, sampling=model.sampling(seed=3))
    assert torch.equal(chunks[-1].codes, codes)  # same seed, same codes as one-shot generation
    assert chunks[-1].frames_done == chunks[-1].frames_total == codes.shape[-1]
    streamed = torch.cat([chunk.audio for chunk in chunks], dim=-1)
    whole = model.decode(codes)
    assert streamed.shape == whole.shape
    tolerance = default_tolerance(model.codec)
    for row in range(2):
        peak = whole[row].abs().max()
        assert (streamed[row] - whole[row]).abs().max() <= tolerance * peak
        boundaries = torch.cumsum(torch.tensor([c.audio.shape[-1] for c in chunks]), 0)[:-1].tolist()
        jump, own = boundary_jumps(streamed[row, 0], boundaries)
        assert jump <= own + 2 * tolerance * peak  # no click at a seam beyond the clip's own steps
    return chunks


@pytest.mark.parametrize("family", ["griffin-lim", "dac", "encodec"])
def test_stream_matches_one_shot_for_every_codec_family(family, tiny_codec_dir, text_encoder):
    codec = codec_of(family, tiny_codec_dir)
    model = pipeline(codec, text_encoder, n_codebooks=min(2, codec.n_codebooks))
    frames = 60
    check_against_one_shot(model, seconds=frames / codec.frame_rate, chunk_seconds=7 / codec.frame_rate)


@pytest.mark.parametrize("backbone,conditioning", [("mamba", "cross"), ("transformer", "prefix"),
                                                   ("simba", "pooled")])
def test_stream_for_every_backbone(backbone, conditioning, tiny_codec_dir, text_encoder):
    model = pipeline(load_codec(tiny_codec_dir), text_encoder, backbone, conditioning)
    check_against_one_shot(model, seconds=1.0, chunk_seconds=0.2)


def test_stream_with_an_audio_prompt_starts_with_the_prompt(tiny_codec_dir, text_encoder):
    model = pipeline(load_codec(tiny_codec_dir), text_encoder)
    prompt = (0.3 * torch.sin(torch.arange(11025) / 22050 * 2 * torch.pi * 440))[None]
    chunks = list(model.stream(["go on"], seconds=0.5, chunk_seconds=0.1, seed=2, audio_prompt=(prompt, 22050)))
    audio, _ = model.generate(["go on"], seconds=0.5, seed=2, audio_prompt=(prompt, 22050))
    streamed = torch.cat([c.audio for c in chunks], -1)
    assert streamed.shape == audio.shape
    assert (streamed - audio).abs().max() <= default_tolerance(model.codec) * audio.abs().max()
    assert chunks[-1].codes.shape[-1] == round(0.5 * model.config.frame_rate)  # new frames only


def test_context_is_measured_and_cached(tiny_codec_dir, tmp_path):
    codec = load_codec(tiny_codec_dir)
    context = stream_context(codec)
    assert context.left > 0 and context.right > 0  # overlapping STFT frames reach both ways
    assert (tmp_path / "cache" / "stream_context.json").is_file()
    again = load_codec(tiny_codec_dir)
    assert stream_context(again) == context  # from the disk cache
    assert measure_context(tiny_dac()).right > 0
    # too little context is not equal: the measurement is what makes the stream exact
    codes = codec.encode(torch.randn(1, 22050) * 0.1, 22050)
    whole = codec.decode(codes)
    seamed = torch.cat(decode_in_chunks(codec, codes, 5, Context(0, 0)), -1)
    assert (seamed - whole).abs().max() > default_tolerance(codec) * whole.abs().max()


def test_the_shipped_codec_streams_without_measuring(monkeypatch):
    # its context ships with the package (assets/stream_context.json); this fails when the codec, the
    # tolerance or measure_context changes without that file being measured again
    import ssmusic.codec.stream as stream

    def measuring(*_):
        raise AssertionError("the shipped codec's context was measured, not read from SHIPPED_CONTEXTS")

    monkeypatch.setattr(stream, "measure_context", measuring)
    assert stream_context(load_codec(decoder="griffin-lim")) == Context(29, 29)
    monkeypatch.undo()  # the learned decoder (the default) needs no measuring: its reach is its context
    codec = load_codec()
    reach = Context(*codec.backend.vocoder.config.reach)
    assert stream_context(codec) == reach == Context(36, 9)
    # the shipped decoder streams as it decodes in one go (music-like codes: the probe signal, 3 s)
    codes = codec.encode(probe_audio(codec.sample_rate, 3.0, seed=3), codec.sample_rate)
    for k in (1, codec.n_codebooks):
        whole = codec.decode(codes[:, :k])
        streamed = torch.cat(decode_in_chunks(codec, codes[:, :k], 11, reach), -1)
        assert streamed.shape == whole.shape
        assert (streamed - whole).abs().max() <= default_tolerance(codec) * whole.abs().max()


def test_stream_decoder_holds_back_the_look_ahead(tiny_codec_dir):
    codec = load_codec(tiny_codec_dir)
    decoder = StreamDecoder(codec, Context(3, 4))
    codes = torch.randint(0, codec.card, (1, 1, 10))
    assert decoder.push(codes[..., :4]).shape[-1] == 0
    assert decoder.push(codes[..., :6]).shape[-1] == 2 * 512
    assert decoder.push(codes, final=True).shape[-1] == 8 * 512


def test_bad_chunk_seconds_is_a_clear_error(tiny_codec_dir, text_encoder):
    model = pipeline(load_codec(tiny_codec_dir), text_encoder)
    with pytest.raises(SsmusicError, match="chunk_seconds"):
        next(model.stream(["x"], seconds=1.0, chunk_seconds=0.0))
    with pytest.raises(SsmusicError, match="--seconds"):
        next(model.stream(["x"], seconds=-1.0))
