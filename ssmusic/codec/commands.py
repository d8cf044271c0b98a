"""The `ssmusic codec` command's arguments (kept free of torch, as the rest of the CLI: the
commands import their modules when they run)."""

from __future__ import annotations

import argparse


def register_codec(sub: argparse._SubParsersAction) -> None:
    """`ssmusic codec fit` and `ssmusic codec train-decoder`."""

    def run(args: argparse.Namespace) -> int:
        from ssmusic.codec.transform import run_fit

        return run_fit(args)

    help = "fit the offline transform codec (k-means residual VQ) on audio, or train its learned decoder"
    parser = sub.add_parser("codec", help=help, description=help)
    parser.set_defaults(run=run, command="codec")
    codec_sub = parser.add_subparsers(title="codec commands", metavar="CODEC_COMMAND", required=True)
    fit = codec_sub.add_parser("fit", help="fit codebooks on AUDIO_DIR (a demo dataset uses its train split)")
    fit.set_defaults(run=run, command="codec fit")
    fit.add_argument("audio_dir", metavar="AUDIO_DIR")
    fit.add_argument("--out", required=True, metavar="DIR", help="codec directory to write")
    fit.add_argument("--transform", choices=["mel", "mdct"], default="mel")
    fit.add_argument("--codebooks", type=int, default=8)
    fit.add_argument("--card", type=int, default=1024)
    fit.add_argument("--iters", type=int, default=20, help="k-means iterations per codebook")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--name", default=None, help="name recorded in codec.json")

    def run_train(args: argparse.Namespace) -> int:
        from ssmusic.training.vocoder import run as train_decoder

        return train_decoder(args)

    from ssmusic.training.vocoder_config import add_arguments

    train = codec_sub.add_parser("train-decoder", help="train the mel codec's learned decoder (CPU, resumable)")
    train.set_defaults(run=run_train, command="codec train-decoder")
    add_arguments(train)
