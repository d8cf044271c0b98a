"""`ssmusic serve`: load the model, warm it up, serve the page with uvicorn, and stop cleanly.

SIGTERM or Ctrl-C: new connections are refused, every job is cancelled (running ones stop at their
next chunk, so their streams end and the connections close), the workers are joined, a temporary
outputs folder is removed, and the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from ssmusic.codec import add_decoder_argument
from ssmusic.errors import BadValue, SsmusicError
from ssmusic.threads import GENERATE_THREADS, set_threads

log = logging.getLogger("ssmusic.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a host name visitors may use besides localhost, 127.0.0.1, [::1] and --host "
                             "(repeatable; e.g. this machine's name when serving on 0.0.0.0)")
    parser.add_argument("--checkpoint", default=None, metavar="RUN_DIR_OR_FILE",
                        help="model dir, training run dir or model.safetensors (default: the shipped model)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="generations running at once; the rest wait in a queue (default 1)")
    parser.add_argument("--max-queue", type=int, default=16,
                        help="requests allowed to wait beyond those generating (default 16; 0: accept a "
                             "request only when a generation slot is free)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="longest duration a visitor may ask (default 60)")
    parser.add_argument("--max-connections", type=int, default=64,
                        help="open HTTP connections at once; beyond, 503 (default 64; a page holds 2-3)")
    parser.add_argument("--cancel-after", type=float, default=10.0, metavar="SECONDS",
                        help="cancel a job nobody has followed for this long: a closed tab, a script that "
                             "left (default 10; pages reconnect within 1 s, scripts should poll more often)")
    parser.add_argument("--keep-minutes", type=float, default=60.0,
                        help="how long finished jobs and their files stay available (default 60)")
    parser.add_argument("--keep-jobs", type=int, default=100, help="at most this many finished jobs kept (default 100)")
    parser.add_argument("--chunk-seconds", type=float, default=0.5, help="audio per streamed chunk (default 0.5)")
    parser.add_argument("--outputs", default=None, metavar="DIR",
                        help="keep finished WAV/JSON/PNG files here (default: a temporary folder, whose "
                             "files are deleted as jobs expire and which is removed on exit)")
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                        help="log one line per HTTP request on stderr (default on; job events are always logged)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    add_decoder_argument(parser)
    parser.add_argument("--threads", type=int, default=GENERATE_THREADS,
                        help=f"torch CPU threads (default {GENERATE_THREADS}, as generate; 0: one per core)")


def check_arguments(args: argparse.Namespace) -> None:
    """Every limit, refused with a one-line message before the model loads."""
    from ssmusic.checks import MAX_SECONDS, check_device, check_seconds
    from ssmusic.pipeline import resolve_model_dir

    positive = {"--max-connections": args.max_connections, "--concurrency": args.concurrency,
                "--keep-jobs": args.keep_jobs}
    for flag, value in positive.items():
        if value < 1:
            raise SsmusicError(f"{flag}: expected an integer >= 1, got {value}")
    if not 0 <= args.port <= 65535:
        raise SsmusicError(f"--port: expected 0..65535, got {args.port}")
    if args.max_queue < 0:
        raise SsmusicError(f"--max-queue: expected an integer >= 0 (0: no waiting), got {args.max_queue}")
    try:  # the CLI's duration rule; one frame of headroom, since a request is generated in whole frames
        check_seconds(args.max_seconds, limit=MAX_SECONDS - 1)
    except BadValue as err:
        raise SsmusicError(err.worded("--max-seconds")) from None
    for flag in ("chunk_seconds", "keep_minutes"):
        if not getattr(args, flag) > 0:
            raise SsmusicError(f"--{flag.replace('_', '-')}: expected a positive number, got {getattr(args, flag)}")
    if not args.cancel_after >= 4:  # a dropped EventSource reconnects after 1 s here, 3 s by browser default
        raise SsmusicError(f"--cancel-after: expected at least 4 s (browsers reconnect within 3 s), got {args.cancel_after}")
    check_device(args.device)
    resolve_model_dir(args.checkpoint)  # a missing or wrong folder, said before the port is taken


def load_warm_model(checkpoint, device: str = "cpu", decoder: str | None = None):
    """The TextToMusic a demo serves, with its first-visitor costs paid up front, and its measured
    real-time factor (seconds of work per second of audio, for the queue's wait estimates)."""
    from ssmusic.codec.stream import stream_context
    from ssmusic.pipeline import TextToMusic

    model = TextToMusic.from_pretrained(checkpoint, device=device, decoder=decoder)
    stream_context(model.codec)  # measured once (cached on disk), not on the first visitor's time
    rtf = 1.0
    for attempt in range(2):  # the first calls into torch are slow; the second one is timed
        start = time.monotonic()
        for _ in model.stream(["warm-up"], seconds=0.5, seed=0):
            pass
        rtf = (time.monotonic() - start) / 0.5
    return model, rtf


def _listen(host: str, port: int) -> socket.socket:
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    except OSError as err:
        raise SsmusicError(f"cannot listen on {host}:{port} ({err.strerror})") from None
    return sock


def _configure_logs() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ssmusic.serve")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise SsmusicError(f"ssmusic serve needs the web extra ({err.name} is missing): "
                           "pip install -e \".[demo]\" (install.sh does)") from None
    from ssmusic.serve.app import build_app
    from ssmusic.serve.jobs import Queue

    _configure_logs()
    signal.signal(signal.SIGTERM, _stop_while_loading)
    set_threads(args.threads)
    sock = _listen(args.host, args.port)
    model, rtf = load_warm_model(args.checkpoint, args.device, args.decoder)
    temporary = args.outputs is None
    outputs = Path(tempfile.mkdtemp(prefix="ssmusic-serve-")) if temporary else Path(args.outputs)
    outputs.mkdir(parents=True, exist_ok=True)
    queue = Queue(model, outputs, args.concurrency, args.max_queue, args.chunk_seconds,
                  keep_seconds=60 * args.keep_minutes, max_finished=args.keep_jobs,
                  unwatched_grace=args.cancel_after, delete_files=temporary, rtf=rtf)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host

    def announce() -> None:  # once serving, with the signal handlers in place (what scripts wait for)
        print(f"ssmusic serve: http://{shown}:{port}/  (outputs in {outputs}; Ctrl-C stops)", flush=True)

    app = build_app(queue, args.max_seconds, args.host, tuple(args.allow_host), args.access_log, announce)
    try:
        _DemoServer(app, queue, args.max_connections).run(sockets=[sock])
    finally:
        queue.close()
        if not queue.join(timeout=30):
            log.warning("a generation did not stop within 30 s; exiting anyway")
        if temporary:
            shutil.rmtree(outputs, ignore_errors=True)
    log.info("stopped")
    return 0


def _stop_while_loading(sig: int, frame) -> None:
    raise SystemExit(0)  # a stop asked for before serving: leave through the cleanup, exit 0


class _DemoServer:
    """uvicorn's server, stopped the demo's way (see the module docstring): the first SIGTERM or
    SIGINT cancels the jobs before uvicorn waits for connections, and the signal is not re-raised
    afterwards (uvicorn would, making a clean stop exit 143)."""

    def __init__(self, app, queue, max_connections: int) -> None:
        import uvicorn

        demo = self

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):
                originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
                try:
                    yield
                finally:
                    for sig, handler in originals.items():
                        signal.signal(sig, handler)

            def handle_exit(self, sig: int, frame) -> None:
                if not self.should_exit and demo.loop is not None:
                    log.info("stopping (%s)", signal.Signals(sig).name)
                    demo.loop.call_soon_threadsafe(demo.stop_jobs)  # not here: this may interrupt a lock holder
                super().handle_exit(sig, frame)

            async def serve(self, sockets=None) -> None:
                demo.loop = asyncio.get_running_loop()
                await super().serve(sockets)

        self.queue, self.loop = queue, None
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                                limit_concurrency=max_connections + 1, timeout_keep_alive=5)
        # (uvicorn counts the arriving connection too: n + 1 lets exactly n be open at once)
        self.server = Server(config)

    def stop_jobs(self) -> None:
        stopped = self.queue.close()
        log.info("cancelled %d unfinished job(s)", stopped)

    def run(self, sockets: list[socket.socket]) -> None:
        self.server.run(sockets=sockets)
