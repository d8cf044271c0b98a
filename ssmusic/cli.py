"""`ssmusic` command line: thin argparse subcommands over the Python API.

Each subcommand is declared here (so `--help` is fast and shows everything) and imports its
module only when it runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from ssmusic.codec import add_decoder_argument
from ssmusic.codec.commands import register_codec
from ssmusic.errors import SsmusicError
from ssmusic.threads import set_wait_policy

Handler = Callable[[argparse.Namespace], int | None]


def _add(sub: argparse._SubParsersAction, name: str, help: str, run: Handler,
         add_help: bool = True) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help, add_help=add_help)
    parser.set_defaults(run=run, command=name)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssmusic",
        description="Text-to-music generation with a state-space-model language model.",
    )
    parser.add_argument("--version", action="version", version=f"ssmusic {_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    # one function per command, defined below, in the order --help lists them
    for register in (_register_generate, _register_serve, _register_import_ssmttm, _register_data, _register_prepare,
                     _register_train, _register_compare, _register_evaluate, _register_codebooks,
                     _register_bench, register_codec, _register_export):
        register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ssmusic")
    except PackageNotFoundError:
        return "unknown"


def _register_generate(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from ssmusic.generate import run as generate

        return generate(args)

    from ssmusic.generate import add_arguments

    add_arguments(_add(sub, "generate", "generate music from text prompts into WAV files", run, add_help=False))


def _register_serve(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from ssmusic.serve.server import run as serve

        return serve(args)

    from ssmusic.serve.server import add_arguments

    add_arguments(_add(sub, "serve", "web demo: a local page that plays the music while it is generated", run))


def _register_import_ssmttm(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from ssmusic.training.ssmttm import run_cli

        return run_cli(args)

    parser = _add(sub, "import-ssmttm", "convert SSM-TTM's released prefix-SiMBA checkpoint (.ckpt + "
                  "config.json) into an ssmusic model directory", run)
    parser.add_argument("ckpt", metavar="CKPT", help="the released PyTorch Lightning .ckpt")
    parser.add_argument("--config", required=True, metavar="CONFIG_JSON", help="the released config.json")
    parser.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    parser.add_argument("--text-encoder", default="google/flan-t5-base", metavar="NAME_OR_DIR",
                        help="text encoder recorded in pipeline.json (default google/flan-t5-base)")
    parser.add_argument("--codec", default="descript/dac_44khz", metavar="NAME_OR_DIR",
                        help="codec recorded in pipeline.json (default descript/dac_44khz)")
    parser.add_argument("--t5-tokenizer", default=None, metavar="DIR", help="also export the checkpoint's own T5 "
                        "encoder to MODEL_DIR/text_encoder, with the tokenizer files (spiece.model ...) from DIR")
    parser.add_argument("--force", action="store_true", help="replace MODEL_DIR if it exists")


def _register_data(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        if args.version == 1:
            from ssmusic.data.demo import run as demo
        else:
            from ssmusic.data.demo_v2.build import run as demo
        return demo(args)

    parser = _add(sub, "data", "build datasets", run)
    data_sub = parser.add_subparsers(title="data commands", metavar="DATA_COMMAND", required=True)
    demo = data_sub.add_parser("demo", help="render the offline demo dataset (composed ensembles + FluidSynth)",
                               description="Version 2 (default): compose captioned clips of General MIDI ensembles "
                               "(melody, accompaniment, bass, drums on a share) and render them through FluidSynth. "
                               "Version 1: real compositions from music21's corpus, one instrument per clip. "
                               "Writes WAV clips + captions.csv, ready for `ssmusic prepare`.")
    demo.set_defaults(run=run, command="data demo")
    demo.add_argument("out_dir", metavar="OUT_DIR")
    demo.add_argument("--version", type=int, choices=(1, 2), default=2,
                      help="2: composed ensembles (default); 1: the first demo set (music21 corpus, solo instruments)")
    demo.add_argument("--clips", type=int, default=None, help="number of clips (default 3000; version 1: 600)")
    demo.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    demo.add_argument("--sample-rate", type=int, default=22050, help="default 22050 (the offline codec's)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--soundfont", default=None, help="a General MIDI .sf2 (default: FluidR3_GM)")
    demo.add_argument("--workers", type=int, default=2, help="rendering processes (default 2)")
    demo.add_argument("--instruments", default=None, metavar="LIST",
                      help="version 1 only: comma list of instruments to render with, e.g. trumpet,accordion,banjo "
                      "(default: the ten the first default model knows; an unknown name lists the others)")


def _register_prepare(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from ssmusic.data.prepare import run as prepare

        return prepare(args)

    parser = _add(sub, "prepare", "encode audio + captions into a token dataset (resumable)", run)
    parser.add_argument("audio_dir", metavar="AUDIO_DIR")
    parser.add_argument("--captions", default=None, metavar="FILE",
                        help="CSV with columns path,caption[,split] (paths relative to the CSV or AUDIO_DIR; "
                        "default AUDIO_DIR/captions.csv)")
    parser.add_argument("--caption", default=None, metavar="TEXT",
                        help="no captions file: this one caption for every file (text conditioning then carries little)")
    parser.add_argument("--captions-from-filenames", action="store_true",
                        help="no captions file: each file's name as its caption (e.g. 'trumpet_solo_3.wav' -> "
                        "'trumpet solo 3')")
    parser.add_argument("--out", required=True, metavar="DATA_DIR")
    parser.add_argument("--codec", default=None, help="codec name or directory (default: the offline ssmusic-mel-22k)")
    parser.add_argument("--text-encoder", default=None,
                        help="text encoder name or directory (default: the offline all-MiniLM-L6-v2)")
    parser.add_argument("--clip-seconds", type=float, default=30.0, help="clip length (default 30, as the paper)")
    parser.add_argument("--min-seconds", type=float, default=1.0,
                        help="a file shorter than one clip is kept as one padded clip if it has this much "
                             "audio (default 1, at most half a clip)")
    parser.add_argument("--max-clips-per-file", type=int, default=0, help="0 = all")
    parser.add_argument("--no-text-cache", action="store_true", help="do not store caption embeddings")


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=["tiny", "small", "paper"], default="small")
    parser.add_argument("--conditioning", choices=["prefix", "cross", "pooled"], default="prefix",
                        help="prefix, cross(-attention) or pooled (the caption's sentence vector only)")
    parser.add_argument("--channel-mixer", choices=["mlp", "einfft"], default="mlp", help="SiMBA only")
    parser.add_argument("--codebooks", type=int, default=1, help="model the first k codebooks (default 1)")
    parser.add_argument("--model", action="append", metavar="FIELD=VALUE",
                        help="override an LMConfig field, e.g. --model d_model=256 (repeatable)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 1000)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.0, help="default: 1e-3 tiny, 5e-4 small, 1e-4 paper "
                        "(fine-tuning: 1e-4, LoRA 1e-3)")
    parser.add_argument("--warmup-steps", type=int, default=500, help="capped at 10%% of the run (fine-tuning: "
                        "default 20)")
    parser.add_argument("--caption-dropout", type=float, default=0.1)
    parser.add_argument("--text-lr-scale", type=float, default=1.0,
                        help="learning-rate multiplier for the text projection and pooled caption vector")
    parser.add_argument("--tempo-clock", action="store_true",
                        help="give the model a beat clock: the BPM each caption names as a beat phase at every "
                             "frame (cross or pooled conditioning; with --init-from it adds one to a model without)")
    parser.add_argument("--key-embedding", action="store_true",
                        help="give the model the key each caption names (tonic and mode) as a learned vector at every "
                             "position (with --init-from it adds one to a model without)")
    parser.add_argument("--crop-frames", type=int, default=0, help="train on random windows of this many frames "
                        "and validate on consecutive windows of the same length (0 = whole clips)")
    parser.add_argument("--eval-whole-clips", action="store_true",
                        help="with --crop-frames: validate on whole clips instead of windows of the crop length")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-batches", type=int, default=0, help="0 = the whole valid split")
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: one per core)")
    parser.add_argument("--tensorboard", action="store_true")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="torch.compile forward and backward (default off, on CUDA too: not yet measured there; "
                             "on the CPU it repays its minutes only over thousands of steps); metrics.jsonl: compile_s")


def _given(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The dests the user set on the command line (so `--resume` can tell a flag typed with its
    default value from one left out): re-parse with every default suppressed."""
    saved = [(action, action.default) for action in parser._actions]
    defaults, parser._defaults = parser._defaults, {}
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        given, _ = parser.parse_known_args(argv)
    finally:
        for action, default in saved:
            action.default = default
        parser._defaults = defaults
    return set(vars(given))


def _register_train(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from ssmusic.training.train import run as train

        args.given = _given(parser, args.argv[1:])
        return train(args)

    parser = _add(sub, "train", "train a MusicLM on a prepared dataset (resumable; torchrun for DDP)", run)
    parser.add_argument("data_dir", metavar="DATA_DIR")
    parser.add_argument("--out", required=True, metavar="RUN_DIR")
    parser.add_argument("--backbone", choices=["simba", "mamba", "transformer"], default="simba")
    _train_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue RUN_DIR from its latest checkpoint")
    tune = parser.add_argument_group("fine-tuning")
    tune.add_argument("--init-from", default=None, metavar="MODEL",
                      help="start from a trained model: 'default' (the shipped one), a model directory or a "
                      "training run; its config defines the architecture. Defaults become --lr 1e-4 (LoRA "
                      "1e-3) and --warmup-steps 20")
    tune.add_argument("--lora-rank", type=int, default=0, metavar="R",
                      help="train LoRA adapters (PEFT) of rank R on the decoder's linear layers instead of every "
                      "weight; checkpoints hold the merged model and the adapters (adapter/)")
    tune.add_argument("--lora-alpha", type=float, default=0.0, help="LoRA scale numerator (default: the rank)")
    tune.add_argument("--freeze", default=None, metavar="PARTS",
                      help="full fine-tuning: keep these parts as they are (comma list of embeddings,text,heads)")
    parser.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)


def _register_compare(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from ssmusic.experiments.compare import run as compare

        return compare(args)

    parser = _add(sub, "compare", "train several variants at matched size, once per seed on the same data orders; "
                  "mean and spread of validation loss (and generation metrics) vs steps and wall time", run)
    parser.add_argument("data_dir", metavar="DATA_DIR")
    parser.add_argument("--out", required=True, metavar="OUT_DIR")
    parser.add_argument("--variants", "--backbones", dest="variants", default="simba,transformer",
                        help="comma list of BACKBONE[:CONDITIONING], e.g. simba:prefix,mamba:prefix,simba:cross,"
                        "transformer:prefix,transformer:cross (a bare backbone takes --conditioning; default "
                        "simba,transformer)")
    parser.add_argument("--seeds", default=None, help="comma list, e.g. 0,1,2: every variant once per seed "
                        "(default: --seed)")
    parser.add_argument("--gen-steps", default=None, help="comma list of steps at which each run generates "
                        "--gen-prompts captions of the reference split, scored with FAD, KL and adherence")
    parser.add_argument("--reference", default=None, metavar="AUDIO_DIR",
                        help="audio + captions.csv for --gen-steps (e.g. the demo dataset)")
    parser.add_argument("--reference-split", default="test", help="split of --reference (default test)")
    parser.add_argument("--gen-prompts", type=int, default=8, help="first N captions of that split (default 8)")
    parser.add_argument("--time-steps", type=int, default=0, metavar="N",
                        help="after training, time N steps of every variant in interleaved rounds under the same "
                        "load: the report's calibrated time axis (steps x seconds per step); 0 = off")
    parser.add_argument("--gen-seconds", type=float, default=None, help="seconds generated per caption (default: "
                        "the training length, --crop-frames or the whole clip: a Transformer's context)")
    parser.add_argument("--time-budget", type=float, default=0.0, metavar="SECONDS",
                        help="train every run for about this many seconds instead of --steps, each variant with its "
                        "own full schedule (steps = budget / its seconds per step, timed here first and kept in "
                        "OUT_DIR/time_budget.json); 0 = off")
    parser.add_argument("--lr-by-backbone", default=None, metavar="BACKBONE=LR,...",
                        help="a learning rate per backbone, e.g. simba=5e-4,transformer=3e-4 (others: --lr)")
    _train_arguments(parser)


def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from ssmusic.metrics.evaluate import run as evaluate

        return evaluate(args)

    from ssmusic.metrics.evaluate import add_arguments

    add_arguments(_add(sub, "evaluate", "judge generated audio against a reference: the music network's distance, "
                       "tag KL and adherence, motion, tempo and key (each with its floor or ceiling), FAD, KL, CLAP",
                       run))


def _register_codebooks(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from ssmusic.experiments.codebooks import run as codebooks

        return codebooks(args)

    parser = _add(sub, "codebooks", "what the first k codebooks keep (k = 1..K): mel distance, SI-SNR, embedding "
                  "similarity and classifier accuracy of reconstructions; table + JSON + plot", run)
    parser.add_argument("audio_dir", metavar="AUDIO_DIR", help="a folder of audio, or a dataset with captions.csv")
    parser.add_argument("--split", default=None, help="only this split of AUDIO_DIR/captions.csv (e.g. test)")
    parser.add_argument("--codec", default=None, help="codec name or directory (default: the offline ssmusic-mel-22k)")
    parser.add_argument("--clap", default=None, metavar="DIR_OR_HUB_ID",
                        help="embed with CLAP instead of the offline mel-stats embedding")
    parser.add_argument("--classifier", default=None, metavar="DIR", help="attribute classifier (default: the shipped "
                        "instrument classifier); its label column is read from captions.csv when present")
    parser.add_argument("--clip-seconds", type=float, default=10.0, help="first seconds of each file (0 = whole file)")
    parser.add_argument("--max-files", type=int, default=0, help="0 = all")
    add_decoder_argument(parser)
    parser.add_argument("--out", default="codebooks.json", help="results JSON; the .md table and .png plot go "
                        "beside it (default codebooks.json)")


def _register_bench(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from ssmusic.experiments.bench import run as bench

        return bench(args)

    parser = _add(sub, "bench", "decode/training speed of the backbones beside transformers' MusicGen and Mamba2", run)
    parser.add_argument("--preset", choices=["tiny", "small", "paper"], default="small")
    parser.add_argument("--positions", default=None, help="comma list (default 100,1000,2588,10000,25000)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per position (default 20)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the tables, not the speed")
    parser.add_argument("--decode-floor", action="store_true",
                        help="only the decode floor, the one-prompt step per weight type and the batch table (~2 min)")
    parser.add_argument("--no-compile", action="store_true",
                        help="the decode floor tables time the eager step only (a cold compile takes minutes on a GPU)")
    parser.add_argument("--paper-size", action="store_true",
                        help="instead: the 281M paper-size SiMBA against the released generation loop (~6 min)")
    parser.add_argument("--out", default="bench.json", help="JSON results (and .md tables) path")


def _register_export(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from ssmusic.training.export import run as export

        return export(args)

    parser = _add(sub, "export", "copy a trained model to a model directory (optionally fp16, with sampling defaults)", run)
    parser.add_argument("source", metavar="RUN_OR_MODEL_DIR")
    parser.add_argument("--out", required=True, metavar="MODEL_DIR")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None,
                        help="store the weights in this type (default: as trained)")
    parser.add_argument("--cfg", type=float, default=None, help="default CFG scale written to pipeline.json")
    parser.add_argument("--temperature", type=float, default=None, help="default sampling temperature")
    parser.add_argument("--top-k", type=int, default=None, help="default top-k")
    parser.add_argument("--lora-base", default=None, metavar="MODEL",
                        help="SOURCE is a LoRA adapter directory (a fine-tune's final/adapter): merge it into MODEL "
                        "('default', a model directory or run) and write a plain model directory")


def main(argv: Sequence[str] | None = None) -> int:
    set_wait_policy()  # before any command imports torch (ssmusic.threads)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 0
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = args.run(args)
    except SsmusicError as err:
        print(f"ssmusic {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ssmusic {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
