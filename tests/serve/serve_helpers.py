"""Shared by the web demo tests: a real `ssmusic serve` process on a free port, and HTTP helpers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_server(checkpoint, outputs: Path, *extra: str, keep_outputs: bool = True):
    """Start `ssmusic serve --port 0` (the OS picks a free port) and yield its URL. Its log is
    outputs/server.log; finished files go to `outputs` (keep_outputs) or the server's own temporary
    folder. Stopping it with SIGTERM must exit 0 with no error or traceback in the log."""
    env = {**os.environ, "SSMUSIC_CACHE_DIR": str(outputs / "cache"), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "ssmusic", "serve", "--port", "0", "--checkpoint", str(checkpoint),
               "--threads", "1", *(["--outputs", str(outputs)] if keep_outputs else []), *extra]
    with running_process(command, outputs / "server.log", env, clean_exit=True) as url:
        yield url


class ServerUrl(str):
    """The server's URL (a str), with its process and the line it printed when it started listening."""

    def __new__(cls, url: str, process: subprocess.Popen, banner: str):
        self = super().__new__(cls, url)
        self.process, self.banner = process, banner
        return self


def clean_log(text: str) -> bool:
    return "Traceback" not in text and " ERROR " not in text and " CRITICAL " not in text


@contextmanager
def running_process(command: list[str], log_path: Path, env: dict | None = None, clean_exit: bool = False):
    """Start a web server whose first line on stdout, printed once it listens, holds its URL; yield
    that URL (without the trailing slash) and stop the process afterwards (SIGTERM; with clean_exit
    it must exit 0 and log no error). stderr goes to log_path."""
    log = open(log_path, "w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = process.stdout.readline()
        url = next((word for word in line.split() if word.startswith("http://")), None)
        if url is None:
            process.kill()
            process.wait()
            raise RuntimeError(f"{' '.join(map(str, command[1:4]))} did not start: {line}{log_path.read_text()[-2000:]}")
        yield ServerUrl(url.rstrip("/"), process, line)
        if process.poll() is None:  # else a test stopped it itself (and checked how)
            process.terminate()
        code = process.wait(timeout=60)
        if clean_exit:
            assert code == 0 and clean_log(log_path.read_text()), f"unclean stop ({code}): {log_path.read_text()[-3000:]}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def call(url: str, data: bytes | None = None, method: str | None = None,
         headers: dict | None = None) -> tuple[int, dict | bytes]:
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body, status, kind = response.read(), response.status, response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        body, status, kind = err.read(), err.code, err.headers.get("Content-Type", "")
    return status, json.loads(body) if kind.startswith("application/json") else body


def post(url: str, body) -> tuple[int, dict]:
    return call(url + "/api/generate", json.dumps(body).encode())


def wait_for(predicate, timeout: float = 120.0, every: float = 0.1):
    """Poll until predicate() is truthy (returned); a generous limit, so no timing is asserted."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


EXAMPLES = [{"prompt": "a steady drum groove with a walking bass", "seconds": 2},
            {"prompt": "a slow chorale on a church organ", "seconds": 3},
            {"prompt": "a waltz for string quartet", "seconds": 4}, {"prompt": "a march for brass band", "seconds": 5},
            {"prompt": "a lullaby on a music box", "seconds": 6}]


def model_with_card(model_dir: Path, into: Path) -> Path:
    """A copy of a model folder with a model_card.json (what the page shows about the model)."""
    copy = into / "model"
    shutil.copytree(model_dir, copy)
    card = {"summary": "a tiny test model", "knows": ["nothing much"], "does_not_know": ["music"],
            "examples": EXAMPLES}
    (copy / "model_card.json").write_text(json.dumps(card))
    return copy


class Proxy:
    """A TCP relay to 127.0.0.1:`upstream` on a port of its own, which a test can cut (every open
    connection closed, new ones refused: what a browser sees when the server goes away) and restore."""

    def __init__(self, upstream: int) -> None:
        self.upstream, self.port, self.sockets = upstream, 0, []
        self.restore()

    def restore(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread and frees the port
        except OSError:
            pass
        self.listener.close()
        for end in self.sockets:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()
        self.sockets = []
