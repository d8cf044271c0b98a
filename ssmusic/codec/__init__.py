"""Audio <-> tokens: the codec protocol and loader (codecs), the shipped transform codec (transform,
mel) and its learned decoder (vocoder), and decoding tokens to audio chunk by chunk while they are
generated (stream). Kept free of torch: the CLI declares --decoder from here."""

from __future__ import annotations

# How the mel codec turns codes into audio: its learned decoder or Griffin-Lim (no weights, phasey)
DECODERS = ("vocoder", "griffin-lim")


def add_decoder_argument(parser) -> None:
    """--decoder for commands that decode the mel codec's tokens (None = the codec's default)."""
    parser.add_argument("--decoder", choices=DECODERS, default=None,
                        help="how the mel codec decodes: vocoder (its learned decoder, the shipped codec's "
                             "default) or griffin-lim (mel inversion + Griffin-Lim, as before)")
