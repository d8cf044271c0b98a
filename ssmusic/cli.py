"""`ssmusic` command line: thin argparse subcommands over the Python API.

Each subcommand is declared here (so `--help` is fast and shows everything) and imports its
module only when it runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from ssmusic.errors import SsmusicError

Handler = Callable[[argparse.Namespace], int | None]


def _add(sub: argparse._SubParsersAction, name: str, help: str, run: Handler) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(run=run, command=name)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssmusic",
        description="Text-to-music generation with a state-space-model language model.",
    )
    parser.add_argument("--version", action="version", version=f"ssmusic {_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    # Subcommands are registered below, one function per command.
    for register in REGISTRY:
        register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ssmusic")
    except PackageNotFoundError:
        return "unknown"


REGISTRY: list[Callable[[argparse._SubParsersAction], None]] = []


def _register_generate(sub: argparse._SubParsersAction) -> None:
    def run(args: argparse.Namespace) -> int:
        from ssmusic.generate import run as generate

        return generate(args)

    from ssmusic.generate import add_arguments

    add_arguments(_add(sub, "generate", "generate music from text prompts into WAV files", run))


REGISTRY.append(_register_generate)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 0
    try:
        code = args.run(args)
    except SsmusicError as err:
        print(f"ssmusic {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ssmusic {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
