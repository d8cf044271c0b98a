"""Shared by the web demo tests: a real `ssmusic serve` process on a free port, and HTTP helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_server(checkpoint, outputs: Path, *extra: str):
    """Start `ssmusic serve --port 0` (the OS picks a free port) and yield its URL."""
    env = {**os.environ, "SSMUSIC_CACHE_DIR": str(outputs / "cache"), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "ssmusic", "serve", "--port", "0", "--checkpoint", str(checkpoint),
               "--outputs", str(outputs), "--threads", "1", *extra]
    with running_process(command, outputs / "server.log", env) as url:
        yield url


@contextmanager
def running_process(command: list[str], log_path: Path, env: dict | None = None):
    """Start a web server whose first line on stdout, printed once it listens, holds its URL; yield
    that URL (without the trailing slash) and stop the process afterwards. stderr goes to log_path."""
    log = open(log_path, "w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = process.stdout.readline()
        url = next((word for word in line.split() if word.startswith("http://")), None)
        if url is None:
            process.kill()
            process.wait()
            raise RuntimeError(f"{' '.join(map(str, command[1:4]))} did not start: {line}{log_path.read_text()[-2000:]}")
        yield url.rstrip("/")
        assert process.poll() is None, "the server died during the test"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def call(url: str, data: bytes | None = None, method: str | None = None) -> tuple[int, dict | bytes]:
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                     headers={"Content-Type": "application/json"})
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
