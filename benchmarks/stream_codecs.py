"""Codecs for the streaming benchmarks: the shipped mel codec with its learned decoder and with
Griffin-Lim, and DAC-44k / EnCodec-32k
with their released architectures and random weights (their weights cannot be downloaded here).
Random weights do not change a convolutional decoder's reach (its receptive field is the
architecture's); EnCodec's LSTM memory does depend on its weights, so its number is for these."""

from __future__ import annotations

import torch

from ssmusic.codec.codecs import Codec, HFCodec, load_codec


def dac_44k() -> Codec:
    from transformers import DacConfig, DacModel

    torch.manual_seed(0)
    # DacConfig() alone is the 16 kHz model's sample rate (31.25 frames/s); DAC-44k has the same layers at 44.1 kHz
    return Codec(HFCodec(DacModel(DacConfig(sampling_rate=44100)).eval()), "dac_44khz-architecture-random-weights")


def encodec_32k() -> Codec:
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(0)
    config = EncodecConfig(sampling_rate=32000, audio_channels=1, upsampling_ratios=[8, 5, 4, 4],
                           target_bandwidths=[2.2], codebook_size=2048, num_filters=64, hidden_size=128,
                           norm_type="weight_norm", normalize=False, use_causal_conv=False)
    return Codec(HFCodec(EncodecModel(config).eval()), "encodec_32khz-architecture-random-weights")


CODECS = {"vocoder": lambda: load_codec(decoder="vocoder"), "griffin-lim": lambda: load_codec(decoder="griffin-lim"),
          "dac44k": dac_44k, "encodec32k": encodec_32k}
SHIPPED = ("vocoder", "griffin-lim")  # the shipped codec's decoders
