"""The settings of `ssmusic codec train-decoder` (ssmusic.training.vocoder), kept free of torch so
the CLI parses and prints --help without importing it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from ssmusic.errors import SsmusicError


@dataclass
class DecoderTrainConfig:
    demo: str | None = None
    real: bool = True
    corpus: str | None = None  # where the encoded corpus files go (default: the run directory); runs may share it
    steps: int = 6000
    batch_size: int = 8
    segment_frames: int = 64
    lr: float = 5e-4
    warmup_steps: int = 200
    weight_decay: float = 0.01
    k_first_last: float = 0.25  # probability of k = 1 and of k = K each; the rest uniform in between
    mel_weight: float = 1.0
    loss_sizes: tuple = (384, 768, 1536)  # the STFT loss's n_fft (hop n/4)
    seed: int = 0
    threads: int = 1
    eval_every: int = 500
    eval_segments: int = 12  # per pool, at k = 1 and k = K
    eval_seconds: float = 5.0
    checkpoint_every: int = 100
    model: dict = field(default_factory=dict)  # VocoderConfig fields
    init: str | None = None  # start from this decoder (a checkpoint directory) instead of a fresh one


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", default=None, metavar="DIR", help="a demo dataset (its train split; valid for checks)")
    parser.add_argument("--no-real", action="store_true", help="without the Debian-packaged real recordings")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (resumes when it exists)")
    parser.add_argument("--install", default=None, metavar="CODEC_DIR",
                        help="when done, put the decoder beside CODEC_DIR's codebooks (float16; the shipped codec: "
                             "ssmusic/assets/codec)")
    parser.add_argument("--make-default", action="store_true", help="with --install: and make it the codec's default decoder")
    parser.add_argument("--init", default=None, metavar="CHECKPOINT",
                        help="start from this decoder (another run's checkpoint/) under this run's schedule")
    parser.add_argument("--corpus", default=None, metavar="DIR", help="where the encoded corpus is kept (default RUN_DIR; "
                        "runs on the same data can share one)")
    for name in ("steps", "batch_size", "segment_frames", "lr", "warmup_steps", "seed", "threads", "eval_every",
                 "checkpoint_every"):
        default = getattr(DecoderTrainConfig, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default,
                            help=f"default {default}")
    parser.add_argument("--loss-sizes", default="384,768,1536", help="the STFT loss's n_fft values (hop n/4; default "
                        "384,768,1536: not the evaluation's 512/1024/2048)")
    parser.add_argument("--model", action="append", default=[], metavar="FIELD=VALUE",
                        help="a VocoderConfig field, e.g. --model dim=192 (repeatable)")


def config_from_args(args: argparse.Namespace) -> DecoderTrainConfig:
    from dataclasses import fields

    from ssmusic.codec.vocoder import VocoderConfig

    kinds = {f.name: f.type for f in fields(VocoderConfig)}
    model = {}
    for item in args.model:
        name, _, value = item.partition("=")
        kind = kinds.get(name)
        if not value or kind is None:
            raise SsmusicError(f"--model {item!r}: expected FIELD=VALUE with a VocoderConfig field ({sorted(kinds)})")
        model[name] = value.lower() in ("1", "true", "yes") if kind in (bool, "bool") else (
            float(value) if kind in (float, "float") else int(value))
    return DecoderTrainConfig(demo=args.demo, real=not args.no_real, corpus=args.corpus, steps=args.steps,
                              batch_size=args.batch_size, segment_frames=args.segment_frames, lr=args.lr,
                              warmup_steps=args.warmup_steps,
                              seed=args.seed, threads=args.threads, eval_every=args.eval_every,
                              checkpoint_every=args.checkpoint_every, model=model,
                              loss_sizes=tuple(int(n) for n in args.loss_sizes.split(",")), init=args.init)
