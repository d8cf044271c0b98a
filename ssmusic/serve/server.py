"""`ssmusic serve`: load the model, warm it up, and serve the page with uvicorn."""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from pathlib import Path

from ssmusic.errors import SsmusicError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--checkpoint", default=None, metavar="RUN_DIR_OR_FILE",
                        help="model dir, training run dir or model.safetensors (default: the shipped model)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="generations running at once; the rest wait in a queue (default 1)")
    parser.add_argument("--max-queue", type=int, default=16, help="requests allowed to wait (default 16)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="longest duration a visitor may ask (default 60)")
    parser.add_argument("--chunk-seconds", type=float, default=0.5, help="audio per streamed chunk (default 0.5)")
    parser.add_argument("--outputs", default=None, metavar="DIR",
                        help="where finished WAV/JSON/PNG files go (default: a new temporary directory)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")


def _check(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise SsmusicError(f"--port: expected 0..65535, got {args.port}")
    if args.max_queue < 0:
        raise SsmusicError(f"--max-queue: expected >= 0, got {args.max_queue}")
    if not args.max_seconds > 0:
        raise SsmusicError(f"--max-seconds: expected a positive duration, got {args.max_seconds}")
    if not args.chunk_seconds > 0:
        raise SsmusicError(f"--chunk-seconds: expected a positive duration, got {args.chunk_seconds}")


def load_warm_model(checkpoint, device: str = "cpu"):
    """The TextToMusic a demo serves, with its first-visitor costs paid up front."""
    from ssmusic.pipeline import TextToMusic
    from ssmusic.codec.stream import stream_context

    model = TextToMusic.from_pretrained(checkpoint, device=device)
    stream_context(model.codec)  # measured once (cached on disk), not on the first visitor's time
    for _ in model.stream(["warm-up"], seconds=0.5, seed=0):  # first calls into torch are slow
        pass
    return model


def run(args: argparse.Namespace) -> int:
    _check(args)
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as err:
        raise SsmusicError(f"ssmusic serve needs the web extra ({err.name} is missing): "
                           "pip install -e \".[demo]\" (install.sh does)") from None
    import torch

    from ssmusic.serve.app import build_app
    from ssmusic.serve.jobs import Queue

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    except OSError as err:
        raise SsmusicError(f"cannot listen on {args.host}:{args.port} ({err.strerror})") from None
    model = load_warm_model(args.checkpoint, args.device)
    outputs = Path(args.outputs) if args.outputs else Path(tempfile.mkdtemp(prefix="ssmusic-serve-"))
    outputs.mkdir(parents=True, exist_ok=True)
    queue = Queue(model, outputs, args.concurrency, args.max_queue, args.chunk_seconds)
    app = build_app(queue, args.max_seconds)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"ssmusic serve: http://{shown}:{port}/  (outputs in {outputs}; Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    try:
        server.run(sockets=[sock])
    finally:
        queue.close()
    print("ssmusic serve: stopped", file=sys.stderr)
    return 0
